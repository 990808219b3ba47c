"""Start and stop Ray for a lesson: one call, quiet, idempotent, warm, and recorded.

Why a helper instead of a bare ``ray.init()`` in every notebook:

* **Token authentication, whatever started the kernel.** Ray reads
  ``RAY_AUTH_MODE`` when it is imported; a kernel started without it (conda,
  JupyterHub, a plain ``jupyter lab``) would start a Ray whose processes disagree
  about authentication. :func:`prepare_environment` (run when ``raycourse`` is
  imported) sets the course's defaults, and :func:`start` makes an already
  imported Ray re-read them, as Ray itself does when it turns token mode on.
* **Quiet.** Ray prints timestamped log lines and warnings; in a notebook they
  land in cell outputs. We start Ray with ``logging_level=ERROR`` and drop the
  raylet's worker-start warnings before they reach a cell.
* **Warm.** Ray starts worker processes lazily, about one second each and two at
  a time on a small machine. We run a throw-away task on every CPU slot before
  the first graded cell, and say what is happening while it does.
* **Recorded.** :mod:`raycourse.record` journals what the driver asks of Ray and
  when each cell runs: the evidence checks read instead of wall-clock windows.
* **Robust on a busy machine.** Ray waits a fixed 30 s for a new node; when that
  expires we clean up what the attempt spawned and try again (three attempts).
* **Idempotent.** Re-running the set-up cell, or Run All twice, must not fail.
* **Classrooms.** With ``RAY_ADDRESS`` set we join that cluster instead of
  starting one, and we check it has what the lesson needs.
* **Small machines.** ``COURSE_NUM_CPUS`` overrides the number of logical CPUs
  a lesson asks for; ``COURSE_OBJECT_STORE_MB`` caps the object store (Binder).
"""
from __future__ import annotations

import html
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .startup import CourseSetupError, _children, _init_local, _kill_new_children, clear_stale_cluster_file, ray_said
from .startup import forget_cluster_file  # noqa: F401 - part of session's interface (tests, lessons' clean-up)

# What every course kernel runs with, unless the learner or the instructor set otherwise.
ENVIRONMENT = {
    "RAY_AUTH_MODE": "token",  # Ray's default, said out loud: silences the "token auth is on" warning
    "RAY_USAGE_STATS_ENABLED": "0",  # never ask for usage stats on stdout
    "RAY_task_events_report_interval_ms": "100",  # a finished task reaches Ray's records within ~0.1 s
    "RAY_gcs_server_port_wait_time_s": "120",  # Ray's own wait for the GCS; its 30 s default fails a busy machine
    "GRPC_VERBOSITY": "ERROR",  # gRPC's info lines ("Got goaway" as Ray shuts down) would land in cells
}
# Lines the raylet or the GCS sends to every driver that say nothing to a learner (the course sizes its pools
# on purpose, and uses no metrics).
NOISE = [re.compile(p) for p in (
    r"worker processes have been started on node",
    r"A worker died or was killed while executing a task by an unexpected system error",
    # The agents' ports are given and their files written before the raylet starts (startup._agent_ports_chosen),
    # so the GCS and the raylet may try the metrics agent before it listens; the course uses no metrics.
    r"Failed to establish connection to the (event\+)?metrics exporter",
)]
# What a worker's own runtime writes as it exits (a GPU task's worker exits after each task, Ray's
# default ``max_calls=1``): C++ log lines with their stack, and Python's fatal-error dump. Never a learner's.
RUNTIME_NOISE = [re.compile(p) for p in (
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z] \d+ \d+\] \S+\.(cc|h):\d+:",
    r"^\[\S+\.(cc|h) : \d+\] RAW: ",  # abseil's raw lines (a mutex held long on a loaded machine)
    r"^Fatal Python error: ",
    r"^Extension modules: ",
    r"^(Current thread|Thread) 0x[0-9a-f]+ ",
)]
_DUMP_LINE = re.compile(r'^(\s*$|\s+File "|\s*@ +0x)')


