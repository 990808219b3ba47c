"""The class board without a cluster: what it accepts and refuses, who looks stuck, the page, the learner's side.

The board's state is a plain class (the actor is that class under ``ray.remote``),
so every rule is tested here with a fake clock; the HTTP server is tested with a
stand-in for the poller. ``tests/cluster/test_board.py`` runs it all for real.
"""
from __future__ import annotations

import json
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser

import pytest

from raycourse import classboard, grading
from raycourse.grading import CORRECT, INCORRECT, NOT_ATTEMPTED, Verdict
from raycourse.tools import board
from raycourse.tools.board import Board, BoardServer, clean_name, fragment, page, refusal

EXERCISES = ["00.first_task", "01.parallel_calls", "01.pi_blocks"]
HOSTILE = '<img src=x onerror="alert(1)">Eve'


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def report(learner="Ada", exercise="00.first_task", status=CORRECT, attempt=1, when=1.0, **extra):
    return {"learner": learner, "exercise": exercise, "status": status, "attempt": attempt, "time": when, **extra}


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def class_board(clock):
    return Board(EXERCISES, clock=clock)


# --- what is accepted, what is refused, and why --------------------------------------------------------

@pytest.mark.parametrize("name", ["Ada", "李雷", "韩梅梅", "José Ñúñez", "O'Brien-Smith", "x" * 40, HOSTILE])
def test_real_names_in_any_script_are_accepted_as_written(class_board, name):
    assert class_board.report(report(learner=name)) == {"ok": True}
    assert [row["name"] for row in class_board.snapshot()["learners"]] == [name]


def test_names_are_normalised_so_one_person_is_one_row(class_board):
    composed, decomposed = "Jos\u00e9", "Jose\u0301"
    class_board.report(report(learner=composed))
    class_board.report(report(learner=f"  {decomposed} "))
    assert [row["name"] for row in class_board.snapshot()["learners"]] == [composed]


@pytest.mark.parametrize("bad, words", [
    (report(learner="x" * 41), "41 characters long"),
    (report(learner="A" * 100_000), "100,000 characters"),
    (report(learner=""), "empty"),
    (report(learner="   "), "empty"),
    (report(learner="\x1b[31mred"), "control"),
    (report(learner="Ada\u200b"), "invisible"),
    (report(learner="Ada\nBob"), "control"),
    (report(learner="!!!"), "letter or digit"),
    (report(learner=42), "must be text"),
    (report(exercise="99.nope"), "unknown exercise id '99.nope'"),
    (report(exercise=["00.first_task"]), "unknown exercise id"),
    (report(status="passed"), "unknown status"),
    (report(attempt=0), "whole number"),
    (report(attempt=True), "whole number"),
    (report(attempt=1.5), "whole number"),
    (report(when=float("nan")), "seconds"),
    (report(when="noon"), "seconds"),
    (report(code="print('hi')"), "only learner, exercise, status, attempt and time"),
    (report(output="secret"), "not output"),
    ({"learner": "Ada"}, "lacks exercise, status, attempt, time"),
    ("learner=Ada", "must be a mapping"),
    (None, "must be a mapping"),
])
def test_bad_reports_are_refused_with_a_clear_reason(class_board, bad, words):
    reply = class_board.report(bad)
    assert reply["ok"] is False and words in reply["reason"], reply
    snapshot = class_board.snapshot()
    assert snapshot["learners"] == [] and snapshot["refused"] == 1 and snapshot["accepted"] == 0
    assert snapshot["refusals"][0]["reason"] == reply["reason"]


def test_a_flood_of_invented_names_is_capped(class_board, monkeypatch):
    monkeypatch.setattr(board, "MAX_LEARNERS", 5)
    replies = [class_board.report(report(learner=f"bot{i}")) for i in range(8)]
    assert [r["ok"] for r in replies] == [True] * 5 + [False] * 3
    assert "already has 5 learners" in replies[-1]["reason"]
    assert class_board.report(report(learner="bot0"))["ok"], "a learner already on the board still reports"


def test_only_the_latest_refusals_are_kept(class_board):
    for i in range(board.RECENT_REFUSALS + 5):
        class_board.report(report(exercise=f"99.x{i}"))
    snapshot = class_board.snapshot()
    assert snapshot["refused"] == board.RECENT_REFUSALS + 5
    assert len(snapshot["refusals"]) == board.RECENT_REFUSALS and "99.x24" in snapshot["refusals"][-1]["reason"]


def test_clean_name_and_refusal_agree():
    assert clean_name(" Ada ") == ("Ada", "")
    assert refusal(report(), frozenset(EXERCISES)) == ""


# --- the board's picture: cells, counts, who looks stuck ---------------------------------------------

