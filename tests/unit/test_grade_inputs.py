"""What the grader reads and writes, without a kernel: hostile submission folders, names, the CSV and HTML report."""
from __future__ import annotations

import csv
import importlib
import os
import sys
import threading
from pathlib import Path

import pytest

from raycourse.tools.classroom import inputs, report

grade_cli = importlib.import_module("raycourse.tools.classroom.run")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures" / "grade"))
import make_fixtures  # noqa: E402

STEMS = {"00": "00_setup", "01": "01_tasks"}
posix = pytest.mark.skipif(os.name != "posix", reason="named pipes and /dev/zero are POSIX")


@posix
def test_hostile_entries_are_refused_with_their_reason_and_never_opened(tmp_path):
    root, outside = tmp_path / "class", tmp_path / "outside"
    expected = make_fixtures.build_hostile(root, outside)
    (root / "fine").mkdir()
    (root / "fine" / "00_setup.ipynb").write_text("{}")
    os.symlink(root / "fine" / "00_setup.ipynb", root / "fine-link__00_setup.ipynb")  # a link that stays inside
    reasons = {path.relative_to(root).parts[0]: why for path, why in inputs.walk(root)}
    for learner, reason in expected.items():
        assert reason in (reasons.get(learner) or ""), (learner, reasons.get(learner))
    assert reasons["elsewhere"] and "not followed" in reasons["elsewhere"]
    assert reasons["fine"] is None and reasons["fine-link__00_setup.ipynb"] is None


@posix
def test_reading_a_named_pipe_neither_blocks_nor_reads(tmp_path):
    os.mkfifo(tmp_path / "00_setup.ipynb")
    outcome: list = []
    reader = threading.Thread(target=lambda: outcome.append(_read(tmp_path / "00_setup.ipynb", tmp_path)), daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert "named pipe" in outcome[0]


def _read(path: Path, root: Path, limit: int = inputs.MAX_BYTES) -> str:
    try:
        return f"read {len(inputs.read_bytes(path, root, limit))} bytes"
    except inputs.Unreadable as problem:
        return str(problem)


def test_size_cap_holds_even_if_the_file_grows_after_the_walk(tmp_path):
    path = tmp_path / "00_setup.ipynb"
    path.write_bytes(b"x" * 1000)
    assert _read(path, tmp_path, limit=2000) == "read 1000 bytes"
    assert "more than" in _read(path, tmp_path, limit=500)


@posix
def test_links_out_of_the_folder_are_not_followed_even_at_open_time(tmp_path):
    outside = tmp_path / "outside.ipynb"
    outside.write_text('{"cells": []}')
    root = tmp_path / "class"
    root.mkdir()
    os.symlink(outside, root / "00_setup.ipynb")
    assert "outside the submissions folder" in _read(root / "00_setup.ipynb", root)


@posix
def test_discover_keeps_refused_files_with_their_learner_and_lesson(tmp_path):
    root = tmp_path / "class"
    make_fixtures.build_hostile(root, tmp_path / "outside")
    found = inputs.discover(root, STEMS, None)
    assert not found.files
    assert "named pipe" in found.refused[("pipe", "00")][0] and "25.0 MB" in found.refused[("huge", "00")][0]


def test_names_give_learner_and_lesson():
    cases = {
        "alice__01_tasks.ipynb": ("alice", "01"),
        "bob_00_setup.ipynb": ("bob", "00"),
        "01_tasks-carol.ipynb": ("carol", "01"),
        "dave/lesson1.ipynb": ("dave", "01"),
        "erin/week1/00_setup (1).ipynb": ("erin", "00"),
        "李雷/00_setup.ipynb": ("李雷", "00"),
    }
    for name, (learner, lesson) in cases.items():
        number, token = inputs.lesson_of(Path(name).stem, STEMS)
        assert (inputs.learner_of(Path(name), token, Path("/x/class")), number) == (learner, lesson), name


# --- the report ------------------------------------------------------------------------------------


def test_folders_are_unique_readable_and_keep_unicode_letters():
    names = ["李雷", "韩梅梅", "José Ñúñez", "alice", "Bob", "bob", "../../etc", "", "=2+3*cmd|' -C calc'!A0", "a/b"]
    chosen = report.folders(names)
    assert len(set(chosen.values())) == len(names) and len({v.casefold() for v in chosen.values()}) == len(names)
    assert chosen["李雷"] == "李雷" and chosen["韩梅梅"] == "韩梅梅" and chosen["José Ñúñez"] == "José Ñúñez"
    assert chosen["alice"] == "alice"
    assert chosen["Bob"].startswith("Bob-") and chosen["bob"].startswith("bob-")  # they would collide on macOS
    for folder in chosen.values():
        assert "/" not in folder and not folder.startswith(".") and folder.strip() == folder and folder


def test_csv_cells_never_start_a_formula(tmp_path):
    rows = [report.Row(name, "00", "00.first_task", "correct", message) for name, message in [
        ("=2+3*cmd|' -C calc'!A0", "fine"), ("+1", "-2"), ("@SUM(A1)", "\tx"), ("\rx", "=HYPERLINK(\"x\")"), ("ok", "ok")]]
    report.write_csv(rows, tmp_path / "grades.csv")
    with open(tmp_path / "grades.csv", encoding="utf-8", newline="") as handle:
        cells = [cell for row in list(csv.reader(handle))[1:] for cell in row]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells), cells
    assert "'=2+3*cmd|' -C calc'!A0" in cells and "ok" in cells


