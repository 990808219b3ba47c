"""Ray for a class's grading: started once per slot and reused, not once per notebook.

Starting Ray is most of a lesson's grading time on a small machine (20-40 s when
it is quiet, minutes or a failure when it is not), so the grader keeps one Ray
per concurrent kernel (``--jobs`` slots) and every graded kernel joins its
slot's Ray through ``RAY_ADDRESS``. Each slot's Ray has exactly the resources the
notebook's ``raycourse.start(...)`` asks for (``COURSE_NUM_CPUS`` and
``COURSE_OBJECT_STORE_MB`` applied, as a local start would), so a check that
judges "how many of these could run at once" sees what the learner's own Ray
showed them, and no two learners' tasks compete for one Ray. The checks keep a
kernel's tasks apart from the previous kernel's by job id.

A slot's Ray lives in a helper process (``python -m raycourse.tools.classroom.pool
SPEC``) that starts it, prints its address, answers ``status`` on stdin with the
total and available resources, and shuts it down when stdin closes (so it also
goes when the grader is killed). The helper waits patiently for a slow node
(Ray's own wait is a fixed 30 s), pre-selects the agents' ports (a slow
metrics agent otherwise makes the raylet give up) and writes their port files
itself, starts no dashboard or autoscaler and runs the agents minimal, and
retries twice, each failed attempt's processes stopped first.

After each notebook the grader asks for ``status``: a Ray whose resources do
not all come back (a detached actor, a leaked placement group, a dead raylet)
is restarted before the next learner uses it.
"""
from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from ...session import ENVIRONMENT
from ...startup import AGENT_PORTS, _agent_ports_chosen, _children, _free_port, _patient_node_wait
from ...startup import _kill_new_children as _stop_new_children
from .reaper import MARK

READY, STATUS = "RAYCOURSE-SLOT-READY ", "RAYCOURSE-SLOT-STATUS "
# The slot's Ray runs the kernels' tasks, so it needs the course's settings (task events reported within 0.1 s,
# read by the checks) and patience: on a busy machine a worker takes more than Ray's 60 s to register.
SLOT_ENVIRONMENT = {**ENVIRONMENT, "RAY_worker_register_timeout_seconds": "300"}
START_ATTEMPTS = 3
NODE_PATIENCE_S = 300.0  # how long one attempt waits for the node to register (Ray's own wait is 30 s)


