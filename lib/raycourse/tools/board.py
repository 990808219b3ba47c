"""The live class board: one detached, named actor that collects learners' verdicts, and its web page.

``raycourse-workshop`` creates the actor (:func:`create`) and serves the page
(:class:`BoardServer`) on a loopback port with a random key in its address, so
only someone who has the printed URL (the instructor) reads it. Learners' kernels
report to the actor (:mod:`raycourse.classboard`).

What the board accepts is exactly ``(learner, exercise, status, attempt, time)``;
anything else is refused with a reason (:func:`refusal`), counted, and shown on
the page. Names are self-declared: anyone holding the cluster's token can report
under any name, and the page says so. Learner names are hostile input: the page
escapes everything it shows, and its Content-Security-Policy lets only its own
script run. It needs nothing from the internet (no CDN).

A learner "looks stuck" after :data:`STUCK_INCORRECT` incorrect verdicts in a
row on one exercise, or when no exercise of theirs turned correct for the first
time in :data:`STUCK_IDLE_S` seconds.
"""
from __future__ import annotations

import hmac
import html
import json
import math
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from raycourse.classboard import BOARD_NAME, BOARD_NAMESPACE, FIELDS
from raycourse.grading import CORRECT, INCORRECT, NOT_ATTEMPTED, STATUSES

MAX_NAME = 40  # characters of a display name
MAX_LEARNERS = 1000  # a flood of invented names cannot exhaust the actor's memory
MAX_ATTEMPT = 100_000
STUCK_INCORRECT = 3
STUCK_IDLE_S = 600.0
RECENT_REFUSALS = 20
ICONS = {CORRECT: "✔", INCORRECT: "✘", NOT_ATTEMPTED: "○"}


