"""``raycourse-grade``: run every learner's notebooks against the course's own checks.

    raycourse-grade SUBMISSIONS [--out DIR] [--timeout SECONDS] [--lessons 00,01] [--jobs N]
    python -m raycourse.tools.classroom.run SUBMISSIONS ...

Submissions: ``SUBMISSIONS/<learner>/<NN_topic>.ipynb`` or flat
``SUBMISSIONS/<learner>__<NN_topic>.ipynb`` (see :mod:`.inputs`). Only regular
files inside the folder, up to ``--max-size`` MB, are read; the rest is
reported with its reason. If a learner handed in two files for one lesson, the
one named exactly like the course's is graded (else the newest). With
``--lessons`` a learner without that lesson gets "not attempted".

Each notebook runs headless in a fresh ``python3`` kernel of this environment,
in the course's ``notebooks/`` folder, with a deadline for the notebook's cells
(starting the kernel has its own); failing learner cells do not stop it. The course's pristine check cells replace
the learner's (:mod:`.prepare`), a guard installed before any learner code
snapshots the course and signs each verdict (:mod:`.sentinel`), and the verdicts
come back on the kernel's own messages (:mod:`.kernel`). A static scan of the
learner's cells (:mod:`.scan`) and the guard's run-time checks mark a notebook
"needs review" when its code reaches into the grader, Ray or IPython. The README
("Grading a class") states the threat model, including what this cannot stop.

Ray is started once per ``--jobs`` slot and reused by the notebooks that slot
grades, each joining through ``RAY_ADDRESS`` (:mod:`.pool`); notebooks are
graded lesson by lesson so a slot's Ray keeps its size. A notebook whose own
Ray set-up cannot be given by a slot (it calls ``ray.init`` itself, or starts
Ray with arguments that are not plain literals) starts its own Ray, as it would
on the learner's machine. When Ray could not start, the notebook is graded once
more; if that fails too, the report says the machine was too busy, not that the
learner was wrong. Every process a notebook started is stopped when its grading
ends (:mod:`.reaper`).

Outputs in ``--out`` (default ``grades/``): ``grades.csv`` (learner, lesson,
exercise, status, message), ``report.html``, and ``executed/<learner>/<lesson>.ipynb``.
Statuses: correct, needs review, incorrect (with the check's hint), not
attempted, and error (with the reason). Exit code 0 once grading completed,
whatever the learners scored; 2 for bad arguments; 130 when interrupted.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from ... import grading
from . import scan
from .inputs import MAX_BYTES, Unreadable, choose, discover, read_bytes, walk
from .kernel import Run, execute
from .pool import RaySpec, Slot
from .prepare import Lesson, Plan, Problem, _snippet, check_lesson, load_course, prepare, read_notebook, start_arguments
from .reaper import MARK, Reaper, Tree
from .report import ERROR, NEEDS_REVIEW, Row, folders, summary_line, write_csv, write_html
from .sentinel import verify

DEFAULT_TIMEOUT = 300.0
RAY_SETUP_FAILED = ("CourseSetupError", "timed out during startup", "Ray could not start", "Could not connect to the Ray",
                    "Failed to connect to GCS", "Timed out waiting for file", "Failed to start GCS")
_DROPPED = {"RAYCOURSE_STRICT", "RAYCOURSE_GRADE_LOG", "RAY_ADDRESS", "RAY_JOB_CONFIG_JSON_ENV_VAR", MARK,
            "RAYCOURSE_KEEP_ADDRESS"}


def kernel_environment(learner: str, lesson: str, mark: str, address: str | None) -> dict[str, str]:
    """This environment, minus what would change the grading, plus the run's mark and (maybe) its slot's Ray."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.setdefault("RAY_AUTH_MODE", "token")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.update({"RAYCOURSE_NOTEBOOK": f"{learner}/{lesson}", "RAYCOURSE_PROGRESS_DIR": "off", MARK: mark})
    if address:
        env["RAY_ADDRESS"] = address
        # Every Ray worker of this kernel's job carries the mark too, so the reaper finds what the tasks started.
        env["RAY_JOB_CONFIG_JSON_ENV_VAR"] = json.dumps({"runtime_env": {"env_vars": {MARK: mark}}})
    return env


def _cell_error(cell: Any) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
    return None