def test_html_escapes_names_and_messages_and_links_work(tmp_path):
    rows = [report.Row("<b>eve</b>", "00", "00.first_task", "incorrect", "<script>alert(1)</script> & more",
                       "executed/José Ñúñez/00_setup.ipynb"),
            report.Row("mallory", "00", "00.first_task", "needs review", "the check passed, but ...")]
    report.write_html(rows, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "&lt;b&gt;eve" in page
    assert 'href="executed/Jos%C3%A9%20%C3%91%C3%BA%C3%B1ez/00_setup.ipynb"' in page
    assert 'data-status="needs review"' in page and 'id="learner-1"' in page


# --- the command's arguments (no kernel) ----------------------------------------------------------------


def _main(argv: list[str]) -> int:
    try:
        return grade_cli.main(argv)
    except SystemExit as exit:
        return int(exit.code or 0)


@pytest.mark.parametrize("argv, message", [
    (["/nonexistent/submissions", "--out", "/nonexistent/out"], "is not a folder"),
    ([str(ROOT / "tests"), "--lessons", "99"], "unknown lesson"),
    ([str(ROOT / "tests"), "--timeout", "0"], "--timeout must be a positive"),
    ([str(ROOT / "tests"), "--jobs", "0"], "--jobs must be at least 1"),
    ([str(ROOT / "tests"), "--max-size", "-1"], "--max-size must be a positive"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert _main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_folder_without_notebooks_exits_2(tmp_path, capsys):
    assert _main([str(tmp_path)]) == 2
    assert "no .ipynb files" in capsys.readouterr().err


@posix
def test_refused_missing_and_unknown_files_are_all_reported_without_running_anything(tmp_path, capsys):
    subs = tmp_path / "subs"
    (subs / "zoe").mkdir(parents=True)
    (subs / "zoe" / "01_tasks.ipynb").write_text("{ not json")
    (subs / "yann__00_setup.ipynb").write_bytes(b"")
    (subs / "zoe" / "scratch.ipynb").write_text("{}")
    os.mkfifo(subs / "xavier__00_setup.ipynb")
    assert _main([str(subs), "--out", str(tmp_path / "out"), "--lessons", "0,01"]) == 0
    with open(tmp_path / "out" / "grades.csv", encoding="utf-8") as handle:
        rows = {(r["learner"], r["lesson"], r["exercise"]): r for r in csv.DictReader(handle)}
    assert rows[("zoe", "00", "00.first_task")]["status"] == "not attempted"
    assert rows[("yann", "01", "01.parallel_calls")]["status"] == "not attempted"
    assert rows[("zoe", "01", "01.pi_blocks")]["status"] == "error" and "invalid JSON" in rows[("zoe", "01", "01.pi_blocks")]["message"]
    assert rows[("yann", "00", "00.first_task")]["message"].startswith("yann__00_setup.ipynb is empty")
    assert "named pipe" in rows[("xavier", "00", "00.first_task")]["message"]
    assert "Graded 3 learners" in capsys.readouterr().out
