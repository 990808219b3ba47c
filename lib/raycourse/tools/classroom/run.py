"""Grade a class: run every learner's notebooks against the course's own checks.

    python -m raycourse.grade SUBMISSIONS [--out DIR] [--timeout SECONDS] [--lessons 00,01] [--jobs N]

Layout of SUBMISSIONS (both may be mixed):

* one folder per learner: ``SUBMISSIONS/<learner>/<NN_topic>.ipynb`` (deeper folders
  are fine; the first folder names the learner);
* a flat folder: ``SUBMISSIONS/<learner>__<NN_topic>.ipynb`` (also ``alice_01_tasks.ipynb``,
  ``01_tasks-alice.ipynb``: the lesson is the course notebook's name, or the first
  two-digit number, and the rest of the name is the learner).

Hidden files and folders (``.ipynb_checkpoints``) are ignored. If a learner handed
in two files for one lesson, the one named exactly like the course's is graded
(else the newest) and the report says so. A lesson nobody's file names is not
graded; with ``--lessons`` a learner without that lesson gets "not attempted".

Each notebook runs headless in a fresh ``python3`` kernel of this environment
(nbclient), in the course's ``notebooks/`` folder, on its own local Ray
(``RAY_ADDRESS``, ``RAYCOURSE_STRICT`` and ``RAYCOURSE_GRADE_LOG`` are unset for it),
with a deadline for the whole notebook. Failing learner cells do not stop it.
Afterwards every process the kernel started (its Ray head, raylet, workers) that
is still alive is terminated: found through psutil from the kernel's pid while it
ran; never a command that stops every Ray on the machine, never anybody else's processes.

Outputs in ``--out`` (default ``grades/``): ``grades.csv`` (learner, lesson,
exercise, status, message), ``report.html`` (summary of counts and one table per
learner), and ``executed/<learner>/<lesson>.ipynb`` (what ran, with outputs).
Statuses: correct, incorrect (with the check's hint), not attempted, and error
(with the reason: not a notebook, empty, another lesson's notebook, timed out,
kernel died, check cell could not run). When Ray itself could not start in a
kernel (an overloaded grading machine), the message says so rather than blaming
the learner: grade again with fewer ``--jobs``. Exit code 0 once grading
completed, whatever the learners scored; 2 for bad arguments.

Threat model. Verdicts never come from the notebook's saved outputs, which are
removed before running. Before execution each exercise's check cell is replaced
by the course's pristine one, taken from the reference learner notebook in the
course's ``notebooks/`` (matched by cell id, else by its ``check("ID"`` call);
extra code the learner put in that cell runs just before it, and a deleted check
cell is put back where it belongs (after the answer cell) when the grader can
find that place, else the exercise is an error. A hidden first cell, run before
any learner code, snapshots the course's modules (every ``raycourse.*`` name,
function code, and the check registry); each pristine check cell restores that
snapshot, grades with the snapshotted ``grade`` and appends the verdict, tagged
with a random token that exists only in that cell's source, to a log outside the
notebook. So editing or deleting a check cell, printing "correct", redefining
``raycourse.check``/``grade`` or a check function, or appending fake lines to the
log do not pass. Not covered: code that deliberately attacks the grader inside
the kernel (IPython input hooks, patching builtins or Ray, reading the grader's
private objects) or the machine (editing the course's files on disk). Learners'
code runs with your privileges: grade untrusted work in a container.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from ... import grading
from .prepare import Lesson, Plan, Problem, _snippet, _source, check_lesson, choose, discover, load_course, prepare, read_notebook
from .report import ERROR, Row, summary_line, write_csv, write_html

DEFAULT_TIMEOUT = 300.0
_QUIET = logging.getLogger("raycourse.grade.nbclient")  # nbclient logs timeouts and deaths; the report says them better
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


# --- running one notebook ---------------------------------------------------------------------------


class _Processes:
    """Every process the kernel started, remembered while it runs (a dead kernel's children are orphans)."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}  # pid -> create_time (guards against a reused pid)

    def record(self, pid: int | None) -> None:
        import psutil

        if not pid:
            return
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                self.seen.setdefault(process.pid, process.create_time())
        except psutil.Error:
            pass

    def sweep(self, grace: float = 10.0) -> None:
        """Let them exit on their own (Ray stops after ``ray.shutdown()``), then terminate, then kill."""
        import psutil

        alive = []
        for pid, created in self.seen.items():
            try:
                process = psutil.Process(pid)
                if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.Error:
                pass
        for signal_them, wait in ((None, grace), ("terminate", 5.0), ("kill", 2.0)):
            for process in alive if signal_them else []:
                try:
                    getattr(process, signal_them)()
                except psutil.Error:
                    pass
            _, alive = psutil.wait_procs(alive, timeout=wait)
            if not alive:
                return


def kernel_environment(learner: str, lesson: str) -> dict[str, str]:
    """This environment, minus what would change the grading or join somebody else's Ray."""
    env = {k: v for k, v in os.environ.items() if k not in {"RAYCOURSE_STRICT", "RAYCOURSE_GRADE_LOG", "RAY_ADDRESS"}}
    env.setdefault("RAY_AUTH_MODE", "token")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env["RAYCOURSE_NOTEBOOK"] = f"{learner}/{lesson}"
    return env


async def execute(plan: Plan, timeout: float, cwd: Path, env: dict[str, str]) -> tuple[str | None, int]:
    """Run ``plan.nb`` in place; return why it stopped early (timed out, kernel died) or None, and the cell it reached."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    deadline = time.monotonic() + timeout
    current = {"index": 0}
    processes = _Processes()

    def kernel_pid() -> int | None:
        return getattr(getattr(client.km, "provisioner", None), "pid", None) if client.km else None

    def on_cell_start(cell: Any, cell_index: int) -> None:
        current["index"] = cell_index
        processes.record(kernel_pid())

    client = NotebookClient(
        plan.nb, kernel_name="python3", allow_errors=True, timeout_func=lambda cell: max(1, math.ceil(deadline - time.monotonic())),
        resources={"metadata": {"path": str(cwd)}}, on_cell_start=on_cell_start, startup_timeout=120, log=_QUIET,
    )
    client.on_cell_executed = lambda cell, cell_index, execute_reply: processes.record(kernel_pid())

    async def watch() -> None:
        while True:
            processes.record(kernel_pid())
            await asyncio.sleep(0.5)

    def where() -> str:
        index = current["index"]
        if plan.origin[index]:
            return f"in cell {plan.origin[index]} (`{_snippet(_source(plan.nb.cells[index]))}`)"
        checked = [e for e, i in plan.check_cell.items() if i == index]
        return f"in the check cell of {checked[0]}" if checked else "while starting the kernel"

    watcher = asyncio.ensure_future(watch())
    try:
        # The kernel's own stderr holds only jupyter's warnings; the learner's output reaches the notebook.
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        await asyncio.wait_for(client.async_execute(env=env, **quiet), timeout + 120)
        return None, len(plan.nb.cells)
    except (CellTimeoutError, asyncio.TimeoutError):
        return f"timed out after {timeout:g} s {where()}", current["index"]
    except DeadKernelError:
        return f"kernel died {where()}: the code crashed Python (os._exit, a segfault or out of memory)", current["index"]
    except Exception as error:  # the kernel failed to start, or nbclient failed: report it, grade the rest
        return f"could not be run ({type(error).__name__}: {_snippet(str(error))})", current["index"]
    finally:
        watcher.cancel()
        processes.record(kernel_pid())
        if client.km is not None and client.kc is not None:
            try:
                await client._async_cleanup_kernel()
            except Exception:  # already gone: the sweep below still removes its processes
                pass
        await asyncio.get_running_loop().run_in_executor(None, processes.sweep)


def _cell_error(cell: Any) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return None


def verdicts(plan: Plan, log_path: Path) -> dict[str, tuple[str, str]]:
    """exercise -> (status, message) from the log lines that carry that exercise's token (first wins)."""
    found: dict[str, tuple[str, str]] = {}
    owner = {token: exercise for exercise, token in plan.tokens.items()}
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            record = json.loads(line)
            exercise = owner.get(record.get("token"))
        except (ValueError, AttributeError, TypeError):
            continue
        if exercise and record.get("exercise") == exercise and exercise not in found:
            found[exercise] = (str(record.get("status")), str(record.get("message")))
    return found


def results(plan: Plan, lesson: Lesson, found: dict[str, tuple[str, str]], stopped: str | None, stopped_at: int) -> list[tuple[str, str, str]]:
    """(exercise, status, message) for every expected exercise of the lesson."""
    rows = []
    setup = next((e for c in plan.nb.cells if (e := _cell_error(c)) and ("CourseSetupError" in e or "during startup" in e)), None)
    for exercise in lesson.expected:
        note = plan.notes.get(exercise, "")
        if exercise in plan.errors:
            status, message = ERROR, plan.errors[exercise]
        elif exercise in found:
            status, message = found[exercise]
        elif exercise not in plan.check_cell:
            status, message = ERROR, "The course notebook has no check cell for this exercise (a course defect)."
        elif stopped and stopped_at <= plan.check_cell[exercise]:
            status, message = ERROR, f"Not checked: the notebook {stopped}."
        else:
            error = _cell_error(plan.nb.cells[plan.check_cell[exercise]])
            why = f"raised {error}" if error else "recorded no verdict"
            status, message = ERROR, f"The check could not run: it {why}. Did an earlier cell fail, or a variable get renamed?"
        if status in (ERROR, grading.INCORRECT) and setup and exercise not in plan.errors:  # not the learner's fault: say so
            message += f" Ray could not start in this kernel ({_snippet(setup)}); the grading machine may be overloaded: grade again with fewer --jobs."
        rows.append((exercise, status, f"{note} {message}".strip()))
    return rows


async def grade_notebook(path: Path, learner: str, lesson: Lesson, lessons: dict[str, Lesson], timeout: float, course: Path) -> tuple[list[tuple[str, str, str]], Any]:
    """Grade one file: (rows, the executed notebook or None). Never raises for a learner's mistake."""
    try:
        nb = read_notebook(path)
        check_lesson(nb, lesson, lessons)
    except Problem as problem:
        return [(e, ERROR, str(problem)) for e in lesson.expected] or [("", ERROR, str(problem))], None
    with tempfile.TemporaryDirectory(prefix="raycourse-grade-") as tmp:
        log_path = Path(tmp) / "verdicts.jsonl"
        plan = prepare(nb, lesson, log_path)
        stopped, stopped_at = await execute(plan, timeout, course / "notebooks", kernel_environment(learner, lesson.number))
        return results(plan, lesson, verdicts(plan, log_path), stopped, stopped_at), plan.nb


# --- the command ------------------------------------------------------------------------------------


def default_course() -> Path:
    """The course checkout this package lives in (``lib/raycourse`` -> the repository), else the cwd."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "notebooks").is_dir() else Path.cwd()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m raycourse.grade",
        description="Run every learner's notebooks headless against the course's checks; write grades.csv and report.html.",
        epilog=(
            "Layouts: SUBMISSIONS/<learner>/<NN_topic>.ipynb, or a flat SUBMISSIONS/<learner>__<NN_topic>.ipynb "
            "(also alice_01_tasks.ipynb). Statuses: correct, incorrect (with the hint), not attempted, error (with the reason). "
            "Exit code 0 when grading completed, 2 for bad arguments. Learners' code runs with your privileges."
        ),
    )
    parser.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR", help="folder of learners' notebooks")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="folder for grades.csv, report.html, executed/ (default: grades)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help=f"deadline for each notebook, kernel start included (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--lessons", default=None, help="comma-separated lessons to grade, e.g. 00,01 (default: every lesson handed in)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default: 1; each starts its own Ray)")
    parser.add_argument("--course", type=Path, default=None, help="the course checkout with notebooks/ (default: this package's)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS_DIR {str(args.submissions)!r} is not a folder")
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    args.course = (args.course or default_course()).resolve()
    try:
        args.lesson_map = load_course(args.course)
    except Exception as error:  # a damaged course notebook: say which, no traceback
        parser.error(f"cannot read the course's notebooks in {args.course / 'notebooks'}: {error}")
    if not args.lesson_map:
        parser.error(f"no course notebooks (NN_topic.ipynb) in {args.course / 'notebooks'}; pass --course")
    if args.lessons is not None:
        wanted = [part.strip()[:2].zfill(2) if part.strip()[:2].isdigit() else part.strip() for part in args.lessons.split(",") if part.strip()]
        bad = [w for w in wanted if w not in args.lesson_map]
        if bad or not wanted:
            parser.error(f"--lessons: unknown lesson(s) {', '.join(bad) or '(none given)'}; this course has {', '.join(args.lesson_map)}")
        args.lessons = wanted
    if not any(args.submissions.rglob("*.ipynb")):
        parser.error(f"no .ipynb files in {args.submissions}")
    return args


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "learner"


async def grade_all(args: argparse.Namespace) -> list[Row]:
    """Every (learner, lesson): graded file, or "not attempted" if none was handed in."""
    from tqdm.auto import tqdm

    lessons: dict[str, Lesson] = args.lesson_map
    found, rows = discover(args.submissions, lessons, args.lessons, args.out.resolve())
    learners = sorted({learner for learner, _ in found} | {row.learner for row in rows})
    graded = args.lessons or sorted({number for _, number in found})
    executed = args.out / "executed"
    limit = asyncio.Semaphore(args.jobs)
    bar = tqdm(total=len(found), desc="Grading", unit="notebook", file=sys.stderr, dynamic_ncols=True)

    async def one(learner: str, number: str) -> list[Row]:
        lesson = lessons[number]
        if (learner, number) not in found:
            return [Row(learner, number, e, grading.NOT_ATTEMPTED, f"No notebook for lesson {number} was handed in.") for e in lesson.expected]
        path, note = choose(found[(learner, number)], lesson)
        async with limit:
            bar.set_postfix_str(f"{learner} {number}", refresh=True)
            try:
                verdicts, nb = await grade_notebook(path, learner, lesson, lessons, args.timeout, args.course)
            except Exception as error:  # a grader bug must not stop the class's grading
                verdicts, nb = [(e, ERROR, f"The grader failed on this notebook ({type(error).__name__}: {error}).") for e in lesson.expected], None
            bar.update(1)
        link = ""
        if nb is not None:
            target = executed / _safe(learner) / f"{lesson.stem}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                nbformat.write(nb, target)
                link = target.relative_to(args.out).as_posix()
            except Exception:  # an odd learner cell that nbformat will not write: the grades still stand
                pass
        return [Row(learner, number, e, s, f"{m} {note}".strip(), link) for e, s, m in verdicts]

    try:
        batches = await asyncio.gather(*(one(learner, number) for learner in learners for number in graded))
    finally:
        bar.close()
    return sorted([row for batch in batches for row in batch] + rows, key=lambda r: (r.learner, r.lesson))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"python -m raycourse.grade: error: cannot create --out {args.out}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        rows = asyncio.run(grade_all(args))
    except KeyboardInterrupt:  # the kernels' processes were swept as their tasks were cancelled
        print("Interrupted: no report written.", file=sys.stderr)
        return 130
    write_csv(rows, args.out / "grades.csv")
    write_html(rows, args.out / "report.html")
    learners = len({row.learner for row in rows})
    print(f"Graded {learners} learners: {summary_line(rows)}.")
    print(f"CSV: {args.out / 'grades.csv'}\nHTML: {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
