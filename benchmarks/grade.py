"""Class-grading benchmark (not a test): grade a class of learners' ``01_tasks`` and print notebooks per minute.

Builds a class from the course's current lesson 01 (most learners hand in the
solution, some the untouched starter), runs ``raycourse-grade`` on it as an
instructor would, and prints the throughput, the errors (rows with status
"error": none is expected), whether every verdict is the expected one (the
solutions correct, the starters not attempted), and the machine's load before
and after (other programs on the machine slow grading down: say how loaded it
was when quoting the figure). Goal: at least 3 notebooks per minute, 0 errors.

    .venv/bin/python benchmarks/grade.py [--learners 30] [--starters 6] [--jobs N] [--keep DIR]
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def build_class(folder: Path, learners: int, starters: int) -> dict[str, str]:
    """``folder/learner-NN/01_tasks.ipynb`` for each learner; returns learner -> the status every exercise should get."""
    solution = nbformat.read(ROOT / "solutions" / "01_tasks.ipynb", as_version=4)
    starter = nbformat.read(ROOT / "notebooks" / "01_tasks.ipynb", as_version=4)
    expected = {}
    for index in range(learners):
        learner = f"learner-{index + 1:02d}"
        is_starter = index >= learners - starters
        (folder / learner).mkdir(parents=True)
        nbformat.write(starter if is_starter else solution, folder / learner / "01_tasks.ipynb")
        expected[learner] = "not attempted" if is_starter else "correct"
    return expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--starters", type=int, default=6, help="how many of them hand in the untouched starter")
    parser.add_argument("--jobs", type=int, default=None, help="raycourse-grade --jobs (default: its own)")
    parser.add_argument("--timeout", type=float, default=600, help="per notebook (default 600 s: a loaded machine)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the class and the report in this folder")
    args = parser.parse_args()
    if args.learners < 1 or not 0 <= args.starters <= args.learners:
        parser.error("need --learners >= 1 and 0 <= --starters <= --learners")
    base = args.keep or Path(tempfile.mkdtemp(prefix="raycourse-grade-bench-"))
    expected = build_class(base / "class", args.learners, args.starters)
    command = [sys.executable, "-m", "raycourse.tools.classroom.run", str(base / "class"), "--out", str(base / "out"),
               "--timeout", str(args.timeout)] + (["--jobs", str(args.jobs)] if args.jobs else [])
    load_before = os.getloadavg()
    started = time.monotonic()
    finished = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    load_after = os.getloadavg()
    if finished.returncode != 0:
        print(finished.stderr[-3000:], file=sys.stderr)
        return 1
    with open(base / "out" / "grades.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    statuses = Counter(row["status"] for row in rows)
    errors = [row for row in rows if row["status"] == "error"]
    wrong = [row for row in rows if row["status"] != expected.get(row["learner"])]
    per_minute = args.learners / (seconds / 60)
    print(f"graded {args.learners} notebooks (01_tasks, {args.learners - args.starters} solutions, {args.starters} starters)"
          f" in {seconds:.0f} s: {per_minute:.2f} notebooks per minute (goal >= 3), {len(errors)} errors (goal 0)")
    print(f"statuses: {dict(statuses)}; verdicts as expected: {len(rows) - len(wrong)} of {len(rows)}")
    for row in (errors or wrong)[:5]:
        print(f"  {row['learner']} {row['exercise']}: {row['status']}: {row['message'][:200]}")
    print(f"machine: {os.cpu_count()} cores, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"(1-minute); jobs: {args.jobs or 'default'}; report: {base / 'out' / 'report.html'}")
    return 0 if not errors and not wrong else 1


if __name__ == "__main__":
    sys.exit(main())
