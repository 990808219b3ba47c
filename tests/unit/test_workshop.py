"""The workshop cluster's hardening, without starting Ray: retries that clean up, no leftovers, metrics on loopback.

Each piece runs on stand-in processes (small Pythons that sleep) so the rules are
exercised in seconds: a failed start attempt's processes are stopped before the
next one; only processes carrying this workshop's mark (or holding files in its
session folder) are ever touched; a SIGKILLed workshop's watchdog stops what it
left; Ray's agents' and dashboard's Prometheus servers bind 127.0.0.1 through the shim.
``tests/cluster`` does the same on a real two-node cluster.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from raycourse.tools import workshop
from raycourse.tools import workshop_processes as processes
from raycourse.tools.workshop import MARK, BusyMachine

SLEEPER = "import signal, sys, time\nif 'stubborn' in sys.argv: signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)"


def spawn(env_mark: str | None = None, *flags: str, hold: Path | None = None) -> subprocess.Popen:
    """A sleeping Python, optionally carrying a workshop mark, or holding ``hold`` open (as Ray's agents hold logs)."""
    env = {k: v for k, v in os.environ.items() if k != MARK}
    if env_mark is not None:
        env[MARK] = env_mark
    code = SLEEPER if hold is None else f"f = open({str(hold)!r}, 'a')\n" + SLEEPER
    return subprocess.Popen([sys.executable, "-c", code, *flags], env=env, start_new_session=True)


def gone(process: subprocess.Popen | psutil.Process, timeout: float = 20.0) -> bool:
    """True once the process has ended (a zombie waiting for its parent counts as ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if isinstance(process, subprocess.Popen):
            if process.poll() is not None:
                return True
        elif not processes._alive(process):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:  # ours: never leave one behind, whatever the test did
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(Exception):
            process.wait(10)


def started(procs: list, process: subprocess.Popen) -> subprocess.Popen:
    procs.append(process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the environment is readable once the interpreter has exec'd
        with contextlib.suppress(psutil.Error):
            if psutil.Process(process.pid).cmdline()[:1] == [sys.executable]:
                return process
        time.sleep(0.05)
    return process


# --- arguments --------------------------------------------------------------------------------------

def test_resources_parse_and_bad_ones_are_named():
    assert workshop._parse_resource("Custom=4") == ("Custom", 4.0)
    for bad in ("Custom", "Custom=x", "=4", "Custom=0"):
        with pytest.raises(argparse.ArgumentTypeError, match="NAME=AMOUNT"):
            workshop._parse_resource(bad)


def test_the_head_runs_no_autoscaler_and_no_dashboard_on_a_fixed_port():
    head = workshop.node_args(8, 2, {"Custom": 4}, 600, head=True)
    assert head["no_monitor"] is True and head["include_dashboard"] is False
    assert head["dashboard_port"] not in (0, 8265) and head["resources"] == {"Custom": 4}
    assert head["object_store_memory"] == 600 * 1024 * 1024 and head["num_gpus"] == 2
    worker = workshop.node_args(4, 0, {"worker_node_1": 1}, 600, head=False)
    assert "no_monitor" not in worker and "node_ip_address" not in worker


def test_priority_is_raised_only_while_starting(tmp_path):
    group = tmp_path / "autogroup"
    group.write_text("/autogroup-7 nice 3\n")
    with processes.priority_while_starting(-10, group) as raised:
        assert raised and group.read_text() == "-10"
    assert group.read_text() == "3", "the previous priority is restored"
    with processes.priority_while_starting(-10, tmp_path / "missing" / "autogroup") as raised:
        assert raised is False, "where Linux does not allow it, the start goes on at normal priority"


# --- finding and stopping exactly this cluster's processes --------------------------------------------

def test_sweep_stops_only_what_carries_this_workshops_mark(procs):
    mark = uuid.uuid4().hex
    ours = started(procs, spawn(mark))
    stubborn = started(procs, spawn(mark, "stubborn"))
    someone_elses = started(procs, spawn(uuid.uuid4().hex))
    unmarked = started(procs, spawn(None))
    assert {p.pid for p in processes.cluster_processes(mark)} == {ours.pid, stubborn.pid}
    assert processes.sweep(mark, grace=0.5) == 2
    assert gone(ours) and gone(stubborn), "SIGTERM first, then SIGKILL for a process that ignores it"
    assert someone_elses.poll() is None and unmarked.poll() is None


def test_processes_holding_the_session_folder_are_found_without_a_mark(procs, tmp_path):
    session = tmp_path / "session_2026-01-01_10-00-00_000000_4242"
    (session / "logs").mkdir(parents=True)
    agent = started(procs, spawn(None, hold=session / "logs" / "dashboard_agent.log"))
    elsewhere = started(procs, spawn(None, hold=tmp_path / "other.log"))
    deadline = time.monotonic() + 30
    while not processes.cluster_processes("none", [session]) and time.monotonic() < deadline:
        time.sleep(0.1)  # the child opens its file right after starting
    assert [p.pid for p in processes.cluster_processes("none", [session])] == [agent.pid]
    assert processes.sweep("none", folders=[session], grace=0.5) == 1
    assert gone(agent) and elsewhere.poll() is None


def test_session_folders_are_those_the_workshop_made(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    ray_dir = tmp_path / "ray"
    mine = ray_dir / "session_2026-01-01_10-00-00_000000_4242"
    for folder in (mine, ray_dir / "session_2026-01-01_10-00-00_000000_14242", ray_dir / "session_x_4243"):
        folder.mkdir(parents=True)
    old = ray_dir / "session_2020-01-01_10-00-00_000000_4242"  # the same pid, long ago: not this workshop's
    old.mkdir()
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert processes.sessions_of(4242, since=time.time() - 60) == [mine]


def test_a_failed_attempt_is_cleaned_up_before_the_next_and_said_in_one_line(procs, monkeypatch):
    mark, lines, results = uuid.uuid4().hex, [], iter(["fail", "fail", "cluster"])
    leftovers: list[subprocess.Popen] = []

    def attempt(*args):
        leftovers.append(started(procs, spawn(mark)))  # what a half-started node leaves (agents, a raylet)
        outcome = next(results)
        if outcome == "fail":
            assert all(p.poll() is not None for p in leftovers[:-1]), "the previous attempt was cleaned up first"
            raise Exception("The current node timed out during startup. This could happen because some of the "
                            "raylet failed to startup or the GCS has become overloaded.")
        return outcome

    monkeypatch.setattr(workshop, "_start_once", attempt)
    monkeypatch.setattr(workshop, "ensure_token", lambda: None)
    monkeypatch.setenv(MARK, "")
    bystander = started(procs, spawn(None))  # started before: another Ray's raylet in this process, say
    assert workshop.start_cluster(8, 2, 1, {}, 600, mark, attempts=3, say=lines.append) == "cluster"
    assert [gone(p) for p in leftovers[:2]] == [True, True] and leftovers[2].poll() is None
    assert bystander.poll() is None, "a child this process had before the start is not the attempt's to stop"
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert lines[0].startswith("attempt 1 of 3 did not start (The current node timed out during startup.")
    assert "its processes are stopped, trying again" in lines[0]
    assert os.environ[MARK] == mark, "the nodes inherit the mark"


def test_when_every_attempt_fails_the_error_is_one_line_and_nothing_is_left(procs, monkeypatch):
    mark, leftovers = uuid.uuid4().hex, []

    def attempt(*args):
        leftovers.append(started(procs, spawn(mark)))
        raise TimeoutError("Timed out waiting for file /tmp/ray/session_x/metrics_agent_port")

    monkeypatch.setattr(workshop, "_start_once", attempt)
    monkeypatch.setattr(workshop, "ensure_token", lambda: None)
    monkeypatch.setenv(MARK, "")
    with pytest.raises(BusyMachine) as error:
        workshop.start_cluster(8, 2, 1, {}, 600, mark, attempts=2)
    assert "did not start in 2 attempts; the machine is too busy (Timed out waiting for file" in str(error.value)
    assert "\n" not in str(error.value) and all(gone(p) for p in leftovers)


def test_a_bad_argument_is_not_retried(monkeypatch):
    calls = []
    monkeypatch.setattr(workshop, "_start_once", lambda *a: calls.append(a) or (_ for _ in ()).throw(ValueError("bad")))
    monkeypatch.setattr(workshop, "ensure_token", lambda: None)
    monkeypatch.setenv(MARK, "")
    with pytest.raises(ValueError):
        workshop.start_cluster(8, 2, 1, {}, 600, "m", attempts=3)
    assert len(calls) == 1


def test_the_command_prints_one_clear_line_instead_of_a_traceback(monkeypatch, capsys):
    class Watchdog:
        pid = -1

        class stdin:  # noqa: N801 - stands in for the pipe's file object
            @staticmethod
            def close() -> None:
                pass

        @staticmethod
        def wait(timeout: float) -> int:
            return 0

    def busy(*args, **kwargs):
        raise BusyMachine("the cluster did not start in 3 attempts; the machine is too busy (x). Close other heavy "
                          "programs and run it again.")

    monkeypatch.setattr(workshop, "set_subreaper", lambda: True)
    monkeypatch.setattr(workshop, "start_watchdog", lambda mark: Watchdog())
    monkeypatch.setattr(workshop, "priority_while_starting", contextlib.nullcontext)
    monkeypatch.setattr(workshop, "start_cluster", busy)
    monkeypatch.setattr(workshop, "sweep", lambda *a, **k: 0)
    assert workshop.main(["--json"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip().splitlines() == ["raycourse-workshop: the cluster did not start in 3 attempts; the machine is "
                                        "too busy (x). Close other heavy programs and run it again."]


# --- killed outright: the watchdog ------------------------------------------------------------------

FAKE_WORKSHOP = textwrap.dedent("""
    import json, os, subprocess, sys, time
    from raycourse.tools import workshop
    mark = sys.argv[1]
    watchdog = workshop.start_watchdog(mark)
    os.environ[workshop.MARK] = mark
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    # the folder Ray would make for this process: session_<date>_<time>_<pid>
    folder = os.path.join(os.environ["RAY_TMPDIR"], "ray", f"session_2026-01-01_10-00-00_000000_{os.getpid()}")
    os.makedirs(folder)
    agent = subprocess.Popen([sys.executable, "-c", f"f = open({folder + '/agent.log'!r}, 'a')\\nimport time\\n"
                              "time.sleep(600)"], env={"PATH": os.environ.get("PATH", "")}, start_new_session=True)
    print(json.dumps({"watchdog": watchdog.pid, "worker": worker.pid, "agent": agent.pid}), flush=True)
    time.sleep(600)
""")


def test_a_workshop_killed_outright_leaves_nothing_behind(tmp_path):
    """SIGKILL: the watchdog stops the marked process and the one holding the session folder (an unmarked agent)."""
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path)}
    env.pop(MARK, None)
    fake = subprocess.Popen([sys.executable, "-c", FAKE_WORKSHOP, uuid.uuid4().hex], env=env, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    children = {}
    try:
        children = {k: psutil.Process(v) for k, v in json.loads(fake.stdout.readline()).items()}
        agent = children["agent"]
        deadline = time.monotonic() + 30
        while not [f for f in agent.open_files() if f.path.endswith("agent.log")] and time.monotonic() < deadline:
            time.sleep(0.1)
        fake.send_signal(signal.SIGKILL)
        fake.wait(10)
        for name in ("worker", "agent", "watchdog"):
            assert gone(children[name], timeout=30), f"the {name} outlived the killed workshop"
    finally:
        for process in children.values():
            with contextlib.suppress(psutil.Error):
                process.kill()
        with contextlib.suppress(ProcessLookupError):
            fake.kill()


# --- metrics on loopback --------------------------------------------------------------------------

FAKE_SERVER = textwrap.dedent("""
    import json, sys
    import prometheus_client, psutil
    import ray._private.prometheus_exporter as exporter
    exporter.new_stats_exporter(exporter.Options(namespace="ray", port=0, address=""))  # as Ray's agent does
    prometheus_client.start_http_server(port=0, registry=prometheus_client.CollectorRegistry())  # as its dashboard does
    listening = sorted(s.laddr.ip for s in psutil.Process().net_connections("inet") if s.status == psutil.CONN_LISTEN)
    print(json.dumps({"argv": sys.argv, "listening": listening}), flush=True)
""")


def _run_agents(*commands: list[str]) -> list[dict]:
    running = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    results = []
    for process in running:  # side by side: each imports Ray's exporter, slow on a loaded machine
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_the_shim_binds_the_agents_and_the_dashboards_metrics_to_loopback(tmp_path):
    script = tmp_path / "agent.py"
    script.write_text(FAKE_SERVER)
    plain, shimmed = _run_agents([sys.executable, str(script), "--node-id=x"],
                                 [sys.executable, "-u", "-c", workshop.METRICS_SHIM, str(script), "--node-id=x"])
    assert plain["listening"] == ["0.0.0.0", "0.0.0.0"], "Ray's metrics servers, left alone, listen everywhere"
    assert shimmed["listening"] == ["127.0.0.1", "127.0.0.1"]
    assert shimmed["argv"] == [str(script), "--node-id=x"], "the script sees its own command line"


def test_nodes_start_their_agents_and_dashboard_through_the_shim_only_while_asked():
    import ray._private.ray_constants as constants
    import ray._private.services as services

    original = services._build_python_executable_command_memory_profileable
    with workshop._loopback_metrics():
        def build(component):
            return services._build_python_executable_command_memory_profileable(component, "/tmp/s")

        agent, dashboard = build(constants.PROCESS_TYPE_DASHBOARD_AGENT), build(constants.PROCESS_TYPE_DASHBOARD)
        other = build(constants.PROCESS_TYPE_LOG_MONITOR)
    assert agent[-2:] == dashboard[-2:] == ["-c", workshop.METRICS_SHIM] and "-c" not in other
    assert services._build_python_executable_command_memory_profileable is original
    with workshop._loopback_metrics(on=False):
        assert services._build_python_executable_command_memory_profileable is original