def prepare_environment() -> None:
    """Set the course's defaults for Ray (see :data:`ENVIRONMENT`); existing values win."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)


# ray.init() arguments that still make sense when joining an existing cluster;
# the others (num_cpus, object_store_memory, ...) describe a cluster we start.
JOIN_KWARGS = {"runtime_env", "namespace", "log_to_driver", "logging_level", "logging_format"}


@dataclass
class Session:
    """What :func:`start` did, for display in the set-up cell."""

    address: str
    connected_to_existing: bool
    resources: dict[str, float]
    dashboard_url: str | None
    warm_workers: int
    notes: list[str] = field(default_factory=list)

    def _summary(self) -> str:
        where = f"connected to the cluster at {self.address}" if self.connected_to_existing else "started a local Ray"
        cpus = self.resources.get("CPU", 0)
        return f"Ray is ready: {where}, {cpus:g} CPUs, {self.warm_workers} warm workers."

    def __repr__(self) -> str:
        lines = [self._summary()]
        if self.dashboard_url:
            lines.append(f"Dashboard: {self.dashboard_url} (it asks for a token: run `ray get-auth-token` in a terminal)")
        return "\n".join(lines + self.notes)

    def _repr_html_(self) -> str:
        parts = [f"<b>{html.escape(self._summary())}</b>"]
        if self.dashboard_url:
            url = html.escape(self.dashboard_url, quote=True)
            parts.append(
                f'Dashboard: <a href="{url}" target="_blank" rel="noopener">{url}</a> '
                "<details style='display:inline-block'><summary>it asks for a token</summary>"
                "The dashboard is protected by the same token as Ray. Open a terminal (File &gt; New &gt; Terminal) "
                "and run <code>ray get-auth-token</code>, or read the file <code>~/.ray/auth_token</code>; paste "
                "the token into the dashboard's box. It works while this notebook's Ray runs: the last cell, "
                "<code>ray.shutdown()</code>, stops it.</details>")
        parts += [html.escape(note) for note in self.notes]
        return '<div class="raycourse-session">' + "<br>".join(parts) + "</div>"


_current: Session | None = None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise CourseSetupError(f"{name}={value!r} is not a whole number; unset it or set e.g. {name}=2") from None
    if number < 1:
        raise CourseSetupError(f"{name}={value!r} must be at least 1")
    return number


def _quiet_environment() -> None:
    """The course's environment, re-read by an already imported Ray, and Ray's Python loggers quietened."""
    prepare_environment()
    if "ray._raylet" in sys.modules:
        # Ray cached RAY_AUTH_MODE when it was imported (perhaps before raycourse set it): refresh,
        # exactly as Ray does when it enables token mode itself, so driver and cluster agree.
        from ray._raylet import Config

        Config.initialize("")
    for name in ("ray", "ray.data", "ray.tune", "ray.serve"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _filter_raylet_noise()


def _filter_raylet_noise() -> None:
    """Drop the raylet's and the GCS's :data:`NOISE` lines, and runtime dumps, before they reach a cell."""
    import ray._private.worker as worker

    if getattr(worker.print_to_stdstream, "_raycourse", False):
        return
    original = worker.print_to_stdstream

    def print_to_stdstream(data: dict, ignore_prefix: bool) -> None:
        lines = list(data.get("lines", []))
        if data.get("pid") in ("raylet", "gcs_server"):
            lines = [line for line in lines if not any(p.search(line) for p in NOISE)]
        lines = without_runtime_noise(lines)
        if not lines:
            return
        original({**data, "lines": lines}, ignore_prefix)

    print_to_stdstream._raycourse = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = print_to_stdstream


def without_runtime_noise(lines: list[str]) -> list[str]:
    """``lines`` without a worker runtime's log and crash dump; a learner's prints stay.

    Stack and blank lines are dropped only in a batch that holds such a log line.
    """
    if not any(p.search(line) for line in lines for p in RUNTIME_NOISE):
        return lines
    return [line for line in lines if not any(p.search(line) for p in RUNTIME_NOISE) and not _DUMP_LINE.search(line)]


class _Status:
    """One line in the set-up cell that says what Ray is doing while it starts (nothing outside Jupyter)."""

    def __init__(self) -> None:
        self.handle = None
        try:
            from IPython import get_ipython
            from IPython.display import HTML, display

            shell = get_ipython()
            if shell is not None and getattr(shell, "kernel", None) is not None:
                self._html = HTML
                self.handle = display(HTML(""), display_id=True)
        except ImportError:  # pragma: no cover - IPython ships with the course
            pass

    def say(self, text: str) -> None:
        if self.handle is not None:
            self.handle.update(self._html(f'<span class="raycourse-status">⏳ {html.escape(text)}</span>'))

    def clear(self) -> None:
        if self.handle is not None:
            self.handle.update(self._html(""))


def _start_local(kwargs: dict[str, Any], warm: bool, say: Callable[[str], None], notes: list[str]) -> tuple[Any, int]:
    """A new local Ray and its warm workers: (context, warm workers). A node that dies while its first workers
    start (an agent that could not bind its port: the raylet fate-shares with it) is started once more."""
    import ray
    from ray.exceptions import LocalRayletDiedError, NodeDiedError, RaySystemError

    for attempt in (1, 2):
        before = {p.pid for p in _children()}
        context = _init_local(kwargs, say=say, notes=notes)
        try:
            return context, (_warm_up(int(kwargs.get("num_cpus") or 1), say=say) if warm else 0)
        except (LocalRayletDiedError, NodeDiedError, RaySystemError) as error:
            ray.shutdown()
            _kill_new_children(before)  # the same clean-up as a failed ray.init: what this attempt spawned
            clear_stale_cluster_file()
            if attempt == 2:
                raise CourseSetupError(f"Ray's node stopped while it started, twice (Ray said: {ray_said(error)}). "
                                       "The machine may be very busy: close other notebooks running Ray and run "
                                       "this cell again.") from None
            say("Ray's node stopped while it started (a busy machine): starting Ray again...")
    raise AssertionError("unreachable")


def _warm_up(workers: int, timeout: float = 90.0, say: Callable[[str], None] = lambda text: None) -> int:
    """Make sure ``workers`` worker processes are up; return how many distinct ones ran."""
    import ray

    from . import record

    @ray.remote(num_cpus=1)
    def _warm() -> int:
        time.sleep(0.3)
        return os.getpid()

    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    with record.paused():
        while time.monotonic() < deadline and len(seen) < workers:
            say(f"Warming up worker processes: {len(seen)} of {workers} ready (about a second each)...")
            refs = [_warm.remote() for _ in range(workers)]
            pending = refs
            pids: set[int] = set()
            while pending and time.monotonic() < deadline:
                ready, pending = ray.wait(pending, num_returns=1, timeout=max(0.1, deadline - time.monotonic()))
                pids |= set(ray.get(ready))
                say(f"Warming up worker processes: {len(seen | pids)} of {workers} ready (about a second each)...")
            seen |= pids
            if len(pids) >= workers:
                break
    return min(len(seen), workers)


def _no_auto_start() -> None:
    """Make ``f.remote()`` before :func:`start` fail clearly instead of silently starting a bare Ray.

    Ray reads ``RAY_ENABLE_AUTO_CONNECT`` when it is imported, which in a notebook
    happens before this module runs, so we set the flag it derived from it.
    """
    os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
    try:
        import ray._private.auto_init_hook as hook

        hook.enable_auto_connect = False
    except (ImportError, AttributeError):  # a future Ray may move it; the env var still helps
        pass


def _check_resources(available: dict[str, float], needed: dict[str, float], address: str) -> None:
    missing = [
        f"{name}: needs {amount:g}, has {available.get(name, 0):g}"
        for name, amount in needed.items()
        if available.get(name, 0) < amount
    ]
    if missing:
        raise CourseSetupError(
            f"The Ray cluster at {address} lacks what this lesson needs ({'; '.join(missing)}). "
            "Ask your instructor to add these resources, or unset RAY_ADDRESS to run on a local Ray."
        )


def _join(address: str, cpus: int, num_gpus: int | None, resources: dict[str, float] | None,
          kwargs: dict[str, Any], notes: list[str]) -> Any:
    import ray

    needed = {"CPU": float(cpus), **({"GPU": float(num_gpus)} if num_gpus else {}), **(resources or {})}
    ignored = sorted(set(kwargs) - JOIN_KWARGS)
    if ignored:
        notes.append(f"Joined an existing cluster, so these settings were ignored: {', '.join(ignored)}.")
    try:
        context = ray.init(address=address, **{k: v for k, v in kwargs.items() if k in JOIN_KWARGS})
    except Exception as error:  # ray raises several types here; all mean "cannot connect"
        raise CourseSetupError(
            f"Could not connect to the Ray cluster at RAY_ADDRESS={address!r}: {error}. "
            "Check the address, and that RAY_AUTH_MODE=token and the cluster's token are set "
            "(see the README's 'Workshops' section)."
        ) from None
    try:
        _check_resources(ray.cluster_resources(), needed, address)
    except CourseSetupError:
        ray.shutdown()
        raise
    return context


def start(
    num_cpus: int = 4,
    num_gpus: int | None = None,
    resources: dict[str, float] | None = None,
    warm: bool = True,
    dashboard: bool | None = None,
    **init_kwargs: Any,
) -> Session:
    """Start (or join) Ray for a lesson and return a :class:`Session` describing it.

    ``num_cpus`` is the number of *logical* CPUs the lesson's exercises assume;
    it may exceed the machine's cores because most course tasks sleep.
    ``COURSE_NUM_CPUS`` overrides it. ``num_gpus`` and ``resources`` declare
    (possibly pretend) GPUs and custom resources on a local Ray; on an existing
    cluster they are only *required*. Calling ``start`` again while Ray is up
    returns the same session.
    """
    global _current
    from . import hooks, plots

    _quiet_environment()
    import ray

    hooks.install()
    hooks.watch_cells()
    plots.load_inline()
    if ray.is_initialized() and _current is not None:
        return _current
    if num_cpus < 1:
        raise CourseSetupError(f"num_cpus must be at least 1, got {num_cpus}")
    _no_auto_start()
    cpus = _env_int("COURSE_NUM_CPUS") or num_cpus
    store_mb = _env_int("COURSE_OBJECT_STORE_MB")
    if dashboard is None:
        dashboard = os.environ.get("COURSE_DASHBOARD", "1") != "0"
    address = os.environ.get("RAY_ADDRESS", "").strip()
    kwargs: dict[str, Any] = dict(logging_level=logging.ERROR, **init_kwargs)
    notes: list[str] = []
    status = _Status()
    try:
        if address:
            status.say(f"Joining the Ray cluster at {address}...")
            context = _join(address, cpus, num_gpus, resources, kwargs, notes)
            warm_count = min(cpus, int(ray.cluster_resources().get("CPU", 0)))
            warmed = _warm_up(warm_count, say=status.say) if warm and warm_count else 0
        else:
            # address="local" always starts a new Ray: a bare ray.init() would join (or wait
            # forever for) whatever cluster /tmp/ray/ray_current_cluster names.
            clear_stale_cluster_file()
            kwargs.update(address="local", num_cpus=cpus, include_dashboard=dashboard)
            if num_gpus is not None:
                kwargs["num_gpus"] = num_gpus
            if resources:
                kwargs["resources"] = dict(resources)
            if store_mb:
                kwargs["object_store_memory"] = store_mb * 1024 * 1024
            context, warmed = _start_local(kwargs, warm, status.say, notes)
            warm_count = cpus
    finally:
        status.clear()
    if warm and warmed < warm_count:
        notes.append(f"Only {warmed} of {warm_count} workers started in time: the machine is busy.")
    _current = Session(
        address=getattr(context, "address_info", {}).get("address", address or "local"),
        connected_to_existing=bool(address),
        resources=dict(ray.cluster_resources()),
        dashboard_url=dashboard_link(getattr(context, "dashboard_url", None)),
        warm_workers=warmed,
        notes=notes,
    )
    return _current


def dashboard_link(url: str | None) -> str | None:
    """The dashboard's address as this learner can open it (always ending in ``/``).

    Behind JupyterHub or Binder the browser cannot reach 127.0.0.1 on the
    server, so we point at jupyter-server-proxy's ``<prefix>proxy/<port>/``
    (without the final slash that page stays blank).
    """
    if not url:
        return None
    port = url.rstrip("/").rsplit(":", 1)[-1]
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix and port.isdigit():
        return f"{prefix.rstrip('/')}/proxy/{port}/"
    url = url if url.startswith("http") else f"http://{url}"
    return url.rstrip("/") + "/"


def stop() -> None:
    """Shut Ray down (only the Ray this kernel started or joined; never other people's)."""
    global _current
    import ray

    _current = None
    if ray.is_initialized():
        ray.shutdown()
