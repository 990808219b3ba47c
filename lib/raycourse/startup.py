"""Getting a new local Ray up on a busy machine, and cleaning up after an attempt that failed.

Ray waits a fixed 30 s for a new node's raylet to register and then gives up ("The
current node timed out during startup"), however loaded the machine is; a failed
``ray.init`` also leaves the processes it spawned running. On two busy cores a
lesson's first cell would fail for nobody's fault. So :func:`_init_local` waits
patiently for the raylet (:func:`_patient_node_wait`), and when an attempt fails
all the same it stops exactly the processes that attempt spawned (this kernel's new
children, never anyone else's) and tries again, up to :data:`START_ATTEMPTS` times.

Ray also remembers the last cluster in ``/tmp/ray/ray_current_cluster``; a cluster
that was killed leaves that file behind: :func:`clear_stale_cluster_file`.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

START_ATTEMPTS = 3
NODE_PATIENCE_S = 150.0  # how long a local start may wait for its raylet (Ray itself waits a fixed 30 s)


class CourseSetupError(RuntimeError):
    """Raised, with a message meant for a learner, when Ray cannot be started as the lesson needs."""


def _ray_temp_dir() -> Path:
    """Where Ray keeps ``ray_current_cluster``: the same lookup Ray itself does."""
    base = os.environ.get("RAY_TMPDIR") or (os.environ.get("TMPDIR") if sys.platform.startswith("linux") else None)
    return Path(base or "/tmp") / "ray"


def clear_stale_cluster_file(path: Path | None = None) -> bool:
    """Remove ``/tmp/ray/ray_current_cluster`` if nothing listens at the address it names.

    A cluster that was killed leaves this file behind, and a later ``ray.init()``
    may then wait for a head node that will never answer. A file naming a live
    cluster (someone else's, perhaps) is left alone. Returns True if removed.
    """
    path = path or _ray_temp_dir() / "ray_current_cluster"
    try:
        address = path.read_text().strip().splitlines()[0]
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=0.5):
            return False
    except FileNotFoundError:
        return False
    except (OSError, ValueError, IndexError):
        try:
            path.unlink()
            return True
        except OSError:
            return False


def forget_cluster_file(address: str, path: Path | None = None) -> bool:
    """Remove ``/tmp/ray/ray_current_cluster`` if it names ``address``; return True if removed.

    ``ray.cluster_utils.Cluster`` writes its address there, and while it does any
    other ``ray.init()`` on this machine (another notebook, a classmate's kernel)
    would join that toy cluster instead of starting its own. A lesson that
    simulates a cluster calls this right after creating it.
    """
    path = path or _ray_temp_dir() / "ray_current_cluster"
    try:
        if path.read_text().strip().splitlines()[0] == address:
            path.unlink()
            return True
    except (OSError, IndexError):
        pass
    return False


def _children() -> list[Any]:
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _kill_new_children(before: set[int]) -> None:
    """Stop the processes this kernel spawned since ``before`` (only ours, never anyone else's)."""
    stop_processes([p for p in _children() if p.pid not in before])


def stop_processes(processes: list[Any], timeout: float = 10.0) -> None:
    """Terminate these processes; kill those still alive after ``timeout`` s (gone ones are fine)."""
    import psutil

    for process in processes:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass


def ray_said(error: BaseException) -> str:
    """The first line of what Ray raised (at most 160 characters), for a message that quotes it."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:160]


def _busy_machine_error(error: BaseException) -> bool:
    text = str(error)
    return any(s in text for s in ("timed out during startup", "Timed out waiting for file", "Failed to start GCS",
                                   "failed to start", "Failed to connect to GCS"))


@contextlib.contextmanager
def _patient_node_wait(seconds: float = NODE_PATIENCE_S) -> Iterator[None]:
    """Let ``ray.init`` wait up to ``seconds`` for its new raylet to register, instead of Ray's fixed 30 s.

    Ray polls ``services.get_node`` and gives up ("The current node timed out during
    startup") 30 s after the raylet started, however busy the machine; on two loaded
    cores the raylet and its agents need longer. Inside this block each poll keeps
    asking until the node appears or ``seconds`` pass, so a slow start succeeds; but a
    raylet that has died will never register, so a new dead raylet ends the wait at once.
    """
    import ray._private.services as services

    original = services.get_node
    deadline = time.monotonic() + seconds
    dead_before = {p.pid for p in _dead_raylets()}

    def get_node(gcs_address: str, node_id: str) -> Any:
        while True:
            try:
                return original(gcs_address, node_id)
            except RuntimeError:
                if time.monotonic() > deadline or any(p.pid not in dead_before for p in _dead_raylets()):
                    raise
                time.sleep(0.5)

    services.get_node = get_node
    try:
        yield
    finally:
        services.get_node = original


def _dead_raylets() -> list[Any]:
    """This process's raylet children that have exited (zombies not yet reaped)."""
    import psutil

    dead = []
    for child in _children():
        try:
            if child.name() == "raylet" and child.status() == psutil.STATUS_ZOMBIE:
                dead.append(child)
        except psutil.Error:
            continue
    return dead


# Agent ports chosen up front (also the names of their port files). With the metrics agent's given, the GCS
# and the raylet try it at once, before it listens, and each logs one line (dropped: session.NOISE); left
# dynamic, the raylet waits the fixed 15 s for its file, and on a loaded machine aborts.
AGENT_PORTS = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port", "runtime_env_agent_port")


@contextlib.contextmanager
def _agent_ports_chosen() -> Iterator[None]:
    """Give each node agent a free port chosen now, and write its port file before the raylet starts.

    The raylet waits a fixed 15 s for the agents to write their port files, then aborts
    (ray-project/ray#65983); on two loaded cores the dashboard agent's imports alone can take
    longer, and the start failed with "The current node timed out during startup". With the
    ports chosen here (:data:`AGENT_PORTS`) and their files written first, the raylet finds
    them at once (the agents write the same numbers again when they are up). The dashboard
    agent's fixed default port, shared by every Ray on the machine, is replaced too.
    """
    from ray._private import node, parameter, ray_constants
    from ray._raylet import persist_port

    original_params = parameter.RayParams.__init__
    original_raylet = node.Node.start_raylet
    shared = {ray_constants.DEFAULT_DASHBOARD_AGENT_LISTEN_PORT}

    def chosen(self: Any, *args: Any, **kwargs: Any) -> None:
        original_params(self, *args, **kwargs)
        for name in AGENT_PORTS:
            if getattr(self, name, None) in (None, 0) or getattr(self, name, None) in shared:
                setattr(self, name, _free_port())

    def ports_written_first(self: Any, *args: Any, **kwargs: Any) -> Any:
        for name in AGENT_PORTS:
            port = getattr(self._ray_params, name, None)
            if port:
                persist_port(self._session_dir, self._node_id, name, port)
        return original_raylet(self, *args, **kwargs)

    parameter.RayParams.__init__ = chosen
    node.Node.start_raylet = ports_written_first
    try:
        yield
    finally:
        parameter.RayParams.__init__ = original_params
        node.Node.start_raylet = original_raylet


# Where agent ports are chosen: below the kernel's ephemeral range (where every gRPC server that asks
# for "any port" gets one: other Rays' workers, GCS, raylets) and above Ray's worker ports (10002-19999).
AGENT_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_port() -> int:
    """A port nothing listens on, for an agent that binds it only later (tens of seconds, on a loaded machine).

    A port the kernel hands out for "any port" is also what the next gRPC server on the machine
    (another Ray's raylet, GCS or workers) may get meanwhile, and the agent then fails to bind
    ("Failed to bind to address 0.0.0.0:...": its raylet fate-shares with it and dies). So the port
    comes from :data:`AGENT_PORT_RANGE`, outside the ephemeral range, at random, never twice.
    """
    import random

    low, high = AGENT_PORT_RANGE
    high = min(high, _ephemeral_low() - 1)
    for _ in range(200):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        try:
            for host in ("0.0.0.0", "127.0.0.1"):
                with socket.socket() as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    with socket.socket() as probe:  # a crowded range: fall back on any free port
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


DASHBOARD_FAILED = "The dashboard could not start on this busy machine; the lesson does not need it."


@contextlib.contextmanager
def _dashboard_failure_kept(failures: list[str]) -> Iterator[None]:
    """Keep Ray's "Failed to start the dashboard" log lines out of the cell, noting that they came.

    Ray always starts a dashboard process (a headless one without the dashboard); on a loaded
    machine it can die at birth (return code -6, before it writes any log), and Ray then logs
    four error lines to the notebook and carries on without it.
    """
    import logging

    class Keep(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if "dashboard" in record.getMessage().lower():
                failures.append(record.getMessage())
                return False
            return True

    services = logging.getLogger("ray._private.services")
    keep = Keep()
    services.addFilter(keep)
    try:
        yield
    finally:
        services.removeFilter(keep)


def _init_local(kwargs: dict[str, Any], attempts: int = START_ATTEMPTS, say: Callable[[str], None] = lambda t: None,
                notes: list[str] | None = None) -> Any:
    """``ray.init`` for a new local Ray, retried: on a very busy machine Ray's own 30 s start-up
    wait can expire while its helper processes are still starting. Each failed attempt's
    processes are stopped before the next one. A dashboard that could not start is a note in
    ``notes`` (the next attempt goes without it), not a failure."""
    import ray

    kwargs = dict(kwargs)
    for attempt in range(1, attempts + 1):
        say("Starting Ray (on a busy machine this can take a minute)..." if attempt == 1 else
            f"The machine is busy: starting Ray again (attempt {attempt} of {attempts})...")
        before = {p.pid for p in _children()}
        failures: list[str] = []
        try:
            with _patient_node_wait(), _agent_ports_chosen(), _dashboard_failure_kept(failures):
                context = ray.init(**kwargs)
            if failures and kwargs.get("include_dashboard") and notes is not None:
                notes.append(DASHBOARD_FAILED)
            return context
        except Exception as error:  # Ray raises a bare Exception (or RuntimeError) for these
            dashboard = bool(failures) and kwargs.get("include_dashboard")
            if not (_busy_machine_error(error) or dashboard):
                raise
            if dashboard:
                kwargs["include_dashboard"] = False
                if notes is not None and DASHBOARD_FAILED not in notes:
                    notes.append(DASHBOARD_FAILED)
            ray.shutdown()
            _kill_new_children(before)  # shutdown() does not stop what a half-started init spawned
            clear_stale_cluster_file()
            if attempt == attempts:
                said = ray_said(error)
                raise CourseSetupError(
                    f"Ray could not start in time, {attempts} times, because this machine is very busy (Ray said: "
                    f"{said}). Close other heavy programs (or other notebooks running Ray) and run this cell again."
                ) from None
    raise AssertionError("unreachable")
