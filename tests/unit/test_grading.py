"""The grading mechanism: names read from the notebook, verdicts, display, strict mode, logs and progress."""
from __future__ import annotations

import json

import pytest

from raycourse import grading, history, record
from raycourse.grading import Incorrect, NotAttempted, exercise, grade


@exercise("99.demo", "a demo exercise for the tests")
def _demo(answer):
    if answer is None:
        raise NotAttempted("fill in `answer`")
    if answer != 42:
        raise Incorrect(f"`answer` is {answer}, not the answer")
    return "right"


@exercise("99.crashes")
def _crashes(answer):
    return answer["missing"]


@exercise("99.context")
def _context(ctx, answer, knob=1):
    return f"{ctx.exercise} {answer} {knob}"


def test_three_statuses_from_a_namespace(no_strict):
    assert grade("99.demo", {"answer": 42}).status == "correct"
    assert grade("99.demo", {"answer": None}).status == "not attempted"
    verdict = grade("99.demo", {"answer": 7})
    assert verdict.status == "incorrect" and verdict.message == "`answer` is 7, not the answer" and not verdict.passed


def test_given_names_win_and_defaults_are_never_read_from_the_notebook(no_strict):
    assert grade("99.demo", {"answer": 7}, answer=42).passed
    assert grade("99.context", {"answer": 3, "knob": 99}).message == "99.context 3 1"
    assert grade("99.context", {"answer": 3}, knob=2).message == "99.context 3 2"


def test_a_missing_name_is_named(no_strict):
    verdict = grade("99.demo", {})
    assert verdict.status == "not attempted" and "`answer` is not defined yet" in verdict.message
    namespace = {}
    with record.cell(namespace):
        namespace["answer"] = 1
    del namespace["answer"]
    verdict = grade("99.demo", namespace)
    assert verdict.status == "incorrect" and "renamed or deleted" in verdict.message


def test_a_cell_that_stopped_before_setting_the_name_is_named_with_its_error(no_strict):
    namespace: dict = {}
    source = "n = 2.5\nanswer = list(range(n))\n"
    with pytest.raises(TypeError):
        with record.cell(namespace, source):
            exec(source, namespace)
    verdict = grade("99.demo", namespace)
    assert verdict.status == "incorrect", verdict
    assert "stopped with an error before setting it (TypeError: 'float' object cannot be interpreted" in verdict.message
    with record.cell(namespace, "answer = 42\n"):  # fixed and run again: judged on its value
        namespace["answer"] = 42
    assert grade("99.demo", namespace).passed


def test_unknown_exercise_and_changed_check_cell_are_explained(no_strict):
    assert "no exercise called" in grade("99.nope").message
    assert "check cell was changed" in grade("99.demo", {"answer": 42}, wrong_name=1).message


def test_a_check_defect_gives_a_plain_message_not_a_traceback(no_strict):
    verdict = grade("99.crashes", {"answer": {}})
    assert verdict.status == "incorrect" and "defect in the course's check" in verdict.message
    assert "KeyError" in verdict.message and "Traceback" not in verdict.message


def test_a_check_defect_raises_in_strict_mode(monkeypatch):
    monkeypatch.setenv("RAYCOURSE_STRICT", "1")
    with pytest.raises(KeyError):
        grade("99.crashes", {"answer": {}})


def test_check_reads_the_callers_globals_outside_ipython(no_strict):
    global answer
    answer = 42
    try:
        assert grading.check("99.demo").passed
    finally:
        del answer


def test_check_logs_one_json_line_per_call(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("RAYCOURSE_GRADE_LOG", str(log))
    monkeypatch.delenv("RAYCOURSE_STRICT", raising=False)
    grading.check("99.demo", answer=42)
    grading.check("99.demo", answer=1)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["exercise"], r["status"]) for r in records] == [("99.demo", "correct"), ("99.demo", "incorrect")]


