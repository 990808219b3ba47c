"""A learner in Chromium: open a lesson in JupyterLab, Run All, and record what the page shows.

Used by the browser tests. Each lesson gets its own page and its own JupyterLab
workspace (so several lessons run at once without fighting over the layout),
then :func:`run_lesson` returns a :class:`Seen`: how long Run All took, every
code cell's prompt, the verdicts shown, every figure and whether its canvas
painted, text a learner should never see, console errors, failed requests,
and the screenshots it saved. The tests assert on that record.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raycourse.tools.execute import NOISE

LOAD_TIMEOUT_S = 120
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

# Each code cell's prompt ("[3]:", "[*]:", "[ ]:") in notebook order. textContent, not innerText:
# off-screen cells are skipped by layout (content-visibility).
PROMPTS_JS = """panel => Array.from(panel.querySelectorAll('.jp-Cell'))
  .filter(c => c.classList.contains('jp-CodeCell'))
  .map(c => (c.querySelector('.jp-InputArea-prompt') || {textContent: '?'}).textContent.trim())"""

# Pixels a canvas has drawn (alpha > 0); bokeh draws on several layered canvases inside shadow roots.
PAINTED_JS = """canvas => {
  if (!canvas.width || !canvas.height) return 0;
  const ctx = canvas.getContext('2d');
  if (!ctx) return 0;
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return n;
}"""


@dataclass
class Figure:
    cell: int
    painted: int  # the most pixels any of its canvases drew


@dataclass
class Seen:
    """What one lesson looked like in the browser after Run All."""

    notebook: str
    ready_seconds: float = 0.0
    run_seconds: float = 0.0
    finished: bool = False
    prompts: list[str] = field(default_factory=list)
    verdicts: dict[int, tuple[str, str]] = field(default_factory=dict)  # cell -> (status, text)
    figures: list[Figure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # error/stderr outputs
    noise: list[str] = field(default_factory=list)  # log lines, warnings in outputs
    console: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    changing: dict[int, bool] = field(default_factory=dict)  # cell -> its figure changed between two shots
    problem: str = ""


async def _start_kernel(page: Any, server: Any, notebook: str) -> None:
    """Answer a "Select Kernel" dialog with its default, as a learner would; wait until this notebook's kernel
    is idle (from the REST API: the page's indicator reads idle before any kernel exists)."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    loop = asyncio.get_running_loop()
    while time.monotonic() < deadline:
        if await dialog.is_visible():
            await dialog.locator("button.jp-mod-accept").click()
        try:
            sessions = await loop.run_in_executor(None, server.api, "GET", "/api/sessions")
        except Exception:  # noqa: BLE001 - jupyter_server answers 500 while a kernel is half started
            sessions = []
        mine = [s for s in sessions or [] if s.get("path") == notebook and s.get("kernel")]
        if mine and mine[0]["kernel"].get("execution_state") == "idle" and not await dialog.is_visible():
            await page.locator(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
                timeout=LOAD_TIMEOUT_S * 1000)
            return
        await page.wait_for_timeout(500)
    raise TimeoutError(f"the kernel did not become idle within {LOAD_TIMEOUT_S} s")


async def _run_all(page: Any, panel: Any, count: int, timeout: float) -> list[str]:
    """Run > Run All Cells; wait until every code cell has a number, or a cell raised and Run All stopped."""
    await page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    await page.locator(".lm-Menu-item[data-command='runmenu:run-all']", has_text="Run All Cells").click()
    await page.wait_for_timeout(2000)
    deadline, stalled_since = time.monotonic() + timeout, None
    prompts: list[str] = []
    while time.monotonic() < deadline:
        prompts = await panel.evaluate(PROMPTS_JS)
        if len(prompts) == count and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            return prompts
        if "[*]:" not in prompts and any(p in ("[ ]:", "[]:") for p in prompts):
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 10:
                break
        else:
            stalled_since = None
        await page.wait_for_timeout(1000)
    return prompts


async def _figures(page: Any, cells: Any, count: int) -> list[Figure]:
    found = []
    for index in range(count):
        cell = cells.nth(index)
        canvases = cell.locator(".jp-OutputArea-output canvas")
        if not await canvases.count():
            continue
        await cell.scroll_into_view_if_needed()  # off-screen cells are not laid out, so not painted
        await page.wait_for_timeout(400)
        painted = 0
        for k in range(await canvases.count()):
            painted = max(painted, await canvases.nth(k).evaluate(PAINTED_JS))
        found.append(Figure(index, painted))
    return found


async def run_lesson(context: Any, server: Any, notebook: str, shots: Path, timeout: float = 420,
                     watch: tuple[int, ...] = ()) -> Seen:
    """Open ``notebook`` (a repo path) in a new page and workspace, Run All, and record what is seen.

    ``watch``: code cells whose figure should keep changing after Run All (an animation); each gets two
    screenshots a few seconds apart.
    """
    seen = Seen(notebook)
    page = await context.new_page()
    page.on("console", lambda m: seen.console.append(m.text[:300]) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.console.append(f"page error: {str(e)[:300]}"))
    page.on("requestfailed", lambda r: seen.failed_requests.append(f"{r.url[:120]} ({r.failure})"))
    stem = Path(notebook).stem
    try:
        await page.goto(server.url(f"lab/workspaces/{stem}/tree/{notebook}"), timeout=LOAD_TIMEOUT_S * 1000)
        panel = page.locator(PANEL)
        await panel.locator(".jp-CodeCell").first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
        opened = time.monotonic()
        await _start_kernel(page, server, notebook)
        seen.ready_seconds = time.monotonic() - opened
        cells = panel.locator(".jp-CodeCell")
        count = await cells.count()
        started = time.monotonic()
        seen.prompts = await _run_all(page, panel, count, timeout)
        seen.run_seconds = time.monotonic() - started
        seen.finished = len(seen.prompts) == count and all(re.fullmatch(r"\[\d+\]:", p) for p in seen.prompts)
        for index in range(count):
            cell = cells.nth(index)
            for output in await cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_text_contents():
                seen.errors.append(f"cell {index}: {output.strip()[:400]}")
            text = "\n".join(await cell.locator(".jp-OutputArea-output").all_text_contents())
            match = NOISE.search(text)
            if match:
                seen.noise.append(f"cell {index}: {match.group(0)!r} in {text.strip()[:200]!r}")
            verdict = cell.locator(".jp-OutputArea-output .raycourse-verdict")
            if await verdict.count():
                seen.verdicts[index] = (await verdict.first.get_attribute("data-status") or "",
                                        (await verdict.first.inner_text()).strip())
        seen.figures = await _figures(page, cells, count)
        for index in watch:
            cell = cells.nth(index)
            await cell.scroll_into_view_if_needed()
            first, second = shots / f"{stem}-cell{index}-a.png", shots / f"{stem}-cell{index}-b.png"
            await cell.screenshot(path=str(first))
            await page.wait_for_timeout(3000)
            await cell.screenshot(path=str(second))
            seen.changing[index] = first.read_bytes() != second.read_bytes()
            seen.screenshots += [first.name, second.name]
        target = shots / f"{stem}.png"
        await page.screenshot(path=str(target), full_page=True)
        seen.screenshots.append(target.name)
    except Exception as error:  # noqa: BLE001 - the test reports it with the screenshot
        seen.problem = f"{type(error).__name__}: {str(error)[:500]}"
        try:
            target = shots / f"{stem}-failure.png"
            await page.screenshot(path=str(target), full_page=True)
            seen.screenshots.append(target.name)
        except Exception:  # noqa: BLE001 - the page itself may be gone
            pass
    finally:
        await page.close()
    return seen


async def run_lessons(server: Any, chromium: Path, notebooks: list[str], shots: Path, jobs: int,
                      args: list[str], watch: dict[str, tuple[int, ...]] | None = None) -> list[Seen]:
    """Run every notebook in its own page of one Chromium, ``jobs`` at a time."""
    from playwright.async_api import async_playwright

    shots.mkdir(parents=True, exist_ok=True)
    limit = asyncio.Semaphore(jobs)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), headless=True, args=args)
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})

        async def one(notebook: str) -> Seen:
            async with limit:
                return await run_lesson(context, server, notebook, shots, watch=(watch or {}).get(notebook, ()))

        try:
            return list(await asyncio.gather(*(one(n) for n in notebooks)))
        finally:
            await context.close()
            await browser.close()
