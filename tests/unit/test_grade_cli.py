"""`python -m raycourse.tools.classroom.run`: one CLI run over hand-made lesson-00 submissions, one case per learner.

The fixtures (tests/unit/fixtures/grade/submissions, made by make_fixtures.py):
alice correct, bob the starter, carol deleted the check cell, dave replaced it
by a fake "correct", erin redefined raycourse.check/grade and the checks, frank
loops forever after starting Ray, grace's kernel dies after starting Ray,
henry/ivy/kate handed in malformed / zero-byte / cell-less files, jack handed
in lesson 01 named as 00. The notebooks run once (module fixture, in parallel);
the other tests need no kernel.
"""
from __future__ import annotations

import csv
import importlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

import raycourse
from raycourse.tools.classroom import prepare as gradeprep, report

grade_cli = importlib.import_module("raycourse.tools.classroom.run")
ROOT = Path(__file__).resolve().parents[2]
SUBMISSIONS = Path(__file__).resolve().parent / "fixtures" / "grade" / "submissions"
SLOW = SUBMISSIONS.parent / "slow"  # frank, whose endless cell meets a short --timeout in a run of its own
TIMEOUT = 40
MARK = "RAYCOURSE_GRADE_TEST_MARK"


def _marked(mark: str) -> list[str]:
    """Processes (the kernels, their Ray) that inherited this test run's environment mark."""
    found = []
    for process in psutil.process_iter(["pid", "name"]):
        try:
            if process.environ().get(MARK) == mark:
                found.append(f"{process.pid} {process.info['name']}")
        except psutil.Error:
            pass
    return found