def test_cells_show_the_latest_verdict_and_counts_are_per_exercise(class_board):
    class_board.report(report("Ada", status=INCORRECT, attempt=1))
    class_board.report(report("Ada", status=CORRECT, attempt=2))
    class_board.report(report("Bob", status=NOT_ATTEMPTED))
    class_board.report(report("Cy", exercise="01.pi_blocks", status=INCORRECT))
    snapshot = class_board.snapshot()
    ada = next(r for r in snapshot["learners"] if r["name"] == "Ada")
    assert ada["cells"]["00.first_task"] == {"status": CORRECT, "reports": 2, "attempt": 2} and ada["correct"] == 1
    assert snapshot["counts"]["00.first_task"] == {CORRECT: 1, NOT_ATTEMPTED: 1, INCORRECT: 0}
    assert snapshot["counts"]["01.pi_blocks"] == {CORRECT: 0, NOT_ATTEMPTED: 0, INCORRECT: 1}
    assert [r["name"] for r in snapshot["learners"]] == ["Ada", "Bob", "Cy"]
    assert snapshot["accepted"] == 4 and snapshot["refused"] == 0


def test_three_incorrect_in_a_row_on_one_exercise_looks_stuck_until_it_is_correct(class_board):
    for _ in range(2):
        class_board.report(report("Ada", status=INCORRECT))
    class_board.report(report("Ada", exercise="01.pi_blocks", status=INCORRECT))  # another exercise: no streak
    assert class_board.snapshot()["stuck"] == []
    class_board.report(report("Ada", status=INCORRECT))
    assert class_board.snapshot()["stuck"] == [{"learner": "Ada",
                                               "reason": "3 incorrect verdicts in a row on 00.first_task"}]
    class_board.report(report("Ada", status=CORRECT))
    assert class_board.snapshot()["stuck"] == []


def test_a_not_attempted_verdict_breaks_the_streak(class_board):
    for status in (INCORRECT, INCORRECT, NOT_ATTEMPTED, INCORRECT):
        class_board.report(report("Ada", status=status))
    assert class_board.snapshot()["stuck"] == []


def test_no_new_correct_exercise_for_ten_minutes_looks_stuck(class_board, clock):
    class_board.report(report("Ada", status=CORRECT))
    clock.now += 9 * 60
    class_board.report(report("Ada", status=CORRECT))  # the same exercise again is no progress
    class_board.report(report("Ada", exercise="01.pi_blocks", status=INCORRECT))
    assert class_board.snapshot()["stuck"] == []
    clock.now += 61
    assert class_board.snapshot()["stuck"] == [{"learner": "Ada", "reason": "no new exercise correct for 10 minutes"}]
    class_board.report(report("Ada", exercise="01.pi_blocks", status=CORRECT))
    assert class_board.snapshot()["stuck"] == []


def test_a_learner_who_finished_every_exercise_is_never_stuck(class_board, clock):
    for exercise in EXERCISES:
        class_board.report(report("Ada", exercise=exercise))
    clock.now += 3600
    assert class_board.snapshot()["stuck"] == []


def test_stats_count_reports_and_time_them(class_board, clock):
    class_board.report(report())
    clock.now += 2
    class_board.report(report(exercise="99.nope"))
    assert class_board.stats() == {"accepted": 1, "refused": 1, "first": 1_000_000.0, "last": 1_000_002.0,
                                   "learners": 1}


# --- the page --------------------------------------------------------------------------------------

class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_the_page_escapes_hostile_names_and_shows_the_warning(class_board):
    class_board.report(report(HOSTILE, status=INCORRECT))
    class_board.report(report(learner="x" * 41))
    body = fragment(class_board.snapshot())
    html_page = page("k", "n0nce", body)
    parsed = _Elements()
    parsed.feed(html_page)
    assert not [t for t, _ in parsed.tags if t in ("img", "iframe", "object")]
    assert all("onerror" not in attrs for _, attrs in parsed.tags)
    assert HOSTILE in "".join(parsed.text), "the name is shown literally, as text"
    assert [a["data-learner"] for t, a in parsed.tags if t == "tr" and "data-learner" in a] == [HOSTILE]
    cell = next(a for t, a in parsed.tags if t == "td" and a.get("data-exercise") == "00.first_task"
                and "data-learner" in a)
    assert cell["data-status"] == INCORRECT and cell["class"] == "s-incorrect"
    assert "Names are self-declared" in html_page and "anyone who has the cluster's token" in html_page
    assert "41 characters long" in html_page and "1 report(s) refused" in html_page
    scripts = [a for t, a in parsed.tags if t == "script"]
    assert scripts == [{"nonce": "n0nce"}], "one inline script, allowed by its nonce; nothing loaded from elsewhere"
    assert not re.search(r"(src|href)=['\"]?https?:", html_page), "no CDN: the page works offline"