def ray_setup_failure(plan: Plan, run: Run | None = None) -> str | None:
    """Why Ray itself could not start (a busy machine, not the learner), if it could not: a set-up error in a
    cell, or the deadline passing (or the kernel dying) while the notebook was still starting Ray."""
    for cell in plan.nb.cells:
        error = _cell_error(cell)
        if error and any(marker in error for marker in RAY_SETUP_FAILED):
            return _snippet(error)
    if run is not None and run.stopped and run.stopped.startswith(("timed out", "kernel died")) \
            and 0 <= run.reached < len(plan.nb.cells):
        cell = plan.nb.cells[run.reached]
        source = cell.get("source", "") if cell.get("cell_type") == "code" else ""
        if run.reached == 0:
            return "the kernel could not even be set up in time"
        if "raycourse.start(" in source or "ray.init(" in source:
            # Joining a Ray on a very busy machine can abort in Ray's core worker (it kills the kernel).
            return ("the notebook's deadline passed while Ray was still starting" if run.stopped.startswith("timed out")
                    else "the kernel died while Ray was starting")
    return None


def judge(plan: Plan, lesson: Lesson, run: Run, findings: list[scan.Finding]) -> list[tuple[str, str, str]]:
    """(exercise, status, message) for every expected exercise, from the signed verdicts and the review signs."""
    if not run.capture.key:  # the guard never ran: nothing can be verified, and it is not the learner's doing
        why = run.stopped or (f"its first cell raised {_cell_error(plan.nb.cells[0])}" if _cell_error(plan.nb.cells[0])
                              else "it sent no key")
        return [(e, ERROR, f"The grader could not set the kernel up ({why}); nothing was graded.") for e in lesson.expected]
    review = [f"its code {scan.summary(findings)}"] if findings else []
    review += sorted(set(run.capture.strays))
    outcomes = []
    for exercise in lesson.expected:
        note, cell = plan.notes.get(exercise, ""), plan.check_cell.get(exercise)
        genuine, forged = [], 0
        for payload in run.capture.verdicts.get(cell, []) if cell is not None else []:
            record = verify(run.capture.key, payload) if run.capture.key else None
            if record and record.get("nonce") == plan.nonces.get(exercise) and record.get("exercise") == exercise:
                genuine.append(record)
            else:
                forged += 1
        if forged:
            review.append(f"a verdict the grader did not sign was shown in the check cell of {exercise}")
        if len(genuine) > 1:
            review.append(f"the check of {exercise} reported more than once")
        if genuine:
            record = genuine[0]
            status, message = str(record.get("status")), str(record.get("message"))
            if record.get("tampered"):
                review.append(f"when {exercise} was checked, the grader found and undid: {'; '.join(record['tampered'][:4])}")
        elif exercise in plan.errors:
            status, message = ERROR, plan.errors[exercise]
        elif cell is None:
            status, message = ERROR, "The course notebook has no check cell for this exercise (a course defect)."
        elif run.stopped and run.reached <= cell:
            status, message = ERROR, f"Not checked: the notebook {run.stopped}."
        else:
            error = _cell_error(plan.nb.cells[cell])
            why = f"raised {error}" if error else "recorded no verdict"
            status, message = ERROR, f"The check could not run: it {why}. Did an earlier cell fail, or a variable get renamed?"
        outcomes.append((exercise, status, f"{note} {message}".strip()))
    if not review:
        return outcomes
    why = "; ".join(dict.fromkeys(review))
    rows = []
    for exercise, status, message in outcomes:
        if status == grading.CORRECT:
            rows.append((exercise, NEEDS_REVIEW, f"The check passed, but this notebook needs a look before it counts: {why}. "
                                                 f"(The check said: {message})"))
        else:
            rows.append((exercise, status, f"{message} (Also needs review: {why}.)"))
    return rows


# --- the batch ---------------------------------------------------------------------------------------


