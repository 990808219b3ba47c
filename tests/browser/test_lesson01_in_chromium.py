"""Lesson 01 as a learner meets it: JupyterLab in headless Chromium, Run > Run All Cells.

nbval proves the cells run; this proves the learner *sees* the results: every
plot cell shows a bokeh figure drawn on a canvas, and every check cell shows
its verdict (in the learner's notebook: "not attempted"). A full-page
screenshot is kept in build/test/browser-01_tasks.png for a person to look at.

Run it with `make browser` (after `bash .ci/install-browser`).
"""
from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
from pathlib import Path

import pytest

from raycourse.grading import NOT_ATTEMPTED

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/01_tasks.ipynb"
SCREENSHOT = ROOT / "build" / "test" / "browser-01_tasks.png"
FAILURE_SCREENSHOT = SCREENSHOT.with_name("browser-01_tasks-failure.png")
LOAD_TIMEOUT_MS = 90_000
RUN_TIMEOUT_S = 240  # Run All of lesson 01 on a loaded 2-core machine, with a generous margin
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

# Reads each code cell's prompt ("[3]:", "[*]:", "[ ]:"), in notebook order.
# textContent, not innerText: off-screen cells are skipped by layout (content-visibility).
PROMPTS_JS = """panel => Array.from(panel.querySelectorAll('.jp-Cell'))
  .filter(c => c.classList.contains('jp-CodeCell'))
  .map(c => (c.querySelector('.jp-InputArea-prompt') || {textContent: '?'}).textContent.trim())"""

# Pixels a canvas has drawn (alpha > 0); bokeh draws on several layered canvases.
PAINTED_JS = """canvas => {
  if (!canvas.width || !canvas.height) return 0;
  const ctx = canvas.getContext('2d');
  if (!ctx) return 0;
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return n;
}"""


def fail_with_screenshot(page, message: str) -> None:
    """Fail, keeping a picture of the page as it was, for the person who reads the failure."""
    FAILURE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(FAILURE_SCREENSHOT), full_page=True)
    pytest.fail(f"{message}\n(screenshot: {FAILURE_SCREENSHOT.relative_to(ROOT)})")