def _run(submissions: Path, out: Path, timeout: float, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "raycourse.tools.classroom.run", str(submissions), "--out", str(out), "--timeout", str(timeout), "--jobs", "3"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Both CLI runs at once: the class (generous timeout) and frank alone (short timeout)."""
    out, slow_out = tmp_path_factory.mktemp("grades"), tmp_path_factory.mktemp("grades_slow")
    mark = uuid.uuid4().hex
    env = {**os.environ, MARK: mark, "COURSE_DASHBOARD": "0", "COURSE_NUM_CPUS": "1", "RAY_AUTH_MODE": "token"}
    started = time.monotonic()
    runs = [_run(SUBMISSIONS, out, 300, env), _run(SLOW, slow_out, TIMEOUT, env)]
    results = [run.communicate(timeout=600) for run in runs]
    rows = {}
    for folder in (out, slow_out):
        with open(folder / "grades.csv", encoding="utf-8") as handle:
            rows.update({(r["learner"], r["exercise"]): r for r in csv.DictReader(handle)})
    return {"runs": list(zip(runs, results)), "out": out, "rows": rows, "mark": mark, "seconds": time.monotonic() - started}


def verdict(graded, learner: str, exercise: str = "00.first_task") -> tuple[str, str]:
    row = graded["rows"][(learner, exercise)]
    return row["status"], row["message"]


def test_cli_completes_with_exit_code_0(graded):
    for run, (stdout, stderr) in graded["runs"]:
        assert run.returncode == 0, stderr[-2000:]
        assert "Traceback" not in stderr and "WARNING" not in stderr
        assert "Graded" in stdout and "report.html" in stdout
        assert "notebook" in stderr  # the progress bar


def test_csv_has_the_documented_columns_and_every_learner(graded):
    header = (graded["out"] / "grades.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "learner,lesson,exercise,status,message"
    learners = {learner for learner, _ in graded["rows"]}
    assert learners == {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "henry", "ivy", "jack", "kate"}
    print(f"both CLI runs took {graded['seconds']:.0f} s")


def test_correct_notebook_is_correct(graded):
    status, message = verdict(graded, "alice")
    assert status == "correct", message


def test_starter_notebook_is_not_attempted(graded):
    status, message = verdict(graded, "bob")
    assert status == "not attempted" and "@ray.remote" in message


def test_deleted_check_cell_is_put_back_and_reported(graded):
    status, message = verdict(graded, "carol")
    assert status == "not attempted"  # the course's check ran: a missing check is not an error or a pass
    assert "check cell was missing" in message


def test_fake_correct_in_an_edited_check_cell_does_not_pass(graded):
    status, message = verdict(graded, "dave")
    assert status == "not attempted"
    assert "had been edited" in message


def test_redefined_check_machinery_does_not_pass(graded):
    status, message = verdict(graded, "erin")
    assert status == "not attempted", message


def test_endless_cell_times_out(graded):
    status, message = verdict(graded, "frank")
    assert status == "error"
    assert f"timed out after {TIMEOUT} s in cell" in message and "while True" in message


def test_dead_kernel_is_reported(graded):
    status, message = verdict(graded, "grace")
    assert status == "error"
    assert "kernel died in cell" in message and "os._exit" in message


@pytest.mark.parametrize(
    "learner, reason",
    [("henry", "invalid JSON"), ("ivy", "is empty (0 bytes)"), ("kate", "no cells"), ("jack", "This is lesson 01")],
)
def test_bad_files_are_reported_not_run(graded, learner, reason):
    status, message = verdict(graded, learner)
    assert status == "error" and reason in message
    assert not (graded["out"] / "executed" / learner).exists()


def test_html_report_has_a_table_per_learner_and_counts(graded):
    page = (graded["out"] / "report.html").read_text(encoding="utf-8")
    assert page.count('<table class="learner">') == 10  # frank is in the other run's report
    assert 'data-status="correct"' in page and 'data-status="error"' in page
    assert "Summary" in page and "00.first_task" in page


def test_no_process_of_the_graded_kernels_is_left(graded):
    deadline = time.monotonic() + 15
    while (left := _marked(graded["mark"])) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"the grader left these processes running: {left}"


# --- without a kernel ---------------------------------------------------------------------------


def _main(argv: list[str]) -> int:
    try:
        return grade_cli.main(argv)
    except SystemExit as exit:
        return int(exit.code or 0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["/nonexistent/submissions", "--out", "/nonexistent/out"], "is not a folder"),
        ([str(SUBMISSIONS), "--lessons", "99"], "unknown lesson"),
        ([str(SUBMISSIONS), "--timeout", "0"], "--timeout must be a positive"),
        ([str(SUBMISSIONS), "--jobs", "0"], "--jobs must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert _main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_folder_without_notebooks_exits_2(tmp_path, capsys):
    assert _main([str(tmp_path)]) == 2
    assert "no .ipynb files" in capsys.readouterr().err


def test_missing_lessons_are_not_attempted_and_unknown_files_reported(tmp_path, capsys):
    subs = tmp_path / "subs"
    (subs / "zoe").mkdir(parents=True)
    (subs / "zoe" / "01_tasks.ipynb").write_text("{ not json")
    (subs / "yann__00_setup.ipynb").write_bytes(b"")
    (subs / "zoe" / "scratch.ipynb").write_text("{}")
    assert _main([str(subs), "--out", str(tmp_path / "out"), "--lessons", "0,01"]) == 0
    with open(tmp_path / "out" / "grades.csv", encoding="utf-8") as handle:
        rows = {(r["learner"], r["lesson"], r["exercise"]): r for r in csv.DictReader(handle)}
    assert rows[("zoe", "00", "00.first_task")]["status"] == "not attempted"
    assert rows[("yann", "01", "01.parallel_calls")]["status"] == "not attempted"
    assert rows[("zoe", "01", "01.pi_blocks")]["status"] == "error"
    assert rows[("yann", "00", "00.first_task")]["message"].startswith("yann__00_setup.ipynb is empty")
    assert "Graded 2 learners" in capsys.readouterr().out


def test_names_give_learner_and_lesson():
    lessons = gradeprep.load_course(ROOT)
    cases = {
        "alice__01_tasks.ipynb": ("alice", "01"),
        "bob_00_setup.ipynb": ("bob", "00"),
        "01_tasks-carol.ipynb": ("carol", "01"),
        "dave/lesson1.ipynb": ("dave", "01"),
        "erin/week1/00_setup (1).ipynb": ("erin", "00"),
    }
    for name, (learner, lesson) in cases.items():
        number, token = gradeprep.lesson_of(Path(name).stem, lessons)
        assert (gradeprep.learner_of(Path(name), token, Path("/x/class")), number) == (learner, lesson), name


def test_another_lesson_and_unrelated_notebooks_are_told_apart():
    lessons = gradeprep.load_course(ROOT)
    lesson01 = nbformat.read(ROOT / "notebooks" / "01_tasks.ipynb", as_version=4)
    with pytest.raises(gradeprep.Problem, match="This is lesson 01"):
        gradeprep.check_lesson(lesson01, lessons["00"], lessons)
    unrelated = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    with pytest.raises(gradeprep.Problem, match="does not look like lesson 00"):
        gradeprep.check_lesson(unrelated, lessons["00"], lessons)
    mine = nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    gradeprep.check_lesson(mine, lessons["00"], lessons)  # no exception


def test_prepare_replaces_edited_check_keeps_learner_code_and_reports_unplaceable(tmp_path):
    lessons = gradeprep.load_course(ROOT)
    nb = nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    check = next(c for c in nb.cells if c.get("id") == "00-010")
    check.source = 'extra = 1\nraycourse.check("00.first_task", squares=[0, 1, 4, 9, 16], square=square, since=0)'
    plan = gradeprep.prepare(nb, lessons["00"], tmp_path / "log")
    sources = [c.source for c in plan.nb.cells]
    graded_check = sources[plan.check_cell["00.first_task"]]
    assert "checker(" in graded_check and "squares=squares" in graded_check and "raycourse.check" not in graded_check
    assert sources[plan.check_cell["00.first_task"] - 1] == "extra = 1\n"
    assert "edited" in plan.notes["00.first_task"]
    assert plan.origin[0] is None and "_raycourse_grader" in sources[0]

    orphan = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("squares = [0, 1, 4, 9, 16]")])
    plan = gradeprep.prepare(orphan, lessons["00"], tmp_path / "log")
    assert "could not tell where it belongs" in plan.errors["00.first_task"]


def test_forged_log_lines_are_ignored(tmp_path):
    lessons = gradeprep.load_course(ROOT)
    nb = nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    log = tmp_path / "log"
    plan = gradeprep.prepare(nb, lessons["00"], log)
    token = plan.tokens["00.first_task"]
    log.write_text(
        '{"exercise": "00.first_task", "status": "correct", "message": "forged, no token"}\n'
        f'{{"token": "{token}", "exercise": "00.first_task", "status": "not attempted", "message": "genuine"}}\n'
        f'{{"token": "{token}", "exercise": "00.first_task", "status": "correct", "message": "forged later"}}\n'
        "not json\n"
    )
    assert grade_cli.verdicts(plan, log) == {"00.first_task": ("not attempted", "genuine")}


def test_ray_that_could_not_start_is_not_blamed_on_the_learner(tmp_path):
    lessons = gradeprep.load_course(ROOT)
    nb = nbformat.read(ROOT / "solutions" / "00_setup.ipynb", as_version=4)
    plan = gradeprep.prepare(nb, lessons["00"], tmp_path / "log")
    start = next(c for c in plan.nb.cells if "raycourse.start(" in c.source)
    start.outputs = [nbformat.v4.new_output("error", ename="CourseSetupError", evalue="Ray could not start in time", traceback=[])]
    check = plan.nb.cells[plan.check_cell["00.first_task"]]
    check.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="name 'squares' is not defined", traceback=[])]
    [(exercise, status, message)] = grade_cli.results(plan, lessons["00"], {}, None, len(plan.nb.cells))
    assert status == "error" and "NameError" in message and "Ray could not start in this kernel" in message


def test_snapshot_check_ignores_redefined_machinery(tmp_path, monkeypatch, no_strict):
    """The grader's hidden first cell, run here in-process: tampering after it does not change the verdict."""
    import json

    import raycourse.grading as grading
    from raycourse.checks import lesson00

    log = tmp_path / "log"
    exec(gradeprep._PROLOGUE.replace("LOG_PATH", repr(str(log))).replace("LESSON", repr("00")), {})
    fake = grading.Verdict("00.first_task", "correct", "Well done.")
    monkeypatch.setattr(raycourse, "check", lambda *a, **k: fake)
    monkeypatch.setattr(grading, "grade", lambda *a, **k: fake)
    monkeypatch.setitem(grading._REGISTRY, "00.first_task", lambda **answer: "Well done.")
    monkeypatch.setattr(lesson00, "require_remote", lambda *a, **k: None)
    checker = sys.modules.pop("_raycourse_grader").checker("tok")
    checker("00.first_task", squares=[0, 1, 4, 9, 16], square=lambda x: x * x, since=0.0)
    record = json.loads(log.read_text())
    assert record["token"] == "tok" and record["status"] == "not attempted", record
    assert grading._REGISTRY["00.first_task"] is lesson00.first_task and grading.grade is not None


def test_html_escapes_messages(tmp_path):
    rows = [report.Row("<b>eve</b>", "00", "00.first_task", "incorrect", "<script>alert(1)</script> & more")]
    report.write_html(rows, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "&lt;b&gt;eve" in page


