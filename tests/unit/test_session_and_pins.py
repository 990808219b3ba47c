"""Starting Ray for a lesson, and the pins file."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

import raycourse
from raycourse import session
from raycourse.tools import pins
from raycourse.session import CourseSetupError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("ray_session")
def test_start_is_idempotent_and_warm(ray_session):
    current = raycourse.start(num_cpus=4)  # other modules may have restarted the shared Ray
    assert raycourse.start(num_cpus=4) is current
    assert current.warm_workers == 4 and current.resources["CPU"] == 4
    assert "Ray is ready" in repr(current) and "Ray is ready" in current._repr_html_()


def test_course_num_cpus_must_be_a_positive_whole_number(monkeypatch):
    monkeypatch.setenv("COURSE_NUM_CPUS", "two")
    with pytest.raises(CourseSetupError, match="not a whole number"):
        session._env_int("COURSE_NUM_CPUS")
    monkeypatch.setenv("COURSE_NUM_CPUS", "0")
    with pytest.raises(CourseSetupError, match="at least 1"):
        session._env_int("COURSE_NUM_CPUS")
    monkeypatch.setenv("COURSE_NUM_CPUS", " 3 ")
    assert session._env_int("COURSE_NUM_CPUS") == 3


def test_missing_cluster_resources_are_named():
    with pytest.raises(CourseSetupError, match=r"GPU: needs 2, has 0; Custom: needs 4, has 1"):
        session._check_resources({"CPU": 8, "Custom": 1}, {"CPU": 4, "GPU": 2, "Custom": 4}, "10.0.0.1:6379")
    session._check_resources({"CPU": 8}, {"CPU": 8}, "x")


def test_stale_cluster_file_is_removed_only_when_nobody_listens(tmp_path):
    stale = tmp_path / "ray_current_cluster"
    assert session.clear_stale_cluster_file(stale) is False  # no file
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]  # bound, not listening: connections are refused
        stale.write_text(f"127.0.0.1:{port}\n")
        assert session.clear_stale_cluster_file(stale) is True and not stale.exists()
    with socket.socket() as live:
        live.bind(("127.0.0.1", 0))
        live.listen()
        stale.write_text(f"127.0.0.1:{live.getsockname()[1]}\n")
        assert session.clear_stale_cluster_file(stale) is False and stale.exists()
    stale.write_text("garbage")
    assert session.clear_stale_cluster_file(stale) is True


def test_pins_are_read_and_match_this_environment():
    python_version, pinned = pins.read_pins(ROOT / "environment.yml")
    assert python_version == "3.11" and any(p.name == "ray" and p.version == "2.60.0" for p in pinned)
    assert pins.compare_installed(ROOT / "environment.yml") == []


def test_unpinned_requirement_is_rejected(tmp_path):
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - python=3.11\n  - pip:\n      - numpy\n")
    with pytest.raises(ValueError, match="'numpy' is not pinned"):
        pins.read_pins(env)


def test_version_mismatch_is_described(tmp_path):
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - python=2.7\n  - pip:\n      - numpy==0.0.1\n      - surely-not-installed==1.0\n")
    problems = pins.compare_installed(env)
    assert any(p.startswith("python: pinned 2.7") for p in problems)
    assert "numpy: pinned 0.0.1, installed" in " ".join(problems)
    assert "surely-not-installed: pinned 1.0, not installed" in problems
    assert pins.main(["check", str(tmp_path / "nope.yml")]) == 2


def test_dashboard_link_goes_through_the_proxy_behind_jupyterhub(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    assert session.dashboard_link("127.0.0.1:8265") == "http://127.0.0.1:8265/"
    assert session.dashboard_link(None) is None
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert session.dashboard_link("127.0.0.1:8265") == "/user/ada/proxy/8265/"


def test_forget_cluster_file_only_forgets_its_own_address(tmp_path):
    path = tmp_path / "ray_current_cluster"
    path.write_text("10.0.0.1:6379\n")
    assert session.forget_cluster_file("10.0.0.2:6379", path) is False and path.exists()
    assert session.forget_cluster_file("10.0.0.1:6379", path) is True and not path.exists()
    assert session.forget_cluster_file("10.0.0.1:6379", path) is False


def test_a_workers_exit_dump_is_kept_out_of_cells_and_a_learners_prints_stay():
    dump = ["[2026-12-02 00:06:06,329 E 4089 4267] logging.cc:474: PC: @     0x7f66e44a8eec  (unknown)  (unknown)",
            "[2026-12-02 00:06:06,349 E 4089 4267] logging.cc:474:     @     0x7f66e445a050       9104  (unknown)",
            "Fatal Python error: Aborted", "", "Extension modules: msgpack._cmsgpack, ray._raylet (total: 2)"]
    assert session.without_runtime_noise(dump + ["step 3 done"]) == ["step 3 done"]
    assert session.without_runtime_noise(["a", "", '  File "x.py", line 1']) == ["a", "", '  File "x.py", line 1']
    raw = "[mutex.cc : 452] RAW: Lock blocking 0x55a705171ee0   @ 0x7fce5442b1a2 0x7fce534fb23c"
    assert session.without_runtime_noise([raw, "step 4 done"]) == ["step 4 done"]


def test_a_dashboard_that_died_at_birth_is_a_note_not_four_error_lines(monkeypatch, capsys):
    """Ray logs four errors and goes on when its dashboard process dies; with the dashboard asked for, it raises."""
    import logging

    import ray
    from raycourse import startup

    services = logging.getLogger("ray._private.services")
    calls = []

    def fake_init(**kwargs):
        calls.append(kwargs["include_dashboard"])
        services.error("Failed to start the dashboard , return code -6")
        services.error("Error should be written to 'dashboard.log' or 'dashboard.err'.")
        if kwargs["include_dashboard"]:
            raise Exception("Failed to read dashboard.err file: [Errno 2] No such file or directory")
        return "context"

    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(startup, "_patient_node_wait", lambda: startup.contextlib.nullcontext())
    monkeypatch.setattr(startup, "_agent_ports_chosen", lambda: startup.contextlib.nullcontext())
    monkeypatch.setattr(startup, "_kill_new_children", lambda before: None)
    monkeypatch.setattr(ray, "shutdown", lambda: None)  # the worker's shared test Ray is not this test's to stop
    monkeypatch.setattr(startup, "clear_stale_cluster_file", lambda: False)
    reached: list[logging.LogRecord] = []  # what would reach Ray's handlers (the cell): nothing about the dashboard
    handler = logging.Handler()
    handler.emit = reached.append
    logging.getLogger("ray").addHandler(handler)
    try:
        notes: list[str] = []
        assert startup._init_local({"include_dashboard": True}, notes=notes) == "context"
        assert calls == [True, False] and notes == [startup.DASHBOARD_FAILED]
        notes.clear()
        assert startup._init_local({"include_dashboard": False}, notes=notes) == "context" and notes == []
        services.error("Failed to start the dashboard (outside ray.init: not the course's to hide)")
    finally:
        logging.getLogger("ray").removeHandler(handler)
    assert [r.getMessage() for r in reached] == ["Failed to start the dashboard (outside ray.init: not the course's to hide)"]
    captured = capsys.readouterr()
    assert "return code -6" not in captured.err + captured.out


def test_a_node_that_died_while_its_workers_warmed_is_started_once_more(monkeypatch):
    import ray
    from ray.exceptions import LocalRayletDiedError

    starts, warms, stopped = [], [], []

    def warm_up(workers, say):
        warms.append(workers)
        if len(warms) == 1:
            raise LocalRayletDiedError()
        return workers

    monkeypatch.setattr(session, "_init_local", lambda kwargs, say, notes: starts.append(kwargs) or f"ctx{len(starts)}")
    monkeypatch.setattr(session, "_warm_up", warm_up)
    monkeypatch.setattr(session, "_kill_new_children", stopped.append)
    monkeypatch.setattr(session, "clear_stale_cluster_file", lambda: False)
    monkeypatch.setattr(ray, "shutdown", lambda: None)  # the worker's shared test Ray is not this test's to stop
    said: list[str] = []
    assert session._start_local({"num_cpus": 3}, True, said.append, []) == ("ctx2", 3)
    assert len(starts) == 2 and warms == [3, 3] and len(stopped) == 1 and "starting Ray again" in said[-1]
    monkeypatch.setattr(session, "_warm_up", lambda workers, say: (_ for _ in ()).throw(LocalRayletDiedError()))
    with pytest.raises(CourseSetupError, match="twice"):
        session._start_local({"num_cpus": 3}, True, said.append, [])


def test_agent_ports_come_from_outside_the_ephemeral_range_and_never_twice():
    """A port from the kernel's "any port" range can be taken by another Ray's gRPC server before the agent binds it."""
    from raycourse import startup

    ports = [startup._free_port() for _ in range(50)]
    low, high = startup.AGENT_PORT_RANGE
    assert len(set(ports)) == 50 and all(low <= p <= min(high, startup._ephemeral_low() - 1) for p in ports)
