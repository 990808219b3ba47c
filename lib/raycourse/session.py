"""Start and stop Ray for a lesson: one call, quiet, idempotent, warm.

Why a helper instead of a bare ``ray.init()`` in every notebook:

* **Quiet.** Ray prints timestamped log lines and warnings; in a notebook they
  land in cell outputs and change on every run. We start Ray with
  ``logging_level=ERROR`` and set ``RAY_AUTH_MODE=token`` (which keeps token
  authentication on and silences the warning that it is on).
* **Warm.** Ray starts worker processes lazily, about one second each and two at
  a time on a small machine. A learner's correct parallel code would then run
  half-serially on its first try, and a fair check could not tell. We run a
  throw-away task on every CPU slot before the first graded cell.
* **Idempotent.** Re-running the set-up cell, or Run All twice, must not fail.
* **Classrooms.** With ``RAY_ADDRESS`` set we join that cluster instead of
  starting one, and we check it has what the lesson needs.
* **Small machines.** ``COURSE_NUM_CPUS`` overrides the number of logical CPUs
  a lesson asks for; ``COURSE_OBJECT_STORE_MB`` caps the object store (Binder).
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any



def _ray_temp_dir() -> Path:
    """Where Ray keeps ``ray_current_cluster``: the same lookup Ray itself does."""
    base = os.environ.get("RAY_TMPDIR") or (os.environ.get("TMPDIR") if sys.platform.startswith("linux") else None)
    return Path(base or "/tmp") / "ray"


# ray.init() arguments that still make sense when joining an existing cluster;
# the others (num_cpus, object_store_memory, ...) describe a cluster we start.
JOIN_KWARGS = {"runtime_env", "namespace", "log_to_driver", "logging_level", "logging_format"}


class CourseSetupError(RuntimeError):
    """Raised, with a message meant for a learner, when Ray cannot be started as the lesson needs."""


@dataclass
class Session:
    """What :func:`start` did, for display in the set-up cell."""

    address: str
    connected_to_existing: bool
    resources: dict[str, float]
    dashboard_url: str | None
    warm_workers: int
    notes: list[str] = field(default_factory=list)

    def _lines(self) -> list[str]:
        where = f"connected to the cluster at {self.address}" if self.connected_to_existing else "started a local Ray"
        cpus = self.resources.get("CPU", 0)
        lines = [f"Ray is ready: {where}, {cpus:g} CPUs, {self.warm_workers} warm workers."]
        if self.dashboard_url:
            lines.append(f"Dashboard: {self.dashboard_url}")
        return lines + self.notes

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        import html

        return "<br>".join(html.escape(line) for line in self._lines())


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


def _quiet_environment() -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    # Deduplicated "repeated Nx across cluster" lines are timestamp-free, keep them;
    # but never let Ray ask for usage stats on stdout.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    for name in ("ray", "ray.data", "ray.tune", "ray.serve"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _warm_up(workers: int, timeout: float = 60.0) -> int:
    """Make sure ``workers`` worker processes are up; return how many distinct ones ran."""
    import ray

    @ray.remote(num_cpus=1)
    def _warm() -> int:
        time.sleep(0.3)
        return os.getpid()

    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        refs = [_warm.remote() for _ in range(workers)]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=max(1.0, deadline - time.monotonic()))
        pids = set(ray.get(ready))
        seen |= pids
        if len(pids) >= workers:
            break
    return min(len(seen), workers)


def _children() -> list[Any]:
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _kill_new_children(before: set[int]) -> None:
    """Stop the processes this kernel spawned since ``before`` (only ours, never anyone else's)."""
    import psutil

    new = [p for p in _children() if p.pid not in before]
    for process in new:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(new, timeout=10)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass


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


def _init_local(kwargs: dict[str, Any], attempts: int = 2) -> Any:
    """``ray.init`` for a new local Ray, retried once: on a very busy machine Ray's
    own 30 s start-up wait can expire while its helper processes are still starting."""
    import ray

    for attempt in range(1, attempts + 1):
        before = {p.pid for p in _children()}
        try:
            return ray.init(**kwargs)
        except Exception as error:  # Ray raises a bare Exception for this
            if "timed out during startup" not in str(error):
                raise
            ray.shutdown()
            _kill_new_children(before)  # shutdown() does not stop what a half-started init spawned
            if attempt == attempts:
                raise CourseSetupError(
                    "Ray could not start in time because this machine is very busy. Close other heavy programs "
                    "(or other notebooks running Ray) and run this cell again."
                ) from None
    raise AssertionError("unreachable")


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
    import ray

    if ray.is_initialized() and _current is not None:
        return _current
    if num_cpus < 1:
        raise CourseSetupError(f"num_cpus must be at least 1, got {num_cpus}")
    _quiet_environment()
    _no_auto_start()
    cpus = _env_int("COURSE_NUM_CPUS") or num_cpus
    store_mb = _env_int("COURSE_OBJECT_STORE_MB")
    if dashboard is None:
        dashboard = os.environ.get("COURSE_DASHBOARD", "1") != "0"
    address = os.environ.get("RAY_ADDRESS", "").strip()
    kwargs: dict[str, Any] = dict(logging_level=logging.ERROR, **init_kwargs)
    notes: list[str] = []
    if address:
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
        available = ray.cluster_resources()
        try:
            _check_resources(available, needed, address)
        except CourseSetupError:
            ray.shutdown()
            raise
        warm_count = min(cpus, int(available.get("CPU", 0)))
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
        context = _init_local(kwargs)
        warm_count = cpus
    warmed = _warm_up(warm_count) if warm and warm_count else 0
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
    """The dashboard's address as this learner can open it.

    Behind JupyterHub or Binder the browser cannot reach 127.0.0.1 on the
    server, so we point at jupyter-server-proxy's ``<prefix>proxy/<port>/``.
    """
    if not url:
        return None
    port = url.rsplit(":", 1)[-1].strip("/")
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix and port.isdigit():
        return f"{prefix.rstrip('/')}/proxy/{port}/"
    return url if url.startswith("http") else f"http://{url}"


def stop() -> None:
    """Shut Ray down (only the Ray this kernel started or joined; never other people's)."""
    global _current
    import ray

    _current = None
    if ray.is_initialized():
        ray.shutdown()