def test_the_page_marks_stuck_learners_and_counts(class_board):
    for _ in range(3):
        class_board.report(report("李雷", status=INCORRECT))
    class_board.report(report("Ada"))
    body = fragment(class_board.snapshot())
    assert '<tr class="stuck" data-learner="李雷">' in body
    assert "3 incorrect verdicts in a row on 00.first_task" in body and 'id="stuck"' in body
    assert "2 learners" in body and "1/3" in body
    assert fragment(None).startswith('<p class="stale">Waiting')
    assert "has not answered for 42 s" in fragment(class_board.snapshot(), stale_s=42)


class _Poller:
    def __init__(self, snapshot):
        self.snapshot = snapshot

    def stale(self) -> float:
        return 0.0


@pytest.fixture
def served(class_board):
    class_board.report(report("Ada"))
    server = BoardServer(_Poller(class_board.snapshot()), "127.0.0.1", 0, key="s3cret-key")
    server.serve_in_background()
    yield server
    server.shutdown()
    server.server_close()


def _get(url: str) -> tuple[int, dict, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_the_server_listens_on_loopback_and_needs_the_key(served):
    host, port = served.server_address[:2]
    assert host == "127.0.0.1" and served.url == f"http://127.0.0.1:{port}/?key=s3cret-key"
    for path in ("/", "/fragment", "/board.json", "/?key=wrong", "/board.json?key="):
        code, _, body = _get(f"http://127.0.0.1:{port}{path}")
        assert code == 403 and "needs the key" in body, path
    code, headers, body = _get(served.url)
    assert code == 200 and "Class board" in body
    nonce = re.search(r"<script nonce='([^']+)'>", body).group(1)
    policy = headers["Content-Security-Policy"]
    assert f"script-src 'nonce-{nonce}'" in policy and "default-src 'none'" in policy
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    code, _, data = _get(served.url.replace("/?", "/board.json?"))
    assert code == 200 and json.loads(data)["learners"][0]["name"] == "Ada"
    code, headers, fragment_body = _get(served.url.replace("/?", "/fragment?"))
    assert code == 200 and "Ada" in fragment_body and "script-src 'none'" in headers["Content-Security-Policy"]
    assert _get(served.url.replace("/?", "/nothing?"))[0] == 404


# --- the learner's side: what is sent, when, and that a check never waits ---------------------------

@pytest.fixture
def learner_env(monkeypatch):
    monkeypatch.setenv(classboard.NAME_VARIABLE, "  Ada  ")
    monkeypatch.setenv("RAY_ADDRESS", "192.0.2.1:6379")
    sent: "queue.Queue[dict]" = queue.Queue()
    monkeypatch.setattr(classboard, "send", sent.put)
    monkeypatch.setattr(classboard, "_attempts", {})
    yield sent


def test_the_reporter_is_a_grading_listener():
    assert classboard.report in grading._LISTENERS


def test_a_verdict_becomes_exactly_the_five_fields(learner_env):
    before = time.time()
    classboard.report(Verdict("00.first_task", INCORRECT, "a hint that must never leave the kernel"))
    classboard.report(Verdict("00.first_task", CORRECT, "well done"))
    first, second = learner_env.get(timeout=10), learner_env.get(timeout=10)
    assert tuple(first) == classboard.FIELDS
    assert first["learner"] == "Ada" and first["status"] == INCORRECT and first["attempt"] == 1
    assert second["attempt"] == 2 and second["status"] == CORRECT and before <= first["time"] <= time.time()
    assert refusal(first, frozenset(EXERCISES)) == "", "what the learner sends is what the board accepts"


@pytest.mark.parametrize("name, address", [("", "192.0.2.1:6379"), ("Ada", ""), ("   ", "192.0.2.1:6379")])
def test_nothing_is_sent_without_a_name_or_outside_a_workshop(learner_env, monkeypatch, name, address):
    monkeypatch.setenv(classboard.NAME_VARIABLE, name)
    monkeypatch.setenv("RAY_ADDRESS", address)
    classboard.report(Verdict("00.first_task", CORRECT, "ok"))
    with pytest.raises(queue.Empty):
        learner_env.get(timeout=0.5)
    assert not classboard.enabled()


def test_a_check_never_waits_for_the_board(learner_env, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(classboard, "send", lambda item: release.wait(30))  # a board that never answers
    monkeypatch.setattr(classboard, "_queue", queue.Queue(maxsize=4))
    started = time.perf_counter()
    for _ in range(50):  # far more than the queue holds: the extra reports are dropped, not waited for
        classboard.report(Verdict("00.first_task", CORRECT, "ok"))
    assert time.perf_counter() - started < 1.0
    release.set()


def test_sending_without_ray_is_silent_and_status_explains(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    assert classboard.send(classboard.record_of(Verdict("00.first_task", CORRECT, "ok"), "Ada", 1, 1.0)) is None
    monkeypatch.delenv(classboard.NAME_VARIABLE, raising=False)
    assert "set RAYCOURSE_LEARNER" in classboard.status()
    monkeypatch.setenv(classboard.NAME_VARIABLE, "Ada")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert "RAY_ADDRESS is not set" in classboard.status()
