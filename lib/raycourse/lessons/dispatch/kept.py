"""The actors a lesson keeps between runs, and starting actors on a busy machine.

Starting an actor costs about a second on a small machine (many seconds on a loaded one), so the
course's own workers and bookkeeping actors (dispatcher, proxy, collector) are made once per Ray
session and reset for the next run. Workers reserve one CPU each; :func:`release_workers` ends the
kept ones when another run needs their CPUs. :func:`error_text` turns what an actor raised into one
readable line.
"""
from __future__ import annotations

import os
import time
from typing import Any, Mapping

from .actors import PullWorker

_REMOTE: dict[Any, Any] = {}
_KEPT: dict[str, Any] = {"session": None, "workers": {}, "helpers": {}, "next_id": 0}
READY_TIMEOUT = 240.0  # seconds for new actors to start: a loaded two-core machine starts about one a second


class RunError(RuntimeError):
    """The run could not start: a worker or dispatcher could not be created (its constructor raised), or no CPUs."""


def actor_class(cls: type, **options: Any) -> Any:
    """One Ray actor class per (class, options), made once: ray.remote on every call would re-register it."""
    import ray

    key = (cls, tuple(sorted(options.items())))
    if key not in _REMOTE:
        _REMOTE[key] = ray.remote(**options)(cls)
    return _REMOTE[key]


def pid_of(actor_self: Any) -> int:
    """Run inside an actor through ``__ray_call__``: its process id (and proof that it started)."""
    return os.getpid()


def kept_actors() -> dict[str, Any]:
    """The actors kept for the next run, forgotten when Ray was restarted since."""
    import ray

    context = ray.get_runtime_context()
    session = (context.get_job_id(), context.get_node_id())  # job ids restart at 01000000 in every new Ray
    if _KEPT["session"] != session:
        _KEPT.update(session=session, workers={}, helpers={}, next_id=0)
    return _KEPT


def error_text(error: BaseException) -> str:
    """``"TypeError: message"`` for what an actor raised, without Ray's wrapping and traceback."""
    cause = getattr(error, "cause", None)
    shown = cause if isinstance(cause, BaseException) else error
    text = str(shown).strip()
    if "raised in creation task" in text or "__init__" in text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        last = next((line for line in reversed(lines) if ":" in line and not line.startswith("File")), "")
        return last or type(shown).__name__
    first = (text.splitlines() or [""])[0]
    return f"{type(shown).__name__}: {first}" if first else type(shown).__name__


def helper(name: str, cls: type, *args: Any, **options: Any) -> Any:
    """A bookkeeping actor (``num_cpus=0``), reset and reused across runs instead of a new process each run."""
    import ray

    helpers = kept_actors()["helpers"]
    actor = helpers.get(name)
    if actor is not None:
        try:
            ray.get(actor.reset.remote(*args), timeout=READY_TIMEOUT)
            return actor
        except Exception:  # it died: make a new one
            pass
    actor = helpers[name] = actor_class(cls, num_cpus=0, **options).remote(*args)
    return actor


def wait_ready(actors: Mapping[Any, Any], what: str) -> dict[Any, int]:
    """Wait until every actor answers; their process ids. A constructor that raised becomes a :class:`RunError`."""
    import ray

    refs = {actor.__ray_call__.remote(pid_of): key for key, actor in actors.items()}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=READY_TIMEOUT)
    if len(ready) < len(refs):
        raise RunError(f"only {len(ready)} of {len(refs)} {what} started within {READY_TIMEOUT:.0f} s: are there "
                       "enough free CPUs? Each worker reserves one.")
    pids = {}
    for ref, key in refs.items():
        try:
            pids[key] = ray.get(ref)
        except Exception as error:
            raise RunError(f"creating {what.rstrip('s')} {key!r} raised {error_text(error)}") from None
    return pids


def release_workers() -> None:
    """End the course's kept workers (they reserve CPUs) so that other actors can start."""
    import ray

    for actor, _ in kept_actors()["workers"].values():
        ray.kill(actor, no_restart=True)
    kept_actors()["workers"].clear()


def make_room(cpus: float) -> None:
    """Free ``cpus`` CPUs by ending kept course workers if needed, and wait until Ray sees them free."""
    import ray

    if ray.available_resources().get("CPU", 0.0) >= cpus:
        return
    release_workers()
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0.0) < cpus and time.monotonic() < deadline:
        time.sleep(0.2)


def course_workers(count: int) -> dict[int, tuple[Any, int]]:
    """``count`` of the course's kept workers (worker id -> (actor, pid)), started or replaced as needed."""
    import ray

    kept = kept_actors()
    workers = kept["workers"]
    if workers:
        refs = {}
        for wid, (actor, _) in list(workers.items()):
            try:
                refs[actor.__ray_call__.remote(pid_of)] = wid
            except Exception:  # a handle from an earlier Ray (restarted since): Ray refuses it at once
                workers.pop(wid)
        ray.wait(list(refs), num_returns=len(refs), timeout=30)
        for ref, wid in refs.items():
            try:
                ray.get(ref, timeout=0)
            except Exception:  # dead or unresponsive: start another one instead
                ray.kill(workers.pop(wid)[0], no_restart=True)
    missing = count - len(workers)
    if missing > 0:
        new = {}
        for _ in range(missing):
            wid, kept["next_id"] = kept["next_id"], kept["next_id"] + 1
            new[wid] = actor_class(PullWorker, num_cpus=1).remote(wid)
        pids = wait_ready(new, "workers")
        workers.update({wid: (new[wid], pids[wid]) for wid in new})
    return dict(list(workers.items())[:count])