def code_sources(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def run_all(page, panel, count: int) -> list[str]:
    """Run > Run All Cells, and wait until every code cell has an execution count.

    If Ray could not start because the machine is overloaded, the set-up cell says
    "run this cell again": a learner would, so Run All is clicked once more. Any
    other stop (a cell raised) fails at once, with the error output.
    """
    deadline = time.monotonic() + RUN_TIMEOUT_S
    for attempt in (1, 2):
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item[data-command='runmenu:run-all']", has_text="Run All Cells").click()
        page.wait_for_timeout(2000)
        stalled_since = None
        prompts: list[str] = []
        while time.monotonic() < deadline:
            prompts = panel.evaluate(PROMPTS_JS)
            if len(prompts) == count and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
                return prompts
            # A cell that raised stops Run All: no cell busy, and some never ran.
            if "[*]:" not in prompts and any(p in ("[ ]:", "[]:") for p in prompts):
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 10:
                    break
            else:
                stalled_since = None
            page.wait_for_timeout(1000)
        errors = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_text_contents()
        if attempt == 1 and stalled_since and any("CourseSetupError" in e for e in errors):
            continue
        why = "stopped (a cell raised)" if stalled_since else f"did not finish within {RUN_TIMEOUT_S} s"
        fail_with_screenshot(page, f"Run All {why} (attempt {attempt}); prompts: {prompts}\n"
                             f"stderr/error outputs:\n" + "\n---\n".join(e[-1500:] for e in errors))
    raise AssertionError("unreachable")


def start_kernel_as_a_learner(page, lab_server) -> None:
    """Answer JupyterLab's "Select Kernel" dialog with its default (Python 3) if it asks, as a learner would,
    then wait until the kernel is idle (from the REST API, since the page's indicator reads idle before any kernel)."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if dialog.is_visible():
            dialog.locator("button.jp-mod-accept").click()
        try:
            kernels = lab_server.api("GET", "/api/kernels")
        except urllib.error.HTTPError:  # jupyter_server answers 500 while a kernel is half started
            kernels = []
        if kernels and all(k["execution_state"] == "idle" for k in kernels) and not dialog.is_visible():
            page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=LOAD_TIMEOUT_MS)
            return
        page.wait_for_timeout(500)
    pytest.fail(f"the notebook's kernel did not start within {LOAD_TIMEOUT_MS / 1000:.0f} s:\n{lab_server.log_tail()}")


def test_lesson01_run_all_in_chromium(lab_server, page):
    notebook = ROOT / NOTEBOOK
    original = hashlib.sha256(notebook.read_bytes()).hexdigest()
    sources = code_sources(notebook)
    plot_cells = [i for i, s in enumerate(sources) if re.search(r"\bplots\.\w+\(", s)]
    check_cells = {i: m.group(1) for i, s in enumerate(sources) if (m := re.search(r'raycourse\.check\(\s*"([^"]+)"', s))}
    assert plot_cells and check_cells, "lesson 01 should have plot cells and check cells"

    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"{request.url[:120]} ({request.failure})"))
    page.goto(lab_server.url(f"lab/tree/{NOTEBOOK}"), timeout=LOAD_TIMEOUT_MS)
    panel = page.locator(PANEL)
    panel.locator(".jp-CodeCell").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    opened = time.monotonic()
    start_kernel_as_a_learner(page, lab_server)
    ready_seconds = time.monotonic() - opened

    started = time.monotonic()
    prompts = run_all(page, panel, len(sources))
    run_seconds = time.monotonic() - started

    cells = panel.locator(".jp-CodeCell")
    # (1) every plot cell shows a bokeh figure that painted pixels on its canvas
    # (bokeh 3 renders in open shadow roots; Playwright's CSS selectors pierce them).
    for index in plot_cells:
        cells.nth(index).scroll_into_view_if_needed()  # off-screen cells are not laid out, so not painted
        figure = cells.nth(index).locator(".jp-OutputArea-output .bk-Figure").first
        if not figure.count():
            fail_with_screenshot(page, f"code cell {index}: no bokeh figure rendered. Requests that failed: {failed or 'none'}"
                        + (". BokehJS comes from a CDN (bokeh's default resources) that an offline browser cannot "
                           "reach: show plots with output_notebook(resources=INLINE)" if any("bokeh" in f for f in failed) else ""))
        page.wait_for_timeout(300)
        canvases = figure.locator("canvas")
        painted = max(canvases.nth(k).evaluate(PAINTED_JS) for k in range(canvases.count()))
        assert painted > 1000, f"code cell {index}: the bokeh figure's canvas is blank ({painted} pixels drawn)"

    # (2) every check cell shows its verdict; nothing is solved in the learner's notebook.
    for index, exercise in check_cells.items():
        verdict = cells.nth(index).locator(".jp-OutputArea-output .raycourse-verdict")
        assert verdict.count() == 1, f"code cell {index}: no verdict shown for {exercise}"
        assert verdict.get_attribute("data-status") == NOT_ATTEMPTED, (
            f"{exercise}: the learner's starter code should be 'not attempted', got {verdict.inner_text()!r}")
        assert exercise in verdict.inner_text() and NOT_ATTEMPTED in verdict.inner_text()

    # What a person sees: the first verdict and the plot after it.
    cells.nth(min(check_cells)).scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    print(f"\nkernel ready after {ready_seconds:.1f} s; Run All of {NOTEBOOK}: {run_seconds:.1f} s; prompts {prompts}")
    assert hashlib.sha256(notebook.read_bytes()).hexdigest() == original, f"{NOTEBOOK} was saved by JupyterLab"
