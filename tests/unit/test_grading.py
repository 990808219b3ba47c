"""The grading mechanism: verdicts, display, strict mode, the JSON log, and friendly failures."""
from __future__ import annotations

import json

import pytest

from raycourse import grading
from raycourse.grading import Incorrect, NotAttempted, exercise, expect_values, grade


@exercise("99.demo", "a demo exercise for the tests")
def _demo(answer):
    if answer is None:
        raise NotAttempted("fill in `answer`")
    if answer != 42:
        raise Incorrect(f"{answer} is not the answer")
    return "right"


@exercise("99.crashes")
def _crashes(answer):
    return answer["missing"]


def test_three_statuses(no_strict):
    assert grade("99.demo", answer=42).status == "correct"
    assert grade("99.demo", answer=None).status == "not attempted"
    verdict = grade("99.demo", answer=7)
    assert verdict.status == "incorrect" and verdict.message == "7 is not the answer" and not verdict.passed


def test_unknown_exercise_and_changed_check_cell_are_explained(no_strict):
    assert "no exercise called" in grade("99.nope").message
    assert "check cell was changed" in grade("99.demo", wrong_name=1).message


def test_a_check_that_chokes_on_the_answer_gives_a_message_not_a_traceback(no_strict):
    verdict = grade("99.crashes", answer={})
    assert verdict.status == "incorrect" and "could not use your answer" in verdict.message


def test_check_logs_one_json_line_per_call(tmp_path, monkeypatch, capsys):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("RAYCOURSE_GRADE_LOG", str(log))
    monkeypatch.delenv("RAYCOURSE_STRICT", raising=False)
    grading.check("99.demo", answer=42)
    grading.check("99.demo", answer=1)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["exercise"], r["status"]) for r in records] == [("99.demo", "correct"), ("99.demo", "incorrect")]
    assert "99.demo" in capsys.readouterr().out  # plain text outside Jupyter


def test_strict_mode_raises_unless_correct(monkeypatch, capsys):
    monkeypatch.setenv("RAYCOURSE_STRICT", "1")
    monkeypatch.delenv("RAYCOURSE_GRADE_LOG", raising=False)
    assert grading.check("99.demo", answer=42).passed
    with pytest.raises(grading.ExerciseNotPassed, match="NOT ATTEMPTED"):
        grading.check("99.demo", answer=None)


def test_html_display_escapes_the_message():
    html = grading.Verdict("99.demo", "incorrect", "<script>x</script>")._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and 'data-status="incorrect"' in html


def test_expect_values_hints():
    with pytest.raises(Incorrect, match="3 items"):
        expect_values([1, 2, 3], [1, 2])
    with pytest.raises(NotAttempted):
        expect_values(None, [1])
    with pytest.raises(Incorrect, match="should be a list"):
        expect_values(5, [1])
    expect_values((1, 2), [1, 2])


def test_every_lesson_registers_checks():
    ids = grading.registered()
    assert {"00.first_task", "01.parallel_calls"} <= set(ids)
    assert all(len(i.split(".")[0]) == 2 for i in ids if not i.startswith("99."))
