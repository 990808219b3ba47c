"""The live class board on the two-node workshop cluster, with three learners, watched in a real browser.

Starts ``raycourse.tools.workshop --json`` (head + worker node, token auth, the
board actor and its loopback page). Three learners are driver processes, each
with its own ``RAYCOURSE_LEARNER``, joined through ``RAY_ADDRESS`` like a lesson's
kernel; each runs the cells this test sends (through the course's journal, as a
notebook would) and grades ``00.first_task`` with the one-line check. Some
answers are right, some wrong; one learner's name is hostile HTML; one learner
is killed (SIGKILL) in the middle of a cell. Headless Chromium, offline, shows
the board page: every verdict must appear there within 5 s of the check
returning. Bad reports are refused with their reasons. Screenshots are saved in
``build/test/``: ``board-stuck.png`` (one learner stuck) and ``board.png`` (the end).

Then: Ray's Prometheus metrics answer on 127.0.0.1 and on no other address, and
killing the workshop outright (SIGKILL) leaves none of its processes alive.
"""
from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("RAYCOURSE_TEST_OUT", ROOT / "build" / "test"))
VERDICT_TO_PAGE_S = 5.0
HOSTILE = '<img src=x onerror="alert(1)">Eve'
ADA, LI = "Ada", "李雷"

# A learner: a driver that joins the cluster, then runs what it is sent, one JSON command per line.
LEARNER = r'''
import json, sys, time, traceback
import raycourse
from raycourse import classboard, record

raycourse.start(num_cpus=1)
namespace = {"__name__": "__learner__", "raycourse": raycourse}


def run(source):
    with record.cell(namespace, source):
        try:
            exec(compile(source, "<cell>", "exec"), namespace)
        except Exception:  # a cell that raises, as a notebook would show it: the test fails with it at once
            return traceback.format_exc(limit=-3)
    return ""


print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    command = json.loads(line)
    if command["do"] == "cell":
        error = run(command["code"])
        print(json.dumps({"done": not error, "error": error}), flush=True)
    elif command["do"] == "check":
        error = run(f'verdict = raycourse.check({command["id"]!r})')
        print(json.dumps({"status": error or namespace["verdict"].status, "time": time.time()}), flush=True)
    elif command["do"] == "raw":
        import ray
        print(json.dumps(ray.get(classboard.send(command["record"]), timeout=120)), flush=True)
raycourse.stop()
'''
SQUARE = "import ray\n\n@ray.remote\ndef square(x):\n    return x * x\n"
RIGHT = SQUARE + "squares = ray.get([square.remote(i) for i in range(5)])"
REFS = SQUARE + "squares = [square.remote(i) for i in range(5)]"  # incorrect: ObjectRefs, not numbers
TOO_FEW = SQUARE + "squares = ray.get([square.remote(i) for i in range(4)])"  # incorrect: four values
STARTER = "def square(x):\n    return x * x\n\nsquares = [square(i) for i in range(5)]"  # not attempted
LONG_CELL = ("import json, time\n@ray.remote\ndef slow():\n    time.sleep(120)\n\nrefs = [slow.remote()]\n"
             "print(json.dumps({'running': True}), flush=True)\nray.get(refs)")


def _browser_settings():
    """Chromium's path and offline flags, exactly as the browser tests use them."""
    spec = importlib.util.spec_from_file_location("_browser_settings", ROOT / "tests" / "browser" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.CHROMIUM, module.CHROMIUM_ARGS


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture(scope="module")
def workshop():
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen([sys.executable, "-m", "raycourse.tools.workshop", "--json", "--board-port", "0"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail(f"the workshop did not start: {process.stderr.read()[-2000:]}")
    info = json.loads(line)
    info["process"] = process
    info["tree"] = psutil.Process(process.pid).children(recursive=True)
    yield info
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=180)
    for child in info["tree"]:
        with contextlib.suppress(psutil.Error):
            child.kill()


class Learner:
    """A learner's driver process and a line reader for its replies."""

    def __init__(self, name: str, address: str, progress: Path) -> None:
        self.name = name
        env = {**os.environ, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token", "RAYCOURSE_LEARNER": name,
               "RAYCOURSE_PROGRESS_DIR": str(progress), "COURSE_DASHBOARD": "0"}
        env.pop("RAYCOURSE_STRICT", None)
        env.pop("RAYCOURSE_GRADE_LOG", None)
        self.process = subprocess.Popen([sys.executable, "-c", LEARNER], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(l) for l in self.process.stdout], daemon=True).start()

    def reply(self, timeout: float = 600) -> dict:
        try:
            return json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"learner {self.name} did not answer in {timeout} s: {self.process.stderr.read()[-2000:]}")

    def send(self, command: dict) -> None:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def cell(self, code: str) -> dict:
        self.send({"do": "cell", "code": code})
        return self.reply()

    def check(self, exercise: str = "00.first_task") -> dict:
        self.send({"do": "check", "id": exercise})
        return self.reply()

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.process.stdin.close()
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


