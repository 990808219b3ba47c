"""The catalogue's harness is imported as a plain module from this folder; `make stress` reuses the catalogue.

With ``RAYCOURSE_STRESS_RUNS=N`` (``make stress``), every selected case runs N times in one process (later
rounds run right after earlier attempts, as a learner's re-runs do), two busy-loop processes take the CPU
meanwhile, and the summary prints the pass count per exercise. Select the correct answers with ``-k right``.
"""
from __future__ import annotations

import inspect
import multiprocessing
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

STRESS_RUNS = int(os.environ.get("RAYCOURSE_STRESS_RUNS", "0") or 0)
BUSY_LOOPS = int(os.environ.get("RAYCOURSE_STRESS_BUSY", "2"))
_passes: dict[str, list[int]] = defaultdict(lambda: [0, 0])


def _spin() -> None:
    while True:
        pass


@pytest.fixture(scope="session", autouse=True)
def busy_machine():
    """Under ``make stress``, keep every core busy with spinning processes, as a loaded laptop would be."""
    if not STRESS_RUNS:
        yield
        return
    spinners = [multiprocessing.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(BUSY_LOOPS)]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join(5)


def pytest_generate_tests(metafunc):
    if STRESS_RUNS and "answer" in metafunc.fixturenames:
        metafunc.fixturenames.append("stress_round")
        metafunc.parametrize("stress_round", range(STRESS_RUNS), ids=[f"round{i + 1}" for i in range(STRESS_RUNS)])


def _exercise_of(item) -> str:
    source = inspect.getsource(item.function) if hasattr(item, "function") else ""
    match = re.search(r'judge\("([^"]+)"', source)
    return match.group(1) if match else item.name.split("[")[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRESS_RUNS and report.when == "call":
        counts = _passes[_exercise_of(item)]
        counts[0] += report.passed
        counts[1] += 1


def pytest_terminal_summary(terminalreporter):
    if not STRESS_RUNS:
        return
    terminalreporter.write_sep("=", f"stress: passes per exercise ({STRESS_RUNS} rounds, {BUSY_LOOPS} busy loops)")
    for exercise, (passed, total) in sorted(_passes.items()):
        terminalreporter.write_line(f"  {exercise:<28} {passed:>4} of {total:<4}" + ("" if passed == total else "  <-"))
