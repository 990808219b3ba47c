"""Every learner notebook as a learner meets it: JupyterLab in headless, offline Chromium, Run All.

nbval-style runs prove that cells run; this proves that a learner *sees* the
lesson: Run All reaches the end; no error, traceback, warning or raw Ray log
line in any output; every figure (bokeh, holoviews) painted its canvas; every
check cell shows its verdict, and none is correct (the starter code); no
console error and no request to the internet. Animated figures are
screenshotted twice and must differ. Screenshots land in ``build/test/browser/``.

The lessons run several at a time (their tasks mostly sleep), each in its own
page and JupyterLab workspace. Verdicts go to ``build/test/notebooks.jsonl``
for the fail-before/pass-after comparison in ``tests/after``.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from conftest import CHROMIUM_ARGS, start_lab, stop_lab
from learner import run_lessons

from raycourse.grading import CORRECT

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("RAYCOURSE_TEST_OUT", ROOT / "build" / "test"))
SHOTS = OUT / "browser"
ONLY = [o.strip() for o in os.environ.get("RAYCOURSE_BROWSER_ONLY", "").split(",") if o.strip()]  # e.g. "00,03"
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
                   if not ONLY or p.name[:2] in ONLY)
JOBS = int(os.environ.get("RAYCOURSE_BROWSER_JOBS", "3"))
# Requests a page may make: the JupyterLab server itself. Anything else is the internet (a CDN, news).
LOCAL = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)[:/]")


def code_sources(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def animated_cells(path: Path) -> tuple[int, ...]:
    """Code cells whose figure keeps moving after Run All (they say so with an ``# animated`` comment)."""
    return tuple(i for i, source in enumerate(code_sources(path)) if "# animated" in source)


def problems_of(seen, path: Path) -> list[str]:
    sources = code_sources(path)
    checks = {i: m.group(1) for i, s in enumerate(sources) if (m := re.search(r'raycourse\.check\("([^"]+)"\)', s))}
    found = []
    if seen.problem:
        found.append(seen.problem)
    if not seen.finished:
        found.append(f"Run All did not reach the end: prompts {seen.prompts}")
    found += [f"error output: {e}" for e in seen.errors]
    found += [f"noise: {n}" for n in seen.noise]
    for index, exercise in checks.items():
        status, text = seen.verdicts.get(index, ("", ""))
        if not status:
            found.append(f"cell {index}: no verdict shown for {exercise}")
        elif status == CORRECT or exercise not in text:
            found.append(f"cell {index}: {exercise} shows {status!r}: {text[:160]!r}")
    found += [f"cell {f.cell}: a figure whose canvas stayed blank ({f.painted} pixels)" for f in seen.figures
              if f.painted < 500]
    found += [f"console error: {c}" for c in seen.console]
    found += [f"a request left this machine: {r}" for r in seen.failed_requests if not LOCAL.match(r)]
    found += [f"cell {i}: the animated figure did not change between two screenshots" for i, moved in
              seen.changing.items() if not moved]
    return found


# All nine lessons are one test (one JupyterLab, JOBS pages at once): about 12 minutes on two cores, longer
# than the suite's 10-minute limit per test.
@pytest.mark.timeout(2400)
def test_every_lesson_in_chromium(chromium_path, tmp_path):
    hashes = {n: hashlib.sha256((ROOT / n).read_bytes()).hexdigest() for n in NOTEBOOKS}
    log = OUT / "notebooks.jsonl"
    OUT.mkdir(parents=True, exist_ok=True)
    server, marker = start_lab(tmp_path, {"RAYCOURSE_GRADE_LOG": str(log), "RAYCOURSE_STRICT": None})
    try:
        seen = asyncio.run(run_lessons(server, chromium_path, NOTEBOOKS, SHOTS, JOBS, CHROMIUM_ARGS,
                                       watch={n: animated_cells(ROOT / n) for n in NOTEBOOKS}))
    finally:
        leftovers = stop_lab(server, marker)
    report = {s.notebook: problems_of(s, ROOT / s.notebook) for s in seen}
    summary = [{"notebook": s.notebook, "run_all_seconds": round(s.run_seconds, 1), "kernel_ready_seconds":
                round(s.ready_seconds, 1), "screenshots": s.screenshots, "problems": report[s.notebook]} for s in seen]
    (SHOTS / "summary.json").write_text(json.dumps(summary, indent=1))
    print("\nRun All in Chromium:")
    for s in seen:
        print(f"  {s.notebook}: {s.run_seconds:.0f} s (kernel ready in {s.ready_seconds:.0f} s); "
              f"{len(s.figures)} figures, {len(s.verdicts)} verdicts; screenshots {', '.join(s.screenshots)}")
    failures = [f"{name}:\n    " + "\n    ".join(p) for name, p in report.items() if p]
    assert not leftovers, leftovers
    assert not failures, "\n".join(failures)
    saved = [n for n in NOTEBOOKS if hashlib.sha256((ROOT / n).read_bytes()).hexdigest() != hashes[n]]
    assert not saved, f"JupyterLab saved these notebooks (outputs must never be committed): {saved}"