CELL_STATUS = """([learner, exercise]) => {
    for (const td of document.querySelectorAll('#board td[data-exercise]')) {
        if (td.dataset.learner === learner && td.dataset.exercise === exercise) return td.dataset.status;
    }
    return null;
}"""


def shown_within(page, learner: str, status: str, since: float, exercise: str = "00.first_task") -> float:
    """Seconds from ``since`` (the check returning) until the page shows ``status`` for the learner; fails after 5 s."""
    while True:
        if page.evaluate(CELL_STATUS, [learner, exercise]) == status:
            return time.time() - since
        assert time.time() - since <= VERDICT_TO_PAGE_S, (
            f"{learner}'s {status!r} verdict not on the board {VERDICT_TO_PAGE_S} s after the check returned")
        page.wait_for_timeout(100)


def board_json(info: dict) -> dict:
    with urllib.request.urlopen(info["board_url"].replace("/?", "/board.json?"), timeout=30) as response:
        return json.loads(response.read())


def test_three_learners_on_the_board_in_a_browser(workshop, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium, args = _browser_settings()
    assert chromium.is_file(), f"{chromium} is missing: run `bash .ci/install-browser`"
    learners = {name: Learner(name, workshop["address"], tmp_path / f"progress{i}")
                for i, name in enumerate([ADA, LI, HOSTILE])}
    delays: list[float] = []
    dialogs: list[str] = []
    try:
        for learner in learners.values():
            assert learner.reply() == {"ready": True}
        ada, li, eve = learners[ADA], learners[LI], learners[HOSTILE]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=args)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(workshop["board_url"])
            assert "Names are self-declared" in page.inner_text("body")

            def verdict(learner: Learner, code: str, expected: str) -> None:
                assert learner.cell(code) == {"done": True, "error": ""}
                result = learner.check()
                assert result["status"] == expected, (learner.name, result)
                delays.append(shown_within(page, learner.name, expected, result["time"]))

            verdict(ada, STARTER, "not attempted")
            verdict(eve, RIGHT, "correct")
            for wrong in (REFS, TOO_FEW, REFS):
                verdict(li, wrong, "incorrect")
            stuck = page.inner_text("#stuck")
            assert f"{LI}: 3 incorrect verdicts in a row on 00.first_task" in stuck and "Eve" not in stuck
            OUT.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUT / "board-stuck.png"), full_page=True)  # every colour, and who is stuck

            eve.send({"do": "cell", "code": LONG_CELL})  # killed in the middle of a cell, with a task running
            assert eve.reply() == {"running": True}
            eve.process.send_signal(signal.SIGKILL)
            eve.process.wait(30)
            verdict(ada, RIGHT, "correct")  # the board outlives a learner's dead kernel
            verdict(li, RIGHT, "correct")
            page.wait_for_function("() => !document.querySelector('#stuck')", timeout=VERDICT_TO_PAGE_S * 1000)

            refused = []
            for bad in ({"exercise": "99.not_an_exercise"}, {"learner": "x" * 41}, {"learner": "\x1b[31mred"},
                        {"code": "print('my answer')"}):
                record = {"learner": ADA, "exercise": "00.first_task", "status": "correct", "attempt": 1,
                          "time": time.time(), **bad}
                ada.send({"do": "raw", "record": record})
                refused.append(ada.reply())
            assert [r["ok"] for r in refused] == [False] * 4
            reasons = [r["reason"] for r in refused]
            assert reasons == ["unknown exercise id '99.not_an_exercise'",
                               "the learner name is 41 characters long; at most 40 are allowed",
                               "the learner name contains control or invisible characters",
                               "only learner, exercise, status, attempt and time are accepted, not code"]
            page.wait_for_function("() => (document.querySelector('#refused') || {}).textContent?.includes("
                                   "'4 report(s) refused')", timeout=VERDICT_TO_PAGE_S * 1000)
            shown = page.inner_text("#refused")
            assert "4 report(s) refused" in shown and all(reason in shown for reason in reasons)

            data = board_json(workshop)
            rows = {row["name"]: row for row in data["learners"]}
            assert set(rows) == {ADA, LI, HOSTILE}, "three learners, each under the name they chose"
            assert rows[ADA]["cells"]["00.first_task"] == {"status": "correct", "reports": 2, "attempt": 2}
            assert rows[LI]["cells"]["00.first_task"] == {"status": "correct", "reports": 4, "attempt": 4}
            assert rows[HOSTILE]["cells"]["00.first_task"]["status"] == "correct"
            assert data["counts"]["00.first_task"] == {"correct": 3, "incorrect": 0, "not attempted": 0}
            assert data["accepted"] == 7 and data["refused"] == 4 and data["stuck"] == []

            assert page.evaluate("() => document.querySelectorAll('#board img, #board [onerror]').length") == 0
            names = page.evaluate("() => [...document.querySelectorAll('#board tbody td.name')].map(t => t.textContent)")
            assert sorted(names) == sorted([ADA, LI, HOSTILE]), "names are shown as text, the hostile one too"
            assert dialogs == [], "no script from a learner's name ran"
            page.screenshot(path=str(OUT / "board.png"), full_page=True)
            browser.close()
    finally:
        for learner in learners.values():
            learner.stop()
    print(f"verdict to page: {', '.join(f'{d:.1f}' for d in delays)} s (limit {VERDICT_TO_PAGE_S:g} s)")