@dataclass(frozen=True)
class RaySpec:
    """What one notebook's Ray must offer: the arguments of its ``raycourse.start(...)``, overrides applied."""

    cpus: int
    gpus: int = 0
    resources: tuple[tuple[str, float], ...] = ()
    object_store_mb: int | None = None

    def to_json(self) -> str:
        return json.dumps({"cpus": self.cpus, "gpus": self.gpus, "resources": dict(self.resources),
                           "object_store_mb": self.object_store_mb})

    @classmethod
    def from_start(cls, arguments: dict[str, Any], environ: dict[str, str]) -> "RaySpec | None":
        """From ``raycourse.start``'s literal arguments; None when they ask for something a slot cannot give."""
        if set(arguments) - {"num_cpus", "num_gpus", "resources", "object_store_memory", "warm", "dashboard"}:
            return None
        cpus, gpus, resources = arguments.get("num_cpus", 4), arguments.get("num_gpus") or 0, arguments.get("resources") or {}
        if not isinstance(cpus, int) or not isinstance(gpus, (int, float)) or not isinstance(resources, dict):
            return None
        if not all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in resources.items()):
            return None
        override = environ.get("COURSE_NUM_CPUS", "").strip()
        cpus = int(override) if override.isdigit() and int(override) > 0 else cpus
        store = arguments.get("object_store_memory")
        store_mb = int(store // (1024 * 1024)) if isinstance(store, (int, float)) and store > 0 else None
        store_override = environ.get("COURSE_OBJECT_STORE_MB", "").strip()
        if store_override.isdigit() and int(store_override) > 0:
            store_mb = int(store_override)
        if cpus < 1:
            return None
        return cls(cpus, int(gpus), tuple(sorted((k, float(v)) for k, v in resources.items())), store_mb)


class Slot:
    """One Ray in a helper process, used by one kernel at a time."""

    def __init__(self, index: int, environ: dict[str, str], reaper: Any, log_dir: str) -> None:
        self.index, self.environ, self.reaper, self.log_dir = index, environ, reaper, log_dir
        self.mark = ""
        self.spec: RaySpec | None = None
        self.address: str | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.failures = 0  # consecutive starts that failed: after two, notebooks start their own Ray

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None and self.address is not None

    async def ensure(self, spec: RaySpec, starting: asyncio.Lock, timeout: float) -> str | None:
        """The address of a healthy Ray for ``spec``, (re)starting it if needed; None if it cannot start."""
        if self.running and self.spec == spec:
            return self.address
        await self.stop()
        if self.failures >= 2:
            return None
        async with starting:  # one Ray start at a time: concurrent starts starve each other on a small machine
            self.address = await self._start(spec, timeout)
        self.spec = spec if self.address else None
        self.failures = 0 if self.address else self.failures + 1
        return self.address

    async def _start(self, spec: RaySpec, timeout: float) -> str | None:
        self.mark = self.reaper.new_mark("slot")  # everything this Ray starts carries it, until stop() sweeps it
        env = {**SLOT_ENVIRONMENT, **self.environ, MARK: self.mark}
        log = open(os.path.join(self.log_dir, f"slot{self.index}.log"), "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "raycourse.tools.classroom.pool", spec.to_json(), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log, env=env, limit=1 << 20)
        finally:
            log.close()
        try:
            while True:
                line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
                if not line:
                    return None
                if line.startswith(READY.encode()):
                    return json.loads(line[len(READY):])["address"]
        except (asyncio.TimeoutError, ValueError, KeyError):
            await self.stop()
            return None

    async def healthy(self, settle: float = 8.0) -> bool:
        """Is the Ray still up, with all its resources free again (the last job's workers gone)?"""
        if not self.running:
            return False
        deadline = time.monotonic() + settle
        while True:
            try:
                self.process.stdin.write(b"status\n")
                await self.process.stdin.drain()
                while True:
                    line = await asyncio.wait_for(self.process.stdout.readline(), 120)
                    if not line:
                        return False
                    if line.startswith(STATUS.encode()):
                        break
                status = json.loads(line[len(STATUS):])
            except asyncio.TimeoutError:  # a control store too busy to answer is not a broken one
                return self.process.returncode is None
            except (ConnectionError, ValueError, AttributeError):
                return False
            free = status.get("available", {})
            if status.get("ok") and all(free.get(k, 0) >= v - 1e-6 for k, v in status.get("total", {}).items()
                                        if k == "CPU" or k == "GPU" or not k.startswith(("node:", "memory", "object_store"))):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        """Shut the Ray down (the helper stops it when its input closes), then sweep what is left of it."""
        process, self.process, self.address, self.spec = self.process, None, None, None
        if process is not None and process.returncode is None:
            try:
                process.stdin.close()
                await asyncio.wait_for(process.wait(), 30)
            except (asyncio.TimeoutError, ConnectionError, OSError):
                process.kill()
                await process.wait()
        if self.mark:
            mark, self.mark = self.mark, ""
            await asyncio.get_running_loop().run_in_executor(None, self.reaper.end, mark)


# --- the helper process ----------------------------------------------------------------------------


def _forget_address(address: str) -> None:
    """Remove Ray's ``ray_current_cluster`` file if it names this slot: a bare ``ray.init()`` must not join it."""
    base = os.environ.get("RAY_TMPDIR") or (os.environ.get("TMPDIR") if sys.platform.startswith("linux") else None)
    path = os.path.join(base or "/tmp", "ray", "ray_current_cluster")
    try:
        with open(path, encoding="utf-8") as handle:
            named = handle.read().strip().splitlines()[0]
        if named == address:
            os.unlink(path)
    except (OSError, IndexError):
        pass


def _light_node() -> None:
    """A head node with only what grading needs: no dashboard process, the agents in their minimal mode.

    Ray starts a dashboard process even with ``include_dashboard=False`` and waits up to a minute
    for it; its node agents load metrics and HTTP servers; each is a Python process whose start
    takes many seconds of CPU on a busy machine. A grading slot needs none of it (the checks read
    the control store; the kernels find no dashboard link, and say nothing about it).
    """
    import ray._private.node as node_module
    import ray._private.utils as utils

    if hasattr(utils, "get_dashboard_dependency_error"):
        utils.get_dashboard_dependency_error = lambda: "the grader's Ray runs its agents minimal"
    if hasattr(node_module.Node, "start_api_server"):
        def start_api_server(self: Any, *, include_dashboard: Any = None, raise_on_failure: bool = False) -> None:
            self._webui_url = None

        node_module.Node.start_api_server = start_api_server


def _listening(host: str, port: int, patience: float) -> bool:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def _start_cluster(spec: RaySpec) -> tuple[Any, dict[str, int]]:
    from ray.cluster_utils import Cluster

    ports = {name: _free_port() for name in AGENT_PORTS}  # their files are written first: _agent_ports_chosen
    args: dict[str, Any] = dict(num_cpus=spec.cpus, num_gpus=spec.gpus, resources=dict(spec.resources),
                                include_dashboard=False, no_monitor=True, **ports)
    if spec.object_store_mb:
        args["object_store_memory"] = spec.object_store_mb * 1024 * 1024
    return Cluster(initialize_head=True, connect=False, head_node_args=args), ports


def serve(spec: RaySpec, out: Any = sys.stdout) -> int:
    """The helper's life: start Ray (retrying), say where it is, answer ``status``, stop at end of input."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <helper>` writes where it is to the slot's log
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # terminated: still shut the Ray down (the finally below)
    _patient_node_wait(NODE_PATIENCE_S).__enter__()  # for this helper's whole life: it only runs Ray
    _agent_ports_chosen().__enter__()  # no raylet abort after its fixed 15 s wait for agents' port files
    _light_node()
    cluster = None
    for attempt in range(1, START_ATTEMPTS + 1):
        before = {p.pid for p in _children()}
        try:
            cluster, ports = _start_cluster(spec)
            host = cluster.address.rsplit(":", 1)[0]
            if not _listening(host, ports["runtime_env_agent_port"], NODE_PATIENCE_S):  # jobs' workers need it
                raise RuntimeError("the runtime env agent did not start")
            break
        except Exception as error:  # Ray raises bare Exceptions for a node that did not come up
            print(f"attempt {attempt}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            if cluster is not None:
                try:
                    cluster.shutdown()
                except Exception:  # half-started: the children are stopped below
                    pass
            cluster = None
            _stop_new_children(before)
    if cluster is None:
        return 1
    _forget_address(cluster.address)
    print(READY + json.dumps({"address": cluster.address}), file=out, flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "status":
                try:  # straight from the control store: the helper is no driver, it holds no job of its own
                    state = cluster.global_state
                    status = {"ok": True, "total": state.cluster_resources(), "available": state.available_resources()}
                except Exception as error:  # the Ray is gone or broken: the grader restarts the slot
                    status = {"ok": False, "error": str(error)}
                print(STATUS + json.dumps(status), file=out, flush=True)
    finally:
        cluster.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    raw = json.loads(argv[0])
    spec = RaySpec(int(raw["cpus"]), int(raw.get("gpus") or 0), tuple(sorted((raw.get("resources") or {}).items())),
                   raw.get("object_store_mb"))
    return serve(spec)


if __name__ == "__main__":
    sys.exit(main())