def test_strict_mode_raises_unless_correct(monkeypatch, capsys):
    monkeypatch.setenv("RAYCOURSE_STRICT", "1")
    monkeypatch.delenv("RAYCOURSE_GRADE_LOG", raising=False)
    assert grading.check("99.demo", answer=42).passed
    with pytest.raises(grading.ExerciseNotPassed, match="NOT ATTEMPTED"):
        grading.check("99.demo", answer=None)
    assert "99.demo" in capsys.readouterr().out  # shown before it is raised


def test_html_escapes_and_shows_backticks_as_code():
    verdict = grading.Verdict("99.demo", "incorrect", "`x` is <b>bold</b> & more")
    page = verdict._repr_html_()
    assert "<code>x</code>" in page and "&lt;b&gt;bold&lt;/b&gt; &amp; more" in page
    assert 'data-status="incorrect"' in page


def test_output_of_the_check_and_the_learners_code_is_kept_out_of_the_cell(no_strict, capsys):
    @exercise("99.noisy")
    def noisy(answer):
        print("chatter from the learner's function")
        return "fine"

    assert grade("99.noisy", {"answer": 1}).passed
    assert "chatter" not in capsys.readouterr().out


def test_progress_records_verdicts_and_counts_attempts(tmp_path, monkeypatch, no_strict):
    monkeypatch.setenv("RAYCOURSE_PROGRESS_DIR", str(tmp_path))
    grading.check("99.demo", answer=None)
    grading.check("99.demo", answer=1)
    grading.check("99.demo", answer=42)
    grading.check("99.demo", answer=2)
    lines = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert [r["status"] for r in lines] == ["not attempted", "incorrect", "correct", "incorrect"]
    assert set(lines[0]) == {"exercise", "status", "time"}  # never code, never outputs
    row = next(r for r in history.standings() if r.exercise == "99.demo")
    assert (row.latest, row.attempts) == ("incorrect", 3) and row.first_correct == lines[2]["time"]
    shown = repr(history.progress())
    assert "99.demo" in shown and "exercises correct" in shown
    assert history.progress().figure() is not None


def test_progress_can_be_turned_off_and_survives_a_damaged_file(tmp_path, monkeypatch, no_strict):
    monkeypatch.setenv("RAYCOURSE_PROGRESS_DIR", "off")
    grading.check("99.demo", answer=42)
    assert not any(tmp_path.iterdir())
    monkeypatch.setenv("RAYCOURSE_PROGRESS_DIR", str(tmp_path))
    (tmp_path / "progress.jsonl").write_text("not json\n{\"exercise\": \"99.demo\", \"status\": \"correct\", \"time\": 1}\n")
    row = next(r for r in history.standings() if r.exercise == "99.demo")
    assert row.latest == "correct"


def test_a_failing_listener_never_costs_the_verdict(no_strict):
    def broken(verdict):
        raise OSError("disk full")

    grading.listen(broken)
    try:
        assert grading.check("99.demo", answer=42).passed
    finally:
        grading._LISTENERS.remove(broken)


def test_a_correct_verdict_shows_its_picture_only_on_request(no_strict):
    @exercise("99.pictured")
    def pictured(answer):
        return grading.Passed("fine", evidence="a figure")

    assert grading.check("99.pictured", answer=1).evidence is None
    shown = grading.check("99.pictured", evidence=True, answer=1)
    assert shown.passed and shown.message == "fine" and shown.evidence == "a figure"


def test_an_incorrect_verdict_with_its_picture_is_logged(tmp_path, monkeypatch):
    """The grade log takes the verdict's words, never its picture (a deep copy of a bokeh figure raises)."""
    from raycourse import plots
    from raycourse.timing import Interval

    log = tmp_path / "grades.jsonl"
    monkeypatch.setenv("RAYCOURSE_GRADE_LOG", str(log))
    spans = [Interval("work", f"t{i}", f"w{i % 2:03d}", i * 0.5, i * 0.5 + 1.0) for i in range(4)]
    verdict = grading.Verdict("03.process_in_order", grading.INCORRECT, "not in order",
                              plots.compare(spans, plots.sketch([[(0, 1), (1, 2)]])))
    grading.announce(verdict)
    [line] = log.read_text().splitlines()
    assert {k: v for k, v in json.loads(line).items() if k in ("exercise", "status", "message")} == verdict.to_record()
