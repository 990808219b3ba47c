"""Runs last in `make test`: reads the grade logs the notebook runs wrote, and looks for leaked Ray processes.

Fail-before/pass-after: every exercise is correct in solutions/ (Run All twice), none is correct in the
learners' notebooks/ (run once, headless in `make learners`, in the browser in `make browser`), and both
report the same set of exercise ids (so a check cell cannot silently vanish from either). The cluster run
asserts its own verdicts (tests/cluster).
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from raycourse.tools import procs

OUT = Path(os.environ.get("RAYCOURSE_TEST_OUT", "build/test"))
ROOT = Path(__file__).resolve().parents[2]


def verdicts(name: str) -> list[dict]:
    path = OUT / f"{name}.jsonl"
    if not path.exists():
        pytest.fail(f"{path} is missing: run the notebooks first (make test runs everything in order)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def declared_ids(folder: str) -> set[str]:
    ids = set()
    for path in (ROOT / folder).glob("*.ipynb"):
        ids |= set(re.findall(r'raycourse\.check\(\\"([^"\\]+)\\"\)', path.read_text()))
    return ids


def test_every_solution_check_is_correct_twice():
    records = verdicts("solutions")
    wrong = [r for r in records if r["status"] != "correct"]
    assert records and not wrong, wrong
    counts = {}
    for r in records:
        counts[r["exercise"]] = counts.get(r["exercise"], 0) + 1
    assert all(n >= 2 for n in counts.values()), f"Run All twice should check every exercise twice: {counts}"


def test_no_learner_notebook_check_is_correct():
    records = verdicts("notebooks")
    correct = [r["exercise"] for r in records if r["status"] == "correct"]
    assert records and not correct, f"starter code passes its own check: {correct}"


def test_same_exercises_in_both_folders():
    solved = {r["exercise"] for r in verdicts("solutions")}
    started = {r["exercise"] for r in verdicts("notebooks")}
    assert solved == started == declared_ids("solutions") == declared_ids("notebooks")


def test_no_ray_process_leaked():
    """Ray processes that appeared during the suite and are still alive are its leaks.

    A raylet exits a moment after its driver's ``ray.shutdown()``, so poll for up
    to 10 s for the condition rather than failing on a process already exiting.
    """
    before = {int(k): v for k, v in json.loads((OUT / "ray-before.json").read_text()).items()}
    deadline = time.monotonic() + 10
    while (leaked := procs.leaked(before)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not leaked, f"Ray processes the suite started are still alive: {leaked}"