class Batch:
    """One grading run: the course, the slots and their Rays, the reaper, the output folder."""

    def __init__(self, args: argparse.Namespace, scratch: str) -> None:
        self.args, self.lessons = args, args.lesson_map
        self.reaper = Reaper()
        self.starting = asyncio.Lock()
        environ = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        self.slots = [Slot(i, environ, self.reaper, scratch) for i in range(args.jobs)]
        self._course_findings: dict[str, set[str]] = {}

    def course_findings(self, lesson: Lesson) -> set[str]:
        """What the scan finds in the course's own notebook: the lesson does it, so it is no sign of tampering."""
        if lesson.number not in self._course_findings:
            cells = [(i, c.source) for i, c in enumerate(lesson.cells, 1) if c.cell_type == "code"]
            self._course_findings[lesson.number] = {f.what for f in scan.scan(cells)}
        return self._course_findings[lesson.number]

    async def notebook(self, learner: str, lesson: Lesson, path: Path, slot: Slot) -> tuple[list[tuple[str, str, str]], Any]:
        """Grade one file: (outcomes, the executed notebook or None). Never raises for a learner's mistake."""
        try:
            nb = read_notebook(read_bytes(path, self.args.submissions, self.args.max_bytes), path.name)
            check_lesson(nb, lesson, self.lessons)
        except (Problem, Unreadable) as problem:
            return [(e, ERROR, str(problem)) for e in lesson.expected] or [("", ERROR, str(problem))], None
        plan = prepare(nb, lesson)
        cells = plan.learner_cells()
        findings = [f for f in scan.scan(cells) if f.what not in self.course_findings(lesson)]
        arguments, own_init = start_arguments(cells)
        specs = {RaySpec.from_start(a, os.environ) for a in arguments or []}
        spec = specs.pop() if self.args.shared_ray and arguments and not own_init and len(specs) == 1 else None
        failure = None
        for attempt in (1, 2):
            address = await slot.ensure(spec, self.starting, self.args.timeout) if spec else None
            mark = self.reaper.new_mark()
            tree = Tree()
            try:
                run = await execute(plan, self.args.timeout, str(self.args.course / "notebooks"),
                                    kernel_environment(learner, lesson.number, mark, address), tree)
            finally:
                await asyncio.get_running_loop().run_in_executor(None, self.reaper.end, mark, tree)
            if address and not await slot.healthy():
                await slot.stop()  # a Ray that lost resources (a detached actor, a dead raylet) is not handed on
            failure = ray_setup_failure(plan, run)
            if not failure:
                break
            await slot.stop()
            if attempt == 1:
                plan = prepare(nb, lesson)  # a clean notebook and fresh nonces for the second try
        outcomes = judge(plan, lesson, run, findings)
        if failure:
            busy = (f"The machine was too busy: Ray could not start for this notebook, twice ({failure}). This is not "
                    "the learner's doing: grade it again when the machine is quieter, or with fewer --jobs.")
            outcomes = [(e, ERROR if s != grading.CORRECT else s, busy if s != grading.CORRECT else m) for e, s, m in outcomes]
        return outcomes, plan.nb

    async def grade(self) -> list[Row]:
        """Every (learner, lesson): its graded file, or "not attempted" / the reason its file was refused."""
        from tqdm.auto import tqdm

        args, lessons = self.args, self.lessons
        found = discover(args.submissions, {n: l.stem for n, l in lessons.items()}, args.lessons, args.out.resolve())
        rows = [Row(learner, number, "", ERROR, message) for learner, number, message in found.unknown]
        learners = sorted({learner for learner, _ in found.files} | {learner for learner, _ in found.refused}
                          | {row.learner for row in rows})
        graded = args.lessons or sorted({number for _, number in {**found.files, **found.refused}})
        folder = folders(learners)
        queue: list[tuple[str, str]] = []
        for number in graded:  # lesson by lesson: a slot's Ray keeps its size from one notebook to the next
            for learner in learners:
                lesson = lessons[number]
                if (learner, number) in found.files:
                    queue.append((learner, number))
                elif (learner, number) in found.refused:
                    why = " ".join(found.refused[(learner, number)])
                    rows += [Row(learner, number, e, ERROR, f"Not graded: {why}") for e in lesson.expected]
                else:
                    rows += [Row(learner, number, e, grading.NOT_ATTEMPTED, f"No notebook for lesson {number} was handed in.")
                             for e in lesson.expected]
        bar = tqdm(total=len(queue), desc="Grading", unit="notebook", file=sys.stderr, dynamic_ncols=True)

        async def work(slot: Slot) -> None:
            while queue:
                learner, number = queue.pop(0)
                lesson = lessons[number]
                path, note = choose(found.files[(learner, number)], lesson.stem)
                refused = " ".join(found.refused.get((learner, number), []))
                bar.set_postfix_str(f"{learner} {number}", refresh=True)
                try:
                    outcomes, nb = await self.notebook(learner, lesson, path, slot)
                except Exception as error:  # a grader bug must not stop the class's grading
                    outcomes, nb = [(e, ERROR, f"The grader failed on this notebook ({type(error).__name__}: {error}).")
                                    for e in lesson.expected], None
                link = self.write_executed(nb, folder[learner], lesson.stem)
                rows.extend(Row(learner, number, e, s, " ".join(p for p in (m, note, refused) if p), link) for e, s, m in outcomes)
                bar.update(1)

        try:
            await asyncio.gather(*(work(slot) for slot in self.slots))
        finally:
            bar.close()
            await asyncio.gather(*(slot.stop() for slot in self.slots), return_exceptions=True)
            await asyncio.get_running_loop().run_in_executor(None, self.reaper.close)
        return sorted(rows, key=lambda r: (r.learner, r.lesson, r.exercise))

    def write_executed(self, nb: Any, folder: str, stem: str) -> str:
        if nb is None:
            return ""
        target = self.args.out / "executed" / folder / f"{stem}.ipynb"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
            return target.relative_to(self.args.out).as_posix()
        except Exception:  # an odd learner cell that nbformat will not write: the grades still stand
            return ""