def clean_name(name: Any) -> tuple[str | None, str]:
    """``(name, "")`` for an acceptable display name (NFC, stripped), else ``(None, reason)``."""
    if not isinstance(name, str):
        return None, f"the learner name must be text, not {type(name).__name__}"
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        return None, "the learner name is empty: set RAYCOURSE_LEARNER to your name"
    if len(name) > MAX_NAME:
        return None, f"the learner name is {len(name):,} characters long; at most {MAX_NAME} are allowed"
    if any(unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") for c in name):
        return None, "the learner name contains control or invisible characters"
    if not any(c.isalnum() for c in name):
        return None, "the learner name needs at least one letter or digit"
    return name, ""


def refusal(record: Any, exercises: frozenset[str]) -> str:
    """Why ``record`` is refused, or "" when it is a well-formed report about a known exercise."""
    if not isinstance(record, dict):
        return "a report must be a mapping of learner, exercise, status, attempt and time"
    extra, missing = sorted(set(map(str, record)) - set(FIELDS)), [f for f in FIELDS if f not in record]
    if extra:
        return f"only learner, exercise, status, attempt and time are accepted, not {', '.join(extra[:3])[:60]}"
    if missing:
        return f"the report lacks {', '.join(missing)}"
    _, reason = clean_name(record["learner"])
    if reason:
        return reason
    exercise = record["exercise"]
    if not isinstance(exercise, str) or exercise not in exercises:
        return f"unknown exercise id {str(exercise)[:40]!r}"
    if record["status"] not in STATUSES:
        return f"unknown status {str(record['status'])[:20]!r}"
    attempt = record["attempt"]
    if type(attempt) is not int or not 1 <= attempt <= MAX_ATTEMPT:
        return f"the attempt must be a whole number from 1 to {MAX_ATTEMPT:,}"
    when = record["time"]
    if type(when) not in (int, float) or not math.isfinite(when):
        return "the time must be a number of seconds"
    return ""


@dataclass
class Cell:
    """One learner on one exercise."""

    status: str
    reports: int = 0
    incorrect_in_a_row: int = 0
    attempt: int = 0
    ever_correct: bool = False


@dataclass
class Learner:
    """One learner's row: when they were last heard from and when they last made progress."""

    joined: float
    last_seen: float
    last_progress: float  # when an exercise of theirs last turned correct for the first time (or when they joined)
    cells: dict[str, Cell] = field(default_factory=dict)


class Board:
    """The board's state; the actor is this class under ``ray.remote`` (tests use it directly)."""

    def __init__(self, exercises: list[str], stuck_incorrect: int = STUCK_INCORRECT, stuck_idle_s: float = STUCK_IDLE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.exercises = list(exercises)
        self._known = frozenset(self.exercises)
        self.stuck_incorrect, self.stuck_idle_s, self.clock = stuck_incorrect, stuck_idle_s, clock
        self.learners: dict[str, Learner] = {}
        self.accepted = self.refused = 0
        self.refusals: list[dict[str, Any]] = []
        self.first_report: float | None = None
        self.last_report: float | None = None

    def ping(self) -> str:
        return "ok"

    def report(self, record: Any) -> dict[str, Any]:
        """Take one verdict report; ``{"ok": True}``, or ``{"ok": False, "reason": ...}`` when refused."""
        now = self.clock()
        self.first_report = self.first_report or now
        self.last_report = now
        reason = refusal(record, self._known)
        name = clean_name(record.get("learner"))[0] if not reason else None
        if not reason and name not in self.learners and len(self.learners) >= MAX_LEARNERS:
            reason = f"the board already has {MAX_LEARNERS:,} learners"
        if reason:
            self.refused += 1
            self.refusals = (self.refusals + [{"reason": reason, "time": now}])[-RECENT_REFUSALS:]
            return {"ok": False, "reason": reason}
        learner = self.learners.setdefault(name, Learner(joined=now, last_seen=now, last_progress=now))
        learner.last_seen = now
        cell = learner.cells.setdefault(record["exercise"], Cell(status=record["status"]))
        if record["status"] == CORRECT and not cell.ever_correct:
            cell.ever_correct, learner.last_progress = True, now
        cell.status, cell.reports, cell.attempt = record["status"], cell.reports + 1, record["attempt"]
        cell.incorrect_in_a_row = cell.incorrect_in_a_row + 1 if record["status"] == INCORRECT else 0
        self.accepted += 1
        return {"ok": True}

    def stuck(self, name: str, learner: Learner, now: float) -> list[str]:
        reasons = [f"{c.incorrect_in_a_row} incorrect verdicts in a row on {exercise}"
                   for exercise, c in learner.cells.items() if c.incorrect_in_a_row >= self.stuck_incorrect]
        done = all(learner.cells.get(e) and learner.cells[e].status == CORRECT for e in self.exercises)
        idle = now - learner.last_progress
        if not done and idle >= self.stuck_idle_s:
            reasons.append(f"no new exercise correct for {idle / 60:.0f} minutes")
        return reasons

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as plain data (also served as ``/board.json``)."""
        now = self.clock()
        learners, stuck = [], []
        for name in sorted(self.learners, key=str.casefold):
            learner = self.learners[name]
            reasons = self.stuck(name, learner, now)
            stuck += [{"learner": name, "reason": r} for r in reasons]
            learners.append({"name": name, "last_seen": learner.last_seen, "stuck": reasons,
                             "correct": sum(c.status == CORRECT for c in learner.cells.values()),
                             "cells": {e: {"status": c.status, "reports": c.reports, "attempt": c.attempt}
                                       for e, c in learner.cells.items()}})
        counts = {e: {s: sum(1 for lr in self.learners.values() if e in lr.cells and lr.cells[e].status == s)
                      for s in STATUSES} for e in self.exercises}
        return {"now": now, "exercises": self.exercises, "learners": learners, "counts": counts, "stuck": stuck,
                "accepted": self.accepted, "refused": self.refused, "refusals": list(self.refusals)}

    def stats(self) -> dict[str, Any]:
        """Counts and the first and last report times (the throughput benchmark reads these)."""
        return {"accepted": self.accepted, "refused": self.refused, "first": self.first_report,
                "last": self.last_report, "learners": len(self.learners)}


def create(exercises: list[str]) -> Any:
    """The class board actor on the connected cluster: created detached on the head node, or the existing one."""
    import ray

    actor = ray.remote(Board).options(
        name=BOARD_NAME, namespace=BOARD_NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
        resources={"node:__internal_head__": 0.001}, max_restarts=-1)
    return actor.remote(exercises)


def serve(address: str, port: int, say: Callable[[str], None], patience: float = 180.0) -> "BoardServer | None":
    """Connect to ``address``, create (or find) the board actor, and serve its page on loopback ``port``.

    Returns the server, or None (after saying why) when the board could not start: the cluster
    still serves the class without it.
    """
    import logging

    import ray

    from raycourse.grading import registered

    try:
        if not ray.is_initialized():
            ray.init(address=address, namespace=BOARD_NAMESPACE, logging_level=logging.ERROR, log_to_driver=False)
        handle = create(registered())
        ray.get(handle.ping.remote(), timeout=patience)
    except Exception as error:  # the actor's worker never came up, or the cluster refused us
        say(f"the class board did not start ({(str(error).strip().splitlines() or [type(error).__name__])[0][:200]}); "
            "the cluster runs without it.")
        return None
    poller = Poller(handle).start()
    try:
        server = BoardServer(poller, "127.0.0.1", port)
    except OSError:  # the port is taken: any free one
        server = BoardServer(poller, "127.0.0.1", 0)
    server.serve_in_background()
    return server


# --- the page --------------------------------------------------------------------------------------

STYLE = """
body{font:14px system-ui,sans-serif;margin:16px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px} .note{color:#57606a;margin:4px 0 12px}
table{border-collapse:collapse} th,td{border:1px solid #d0d7de;padding:2px 4px;text-align:center}
th.ex{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:normal;font-size:12px;white-space:nowrap}
th.lesson{font-size:12px;background:#f6f8fa} td.name{text-align:left;white-space:nowrap;max-width:260px;overflow:hidden}
td.s-correct{background:#e6f4ea;color:#1a7f37} td.s-incorrect{background:#fdecea;color:#b42318}
td.s-not-attempted{background:#fff8c5;color:#6e5600} td.s-none{background:#f6f8fa}
tr.stuck td.name{background:#fff1e5;font-weight:bold} tfoot td{font-size:11px;color:#57606a;line-height:1.2}
.panel{margin:12px 0;padding:8px 12px;border-left:4px solid #d0d7de;background:#f6f8fa}
.panel.stuck{border-color:#bc4c00;background:#fff1e5} .stale{color:#b42318;font-weight:bold}
"""


def fragment(snapshot: dict[str, Any] | None, stale_s: float = 0.0) -> str:
    """The board's body: the table of learners by exercises, counts, who looks stuck, refused reports."""
    e = html.escape
    if snapshot is None:
        return '<p class="stale">Waiting for the class board actor to answer…</p>'
    exercises, learners = snapshot["exercises"], snapshot["learners"]
    parts = [f'<p id="summary">{len(learners)} learner{"s" if len(learners) != 1 else ""} · {len(exercises)} exercises · '
             f'{snapshot["accepted"]:,} reports · updated {e(time.strftime("%H:%M:%S", time.localtime(snapshot["now"])))}</p>']
    if stale_s > 10:
        parts.append(f'<p class="stale">The board actor has not answered for {stale_s:.0f} s: this page may be out of date.</p>')
    if snapshot["stuck"]:
        items = "".join(f'<li><b>{e(s["learner"])}</b>: {e(s["reason"])}</li>' for s in snapshot["stuck"])
        parts.append(f'<div class="panel stuck" id="stuck"><b>Looks stuck</b><ul>{items}</ul></div>')
    lessons: dict[str, list[str]] = {}
    for exercise in exercises:
        lessons.setdefault(exercise.split(".")[0], []).append(exercise)
    head1 = '<th rowspan="2">learner</th><th rowspan="2" title="exercises correct">done</th>' + "".join(f'<th class="lesson" colspan="{len(v)}">lesson {e(k)}</th>'
                                                     for k, v in lessons.items())
    head2 = "".join(f'<th class="ex" title="{e(x)}">{e(x.split(".", 1)[1])}</th>' for x in exercises)
    rows = []
    for learner in learners:
        cells = []
        for exercise in exercises:
            cell = learner["cells"].get(exercise)
            data = f'data-learner="{e(learner["name"])}" data-exercise="{e(exercise)}"'
            if cell is None:
                cells.append(f'<td class="s-none" data-status="" {data}></td>')
                continue
            tip = f'{exercise}: {cell["status"]}, {cell["reports"]} report(s)'
            cells.append(f'<td class="s-{cell["status"].replace(" ", "-")}" data-status="{e(cell["status"])}" {data} '
                         f'title="{e(tip)}">{ICONS[cell["status"]]}</td>')
        flag = ' class="stuck"' if learner["stuck"] else ""
        mark = " ⚠" if learner["stuck"] else ""
        seen = time.strftime("%H:%M:%S", time.localtime(learner["last_seen"]))
        rows.append(f'<tr{flag} data-learner="{e(learner["name"])}"><td class="name" title="{e(learner["name"])}, last '
                    f'verdict at {seen}">{e(learner["name"])}{mark}</td><td>{learner["correct"]}/{len(exercises)}</td>'
                    f'{"".join(cells)}</tr>')
    counts = "".join(f'<td data-exercise="{e(x)}">' + "<br>".join(
        f'{ICONS[s]}{n}' for s in (CORRECT, INCORRECT, NOT_ATTEMPTED) if (n := snapshot["counts"][x][s])) + "</td>"
        for x in exercises)
    parts.append(f'<table id="board"><thead><tr>{head1}</tr><tr>{head2}</tr></thead><tbody>{"".join(rows)}</tbody>'
                 f'<tfoot><tr><td class="name" colspan="2">learners per verdict</td>{counts}</tr></tfoot></table>'
                 '<p class="note">✔ correct · ✘ incorrect · ○ not attempted (starter code) · ⚠ looks stuck</p>')
    if snapshot["refused"]:
        items = "".join(f"<li>{e(time.strftime('%H:%M:%S', time.localtime(r['time'])))}: {e(r['reason'])}</li>"
                        for r in reversed(snapshot["refusals"]))
        parts.append(f'<div class="panel" id="refused"><b>{snapshot["refused"]:,} report(s) refused</b> '
                     f'(latest first)<ul>{items}</ul></div>')
    return "\n".join(parts)


def page(key: str, nonce: str, body: str) -> str:
    """The whole page: the body now, and a small script that refreshes it every second."""
    script = (f"const key={json.dumps(key)};setInterval(async()=>{{try{{const r=await fetch('fragment?key='+"
              "encodeURIComponent(key),{cache:'no-store'});if(r.ok)document.getElementById('live').innerHTML="
              "await r.text();}catch(e){}},1000);")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Ray course: class board</title>"
            f"<noscript><meta http-equiv='refresh' content='5'></noscript><style>{STYLE}</style></head><body>"
            "<h1>Class board</h1><p class='note'>Names are self-declared: anyone who has the cluster's token can "
            "report under any name. Use this page to see who may need help, never to grade.</p>"
            f"<div id='live'>{body}</div><script nonce='{nonce}'>{script}</script></body></html>")


class Poller:
    """Keeps the latest snapshot of the board actor, fetched every ``interval`` seconds on its own thread."""

    def __init__(self, handle: Any, interval: float = 1.0) -> None:
        self.handle, self.interval = handle, interval
        self.snapshot: dict[str, Any] | None = None
        self.updated = time.monotonic()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="board-poller", daemon=True)

    def start(self) -> "Poller":
        self.thread.start()
        return self

    def _run(self) -> None:
        import ray

        while not self._stop.is_set():
            try:
                self.snapshot = ray.get(self.handle.snapshot.options(enable_task_events=False).remote(), timeout=10)
                self.updated = time.monotonic()
            except Exception:  # the actor is restarting or the cluster is going away: keep the last picture
                pass
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def stale(self) -> float:
        return time.monotonic() - self.updated


class BoardServer(ThreadingHTTPServer):
    """The page on ``host:port`` (loopback by default): ``/``, ``/fragment`` and ``/board.json``, each needing the key."""

    daemon_threads = True

    def __init__(self, poller: Poller, host: str = "127.0.0.1", port: int = 0, key: str | None = None) -> None:
        self.poller, self.key = poller, key or secrets.token_urlsafe(18)
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/?key={self.key}"

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="board-server", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: BoardServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # the instructor's terminal shows the cluster's instructions, not an access log

    def _send(self, code: int, body: str, kind: str, nonce: str = "") -> None:
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        script = f"'nonce-{nonce}'" if nonce else "'none'"
        self.send_header("Content-Security-Policy", f"default-src 'none'; style-src 'unsafe-inline'; "
                         f"script-src {script}; connect-src 'self'; base-uri 'none'; form-action 'none'")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        given = parse_qs(url.query).get("key", [""])[0]
        if not hmac.compare_digest(given.encode(), self.server.key.encode()):
            self._send(403, "This board needs the key in the address raycourse-workshop printed.", "text/plain")
            return
        poller = self.server.poller
        if url.path == "/board.json":
            self._send(200, json.dumps(poller.snapshot), "application/json")
        elif url.path == "/fragment":
            self._send(200, fragment(poller.snapshot, poller.stale()), "text/html")
        elif url.path == "/":
            nonce = secrets.token_urlsafe(12)
            self._send(200, page(self.server.key, nonce, fragment(poller.snapshot, poller.stale())), "text/html", nonce)
        else:
            self._send(404, "Not found.", "text/plain")


__all__ = ["Board", "BoardServer", "Poller", "clean_name", "create", "fragment", "page", "refusal", "serve",
           "BOARD_NAME", "BOARD_NAMESPACE"]