def _listening(tree: list[psutil.Process]) -> list[tuple[str, int]]:
    found = []
    for process in tree:
        with contextlib.suppress(psutil.Error):
            found += [(s.laddr.ip, s.laddr.port) for s in process.net_connections("inet")
                      if s.status == psutil.CONN_LISTEN]
    return found


def _serves_metrics(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=3) as response:
            return response.status == 200 and b"# TYPE" in response.read(200_000)
    except (OSError, ValueError, http.client.HTTPException):  # not HTTP at all (gRPC ports): no metrics there
        return False


def test_metrics_answer_on_loopback_and_nowhere_else(workshop):
    host = workshop["address"].rsplit(":", 1)[0]
    assert host not in ("127.0.0.1", "localhost"), "the cluster is reachable at this machine's address"
    ports = workshop["metrics_ports"]
    assert len(ports) == 2 and workshop["metrics"] == "127.0.0.1"
    tree = [p for p in psutil.Process(workshop["process"].pid).children(recursive=True)]
    listening = _listening(tree)
    for port in ports:
        assert {ip for ip, p in listening if p == port} == {"127.0.0.1"}, f"metrics port {port}: {listening}"
        assert _serves_metrics("127.0.0.1", port), "Prometheus can still scrape it on this machine"
        with pytest.raises(OSError):
            socket.create_connection((host, port), timeout=5).close()
    wildcard = sorted({p for ip, p in listening if ip in ("0.0.0.0", "::")})
    assert not [p for p in wildcard if _serves_metrics(host, p)], "no port on every interface serves metrics"


def test_killing_the_workshop_outright_leaves_nothing_behind(workshop):
    now = psutil.Process(workshop["process"].pid).children(recursive=True)  # workers of learners' jobs too
    tree = [p for p in {p.pid: p for p in [*workshop["tree"], *now]}.values() if _alive(p)]
    assert len(tree) >= 8, f"the cluster's processes: {[p.name() for p in tree]}"
    workshop["process"].send_signal(signal.SIGKILL)
    workshop["process"].wait(30)
    killed = time.monotonic()
    while (left := [p for p in tree if _alive(p)]) and time.monotonic() - killed < 60:
        time.sleep(0.5)
    assert not left, f"alive after SIGKILL: {[(p.pid, p.name()) for p in left]}"
    print(f"every process of the killed workshop gone {time.monotonic() - killed:.1f} s after SIGKILL")