# --- the command ------------------------------------------------------------------------------------


def default_course() -> Path:
    """The course checkout this package lives in (``lib/raycourse`` -> the repository), else the cwd."""
    here = Path(__file__).resolve().parents[4]
    return here if (here / "notebooks").is_dir() else Path.cwd()


def default_jobs() -> int:
    """Notebooks at once: one per core (each mostly waits for its tasks), at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="raycourse-grade",
        description="Run every learner's notebooks headless against the course's checks; write grades.csv and report.html.",
        epilog=(
            "Layouts: SUBMISSIONS/<learner>/<NN_topic>.ipynb, or a flat SUBMISSIONS/<learner>__<NN_topic>.ipynb "
            "(also alice_01_tasks.ipynb). Statuses: correct, needs review, incorrect (with the hint), not attempted, "
            "error (with the reason). Exit code 0 when grading completed, 2 for bad arguments. Learners' code runs with "
            "your privileges: see the README's 'Grading a class' for what that means."
        ),
    )
    parser.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR", help="folder of learners' notebooks")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="folder for grades.csv, report.html, executed/ (default: grades)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help=f"deadline for each notebook's cells (default: {DEFAULT_TIMEOUT:g}; starting the kernel has its own)")
    parser.add_argument("--lessons", default=None, help="comma-separated lessons to grade, e.g. 00,01 (default: every lesson handed in)")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help=f"notebooks graded at once, each with its own Ray slot (default: {default_jobs()})")
    parser.add_argument("--max-size", type=float, default=MAX_BYTES / 1024 / 1024, metavar="MB", help="largest notebook file read (default: 20)")
    parser.add_argument("--no-shared-ray", dest="shared_ray", action="store_false", help="let every notebook start its own Ray (slower)")
    parser.add_argument("--course", type=Path, default=None, help="the course checkout with notebooks/ (default: this package's)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS_DIR {str(args.submissions)!r} is not a folder")
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if not (args.max_size > 0 and math.isfinite(args.max_size)):
        parser.error(f"--max-size must be a positive number of MB, got {args.max_size:g}")
    args.max_bytes = int(args.max_size * 1024 * 1024)
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
    if not any(True for _ in walk(args.submissions)):
        parser.error(f"no .ipynb files in {args.submissions}")
    return args


async def _grade(args: argparse.Namespace) -> list[Row]:
    """The batch, cancelled cleanly (kernels and Rays stopped) on Ctrl-C or SIGTERM."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, task.cancel)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
            pass
    with tempfile.TemporaryDirectory(prefix="raycourse-grade-") as scratch:
        return await Batch(args, scratch).grade()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"raycourse-grade: error: cannot create --out {args.out}: {error.strerror}", file=sys.stderr)
        return 2
    try:
        rows = asyncio.run(_grade(args))
    except (KeyboardInterrupt, asyncio.CancelledError):  # every kernel and Ray of the batch was stopped on the way out
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
