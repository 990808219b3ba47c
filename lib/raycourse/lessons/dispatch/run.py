"""Run a workload the pull-based way, watch it, and report what happened (used by lesson 08 and its checks).

:class:`Workers` keeps a group of :class:`~raycourse.dispatch.PullWorker`
actors alive across runs: starting an actor costs about a second on a small
machine, so a lesson starts them once. :func:`run_pull` creates a dispatcher,
a monitor and (unless given) a collector, starts the loops, and polls the
monitor with a progress bar until the run ends, one of these ways:

* ``finished``: every loop returned (the normal end);
* ``supervisor returned``: your ``supervise`` function returned;
* ``stalled``: all results are in but some loops keep running (no end signal);
* ``runaway``: far more results than tasks arrived (a task handed out again and again);
* ``timeout``.

It never hangs: loops still running at the end are stopped (the dispatcher and
sink raise :class:`~raycourse.dispatch.RunStopped`) or, failing that, killed
and replaced. The :class:`RunReport` holds the evidence the checks judge.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .actors import (Collector, Dispatcher, Efficiency, PullWorker, Task, TaskMonitor, Timed, efficiency, spans,
                       timed)
from ...timing import Interval

_REMOTE: dict[Any, Any] = {}


def _remote(cls: type, **options: Any) -> Any:
    """One Ray actor class per (class, options), made once: ray.remote on every call would re-register it."""
    import ray

    key = (cls, tuple(sorted(options.items())))
    if key not in _REMOTE:
        _REMOTE[key] = ray.remote(**options)(cls)
    return _REMOTE[key]


def _error_text(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    return str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__


class Workers:
    """A group of pull-worker actors, each reserving ``num_cpus`` (default one CPU slot)."""

    def __init__(self, count: int, num_cpus: float = 1.0, ready_timeout: float = 180.0) -> None:
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive whole number of workers, got {count!r}")
        self.count, self.num_cpus, self.ready_timeout = count, num_cpus, ready_timeout
        self.actors: dict[int, Any] = {}
        self.helpers: dict[str, Any] = {}
        self.next_id = 0
        self.heal()

    def helper(self, name: str, cls: type, *args: Any) -> Any:
        """A bookkeeping actor (``num_cpus=0``) kept for the next run and reset, instead of a new process each run."""
        import ray

        actor = self.helpers.get(name)
        if actor is not None:
            try:
                ray.get(actor.reset.remote(*args), timeout=self.ready_timeout)
                return actor
            except Exception:  # it died: make a new one
                pass
        actor = self.helpers[name] = _remote(cls, num_cpus=0).remote(*args)
        return actor

    def _start(self) -> int:
        worker_id, self.next_id = self.next_id, self.next_id + 1
        self.actors[worker_id] = _remote(PullWorker, num_cpus=self.num_cpus).remote(worker_id)
        return worker_id

    def relaunch(self, dead_id: int | None = None) -> tuple[int, Any]:
        """Forget ``dead_id`` (if given) and start a fresh worker with a new id; returns (id, actor)."""
        self.actors.pop(dead_id, None)
        worker_id = self._start()
        return worker_id, self.actors[worker_id]

    def kill(self, worker_id: int) -> None:
        import ray

        actor = self.actors.pop(worker_id, None)
        if actor is not None:
            ray.kill(actor, no_restart=True)

    def heal(self) -> list[int]:
        """Replace dead workers and top the group up to ``count``; wait until all answer. Returns new ids."""
        import ray

        pings = {actor.ping.remote(): worker_id for worker_id, actor in self.actors.items()}
        if pings:
            ray.wait(list(pings), num_returns=len(pings), timeout=self.ready_timeout)
        for ref, worker_id in pings.items():
            try:
                ray.get(ref, timeout=0)
            except Exception:  # dead (RayActorError) or unresponsive: start another one instead
                self.kill(worker_id)
        new = [self._start() for _ in range(self.count - len(self.actors))]
        if new:
            refs = [self.actors[i].ping.remote() for i in new]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.ready_timeout)
            if len(ready) < len(refs):
                raise RuntimeError(f"only {len(ready)} of {len(refs)} workers started within {self.ready_timeout:.0f} s: "
                                   "are there enough CPUs? Each worker reserves num_cpus; helpers need num_cpus=0.")
        return new

    def items(self) -> list[tuple[int, Any]]:
        return list(self.actors.items())

    def __len__(self) -> int:
        return len(self.actors)

    def __repr__(self) -> str:
        return f"Workers({len(self.actors)} pull workers, ids {sorted(self.actors)})"


@dataclass
class RunReport:
    """What a pull run did: results, how often each was delivered, how each loop ended, and when tasks ran."""

    total: int
    workers: int
    ended: str
    seconds: float
    results: dict[int, Any]
    deliveries: dict[int, int]
    loops: dict[int, str]  # worker id -> "returned 4", "error: ...", "killed", "stopped", "running"
    killed: tuple[int, int] | None = None  # (worker id, task id) killed on purpose
    requeued: int | None = None
    relaunched: list[int] = field(default_factory=list)
    supervisor: str | None = None  # "returned", "raised ...", "still running"
    running_at_return: list[int] = field(default_factory=list)
    used: dict[str, Any] = field(default_factory=dict, repr=False)

    def values(self) -> dict[int, Any]:
        return {i: r.value if isinstance(r, Timed) else r for i, r in sorted(self.results.items())}

    def missing(self) -> list[int]:
        return [i for i in range(self.total) if i not in self.results]

    def duplicates(self) -> dict[int, int]:
        return {i: n for i, n in sorted(self.deliveries.items()) if n > 1}

    def errors(self) -> dict[int, str]:
        return {w: text[len("error: "):] for w, text in self.loops.items() if text.startswith("error: ")}

    def intervals(self, name: str = "task") -> list[Interval]:
        return spans(sorted(self.results.items()), name)

    def efficiency(self, steady: bool = False) -> Efficiency:
        return efficiency(self.intervals(), self.workers, steady)

    def __str__(self) -> str:
        e = self.efficiency()
        return (f"{len(self.results)}/{self.total} results ({sum(self.deliveries.values())} deliveries) on {self.workers} "
                f"workers, ended: {self.ended}; makespan {e.makespan:.2f} s, ideal {e.ideal:.2f} s, "
                f"efficiency {e.ratio:.2f}")


def _make_dispatcher(dispatcher: Any, payloads: list[Any], workers: Workers) -> Any:
    import ray

    tasks = [Task(i, p) for i, p in enumerate(payloads)]
    if dispatcher is None:
        return workers.helper("dispatcher", Dispatcher, payloads)
    if isinstance(dispatcher, type):
        return _remote(dispatcher, num_cpus=0).remote(tasks)
    if isinstance(dispatcher, ray.actor.ActorClass):
        return dispatcher.options(num_cpus=0).remote(tasks)
    raise TypeError(f"dispatcher should be a class (we start it as an actor), got {type(dispatcher).__name__}")


def run_pull(payloads: Sequence[Any], work: Callable[[Any], Any], workers: Workers, *, dispatcher: Any = None,
             loop: Callable | None = None, sink: Any = None, supervise: Callable | None = None,
             kill: str | None = None, timeout: float = 120.0, grace: float = 3.0, progress: bool = True,
             desc: str = "tasks") -> RunReport:
    """Run ``work`` on every payload with the pull workers; return a :class:`RunReport`.

    ``dispatcher``: a class taking the list of :class:`Task` s (default: the
    leasing :class:`Dispatcher`). ``loop``: the workers' loop (default
    :func:`pull_loop`). ``sink``: an actor with ``add``/``results`` (default: a
    new :class:`Collector`). ``supervise(loops, dispatcher, relaunch)``: your
    driver loop, run in a thread while this function shows progress. ``kill="last"``:
    kill the worker running the last unfinished task once every other loop ended.
    """
    import ray
    from tqdm.auto import tqdm

    if not isinstance(workers, Workers):
        raise TypeError(f"workers should be a dispatch.Workers group, got {type(workers).__name__}")
    if kill not in (None, "last"):
        raise ValueError(f"kill should be None or 'last', got {kill!r}")
    payloads, started = list(payloads), time.monotonic()
    workers.heal()
    monitor = workers.helper("monitor", TaskMonitor, len(payloads))
    disp = _make_dispatcher(dispatcher, payloads, workers)
    sink = sink if sink is not None else workers.helper("collector", Collector)
    ray.get(sink.attach.remote(monitor))
    work_t = timed(work)
    loops = {actor.run.remote(disp, sink, work_t, loop): wid for wid, actor in workers.items()}
    first = set(loops)
    report = RunReport(len(payloads), len(workers), "", 0.0, {}, {}, {},
                       used=dict(loop=loop, dispatcher=dispatcher, supervise=supervise, work=work, payloads=payloads))
    lock = threading.Lock()

    def relaunch() -> tuple[Any, int]:
        with lock:
            wid, actor = workers.relaunch()
            ref = actor.run.remote(disp, sink, work_t, loop)
            loops[ref] = wid
            report.relaunched.append(wid)
        return ref, wid

    outcome: dict[str, str] = {}

    def run_supervisor() -> None:
        try:
            supervise(dict(loops), disp, relaunch)
            outcome["supervisor"] = "returned"
        except Exception as error:  # the learner's driver code: report, never crash the run
            outcome["supervisor"] = f"raised {type(error).__name__}: {_error_text(error)}"

    thread = threading.Thread(target=run_supervisor, daemon=True) if supervise else None
    if thread:
        thread.start()
    bar = tqdm(total=len(payloads), desc=desc, disable=not progress, leave=True)
    complete_since = None
    while True:
        with lock:
            refs = list(loops)
        _, running = ray.wait(refs, num_returns=len(refs), timeout=0.1)
        progress_now = ray.get(monitor.progress.remote())
        bar.update(progress_now.done - bar.n)
        now = time.monotonic()
        if kill and report.killed is None and len(running) == 1 and running[0] in first:
            leased = ray.get(disp.leased.remote())
            wid = loops[running[0]]
            if wid in leased and not ray.get(disp.status.remote())["queued"]:
                workers.kill(wid)
                report.killed = (wid, leased[wid])
        if thread is not None and not thread.is_alive():
            report.ended = "supervisor returned"
            with lock:
                refs = list(loops)
            _, running = ray.wait(refs, num_returns=len(refs), timeout=0)  # again: it may have relaunched since
            report.running_at_return = sorted(loops[r] for r in running)
            break
        if thread is None and not running:
            report.ended = "finished"
            break
        if progress_now.delivered >= 2 * len(payloads) + len(workers):
            report.ended = "runaway"
            break
        complete_since = complete_since or (now if progress_now.done >= len(payloads) else None)
        if complete_since and now - complete_since > grace:
            report.ended = "stalled"
            break
        if now - started > timeout:
            report.ended = "timeout"
            break
    bar.close()
    report.supervisor = outcome.get("supervisor", "still running" if thread else None)
    report.results = ray.get(sink.results.remote())
    report.deliveries = ray.get(sink.deliveries.remote())
    if dispatcher is None:
        report.requeued = ray.get(disp.status.remote())["requeued"]
    _finish_loops(report, loops, disp, sink, workers, grace)
    report.seconds = time.monotonic() - started
    return report


def _finish_loops(report: RunReport, loops: dict[Any, int], disp: Any, sink: Any, workers: Workers, grace: float) -> None:
    """Record how each loop ended; stop (then kill) the ones still running so nothing outlives the run."""
    import ray

    refs = list(loops)
    _, running = ray.wait(refs, num_returns=len(refs), timeout=0)
    if running:
        for actor in (disp, sink):
            if hasattr(actor, "stop"):
                actor.stop.remote()
        _, still = ray.wait(running, num_returns=len(running), timeout=grace)
        for ref in still:
            workers.kill(loops[ref])
            report.loops[loops[ref]] = "running"
    for ref, wid in loops.items():
        if wid in report.loops:
            continue
        try:
            report.loops[wid] = f"returned {ray.get(ref, timeout=grace)!r}"
        except ray.exceptions.RayActorError:
            report.loops[wid] = "killed" if report.killed and report.killed[0] == wid else "died"
        except Exception as error:  # the learner's loop raised
            text = _error_text(error)
            report.loops[wid] = "stopped" if ref in running and "RunStopped" in text else f"error: {text}"
