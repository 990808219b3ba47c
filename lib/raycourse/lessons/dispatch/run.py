"""Run a workload the pull-based way, watch it, and report what happened (lesson 09 and its checks).

:func:`run_pull` starts the workers (yours, an actor class with ``run``, or
the course's :class:`~.actors.PullWorker`), a dispatcher (yours behind a
:class:`~.actors.DispatcherProxy`, or the course's leasing one) and a sink,
starts every worker's loop, and polls with a progress bar until the run ends,
one of these ways:

* ``finished``: every loop returned (the normal end);
* ``supervisor returned``: your ``supervise`` function returned;
* ``ignored DONE``: a worker asked again after it was told DONE;
* ``stalled``: all results are in but some loop (or the supervisor) keeps running;
* ``runaway``: far more results than tasks arrived (a task handed out again and again);
* ``timeout``.

It never hangs: loops still running at the end are stopped (the dispatcher and
sink raise :class:`~.actors.RunStopped`) or killed. The :class:`RunReport`
holds the evidence: results, deliveries, the dispatcher's books, each task's
interval. Starting an actor costs about a second on a small machine, so the
course's own workers and bookkeeping actors are kept for the next run; yours
are made fresh for every run (your class may have changed) and ended after it.
"""
from __future__ import annotations

import ctypes
import random
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from ... import record
from .actors import Dispatcher, DispatcherProxy, PullWorker, Task
from .kept import (READY_TIMEOUT, actor_class, course_workers, error_text, helper, kept_actors, make_room, pid_of,
                   wait_ready)
from .measure import Slowed, timed
from .report import RunReport
from .sinks import Collector


def _victim(tasks: Sequence[Task], kill: Any, rng: random.Random) -> list[Any]:
    """Task ids to kill the holder of, first choice first: the one asked for, or long tasks early in the queue."""
    if kill is True:
        numbers = [t.payload for t in tasks if isinstance(t.payload, (int, float))]
        if len(numbers) == len(tasks) and tasks:
            cut = sorted(numbers)[int(0.75 * (len(numbers) - 1))]
            early = [t.id for t in tasks[: max(1, int(0.75 * len(tasks)))] if t.payload >= cut]
        else:
            early = [t.id for t in tasks[: max(1, len(tasks) // 2)]]
        rng.shuffle(early)
        return early
    if kill is None or kill is False:
        return []
    if kill not in {t.id for t in tasks}:
        raise ValueError(f"kill should be True or the id of a task to kill the worker of, got {kill!r}")
    return [kill]


def _stop_thread(thread: threading.Thread) -> None:
    """Raise SystemExit in a supervisor thread still running after the run, so it stops using the kernel."""
    if thread.is_alive() and thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit))
        thread.join(2)


def run_pull(payloads: Sequence[Any], work: Callable[[Any], Any], *, worker: Any = None, dispatcher: Any = None,
             workers: int = 4, sink: Any = None, supervise: Callable | None = None, kill: Any = False,
             kill_delay: float | None = None, worker_ids: Sequence[Any] | None = None,
             task_ids: Sequence[Any] | None = None, slow: Mapping[int, float] | None = None,
             delays: Mapping[Any, float] | None = None, timeout: float = 120.0, progress: bool = True,
             desc: str = "tasks", seed: int | None = None) -> RunReport:
    """Run ``work`` on every payload with pull workers; return a :class:`RunReport`.

    ``worker``: your worker actor class (made as ``Worker(worker_id)``, run as
    ``run(dispatcher, collector, work)``); default: the course's. ``dispatcher``:
    your dispatcher actor class (made with the list of :class:`Task` s);
    default: the course's leasing one. ``sink``: an actor with ``add`` (e.g. a
    :class:`FilePickler`); default: a collector. ``supervise(loops, dispatcher,
    relaunch)``: your driver loop, run in a thread while this function watches.
    ``kill=True`` kills the worker holding a randomly chosen long task (or the
    task id given) ``kill_delay`` seconds after it took it.

    For checks: ``worker_ids``, ``task_ids``, ``slow`` (worker index -> how many
    times slower), ``delays`` (task id -> seconds the sink takes to store it).
    """
    import ray

    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers should be a positive whole number, got {workers!r}")
    if kill and dispatcher is not None:
        raise ValueError("kill needs the course's dispatcher (it leases tasks): leave dispatcher=None")
    ids = list(task_ids) if task_ids is not None else list(range(len(payloads)))
    if len(ids) != len(payloads) or len(set(ids)) != len(ids):
        raise ValueError("task_ids should give one distinct id per payload")
    tasks = [Task(i, p) for i, p in zip(ids, payloads)]
    report = RunReport(len(tasks), workers, tasks=tasks,
                       used=dict(worker=worker, dispatcher=dispatcher, supervise=supervise, work=work))
    rng = random.Random(seed)
    with record.paused():
        _run(report, ray, work, worker, dispatcher, sink, supervise, _victim(tasks, kill, rng),
             kill_delay if kill_delay is not None else rng.uniform(0.05, 0.25), worker_ids, slow or {},
             dict(delays or {}), timeout, progress, desc)
    return report


def _run(report: RunReport, ray: Any, work: Callable, worker: Any, dispatcher: Any, sink: Any, supervise: Any,
         victims: list[Any], kill_delay: float, worker_ids: Sequence[Any] | None, slow: Mapping[int, float],
         delays: dict[Any, float], timeout: float, progress: bool, desc: str) -> None:
    from tqdm.auto import tqdm

    started, tasks, n = time.monotonic(), report.tasks, report.workers
    if worker is None:
        crew = course_workers(n)
        ids = list(worker_ids) if worker_ids is not None else list(crew)
        team = {wid: crew_actor for wid, (crew_actor, _) in zip(ids, crew.values())}
        report.pids = {wid: pid for wid, (_, pid) in zip(ids, crew.values())}
        kept_as = dict(zip(ids, crew))  # this run's worker id -> the id the kept worker was made with
    else:
        ids, kept_as = list(worker_ids) if worker_ids is not None else list(range(n)), {}
        make_room(n)
        team = {wid: worker.options(num_cpus=1).remote(wid) for wid in ids}
        report.pids = wait_ready(team, "workers")
    report.worker_ids = list(ids)
    if dispatcher is None:
        disp = helper("dispatcher", Dispatcher, tasks)
    else:
        inner = dispatcher.options(num_cpus=0).remote(tasks)
        wait_ready({"TaskDispatcher": inner}, "dispatchers")
        disp = helper("proxy", DispatcherProxy, inner, tasks, 30.0)
    collector = sink if sink is not None else helper("collector", Collector, max_concurrency=32)
    ray.get(collector.attach.remote(disp, delays))
    rtt = max(_round_trip(ray, disp) for _ in range(3))
    grace = min(30.0, max(10.0, 40 * rtt))  # only a wrong answer ever waits this long
    base = timed(work)
    jobs = {wid: timed(Slowed(work, slow[k])) if k in slow else base for k, wid in enumerate(ids)}
    loops: dict[Any, Any] = {}
    for wid, actor in team.items():
        extra = () if worker is not None else (wid,)
        loops[actor.run.remote(disp, collector, jobs[wid], *extra)] = wid
    report.loop_tasks = {ref.task_id().hex(): wid for ref, wid in loops.items()}
    report.born = {task: time.time() for task in report.loop_tasks}
    lock, outcome, starting = threading.Lock(), {}, []  # starting: pings of relaunched workers not yet up

    def relaunch() -> tuple[Any, Any]:
        with record.paused(), lock:
            dead = _dead(ray, loops)
            if len(report.relaunched) >= len(dead):
                raise RuntimeError(f"relaunch() was called {len(report.relaunched) + 1} times, but "
                                   f"{len(dead)} worker(s) died: relaunch once per worker whose loop raised "
                                   "ActorDiedError")
            wid = max([w for w in report.pids if isinstance(w, int)] + [-1]) + 1
            if worker is None:
                kept = kept_actors()
                wid = max(wid, kept["next_id"])
                kept["next_id"] = wid + 1
                actor = team[wid] = actor_class(PullWorker, num_cpus=1).remote(wid)
                kept["workers"][wid], kept_as[wid] = (actor, 0), wid
                ref = actor.run.remote(disp, collector, base, wid)
            else:
                actor = team[wid] = worker.options(num_cpus=1).remote(wid)
                ref = actor.run.remote(disp, collector, base)
            starting.append((actor.__ray_call__.remote(pid_of), time.monotonic()))
            report.pids[wid] = 0
            loops[ref] = wid
            report.loop_tasks[ref.task_id().hex()] = wid
            report.born[ref.task_id().hex()] = time.time()
            report.relaunched.append(wid)
        return ref, wid

    def run_supervisor() -> None:
        try:
            supervise(dict(loops), disp, relaunch)
            outcome["supervisor"] = "returned"
        except Exception as error:  # the learner's driver code: report, never crash the run
            outcome["supervisor"] = f"raised {error_text(error)}"

    thread = threading.Thread(target=run_supervisor, daemon=True, name="raycourse-supervise") if supervise else None
    if thread:
        thread.start()
    bar = tqdm(total=len(tasks), desc=desc, disable=not progress, leave=True)
    complete_since, watch_since, settled = None, None, time.monotonic()
    while True:
        with lock:
            refs, pings = list(loops), list(starting)
        _, running = ray.wait(refs, num_returns=len(refs), timeout=0.05)
        stored, delivered = ray.get(collector.progress.remote())
        bar.update(stored - bar.n)
        now = time.monotonic()
        if pings:  # a relaunched worker still starting (seconds on a busy machine) is not a stalled run
            up, _ = ray.wait([p for p, _ in pings], num_returns=len(pings), timeout=0)
            with lock:
                starting[:] = [(p, t) for p, t in starting if p not in up and now - t < READY_TIMEOUT]
            settled, complete_since = now, None
        if victims and report.killed is None:
            where, holder = ray.get(disp.where.remote(victims[0]))
            if where == "leased":
                watch_since = watch_since or now
                if now - watch_since >= kill_delay and holder in team:
                    ray.kill(team[holder], no_restart=True)
                    kept_actors()["workers"].pop(kept_as.get(holder), None)
                    report.killed, report.kill_time = (holder, victims[0]), time.time()
            elif where != "queued":
                victims.pop(0)  # finished before we could kill its worker: try the next one
                watch_since = None
        if ray.get(disp.told_done_twice.remote()):
            report.ended = "ignored DONE"
            break
        if thread is not None and not thread.is_alive():
            report.ended = "supervisor returned"
            with lock:
                refs = list(loops)
            _, running = ray.wait(refs, num_returns=len(refs), timeout=0)  # again: it may have relaunched since
            report.running_at_return = sorted((loops[r] for r in running), key=repr)
            break
        if thread is None and not running:
            report.ended = "finished"
            break
        if delivered >= 2 * len(tasks) + n:
            report.ended = "runaway"
            break
        complete_since = complete_since or (now if stored >= len(tasks) else None)
        if complete_since and now - complete_since > grace:
            report.ended = "stalled"
            break
        if now - settled > timeout:
            report.ended = "timeout"
            break
    if report.ended == "finished" and sink is None:
        _drain(ray, collector, grace)
    bar.close()
    report.supervisor = outcome.get("supervisor", "still running" if thread else None)
    report.results = ray.get(collector.results.remote()) if sink is None else _sink_results(ray, collector)
    report.deliveries = ray.get(collector.deliveries.remote())
    report.books = ray.get(disp.books.remote())
    _finish_loops(report, loops, disp, collector, team, kept_as, grace)
    if thread is not None:
        _stop_thread(thread)
    if worker is not None:
        for actor in team.values():
            ray.kill(actor, no_restart=True)
    if dispatcher is not None:
        ray.kill(inner, no_restart=True)
    report.seconds = time.monotonic() - started


def _dead(ray: Any, loops: Mapping[Any, Any]) -> list[Any]:
    """Worker ids whose loop ended because the worker died."""
    ready, _ = ray.wait(list(loops), num_returns=len(loops), timeout=0)
    dead = []
    for ref in ready:
        try:
            ray.get(ref, timeout=0)
        except ray.exceptions.RayActorError:
            dead.append(loops[ref])
        except Exception:  # the loop raised: its worker is alive
            pass
    return dead


def _round_trip(ray: Any, actor: Any) -> float:
    began = time.monotonic()
    ray.get(actor.ping.remote())
    return time.monotonic() - began


def _sink_results(ray: Any, sink: Any) -> dict[Any, Any]:
    try:
        return ray.get(sink.results.remote())
    except Exception:  # a sink without results(): the run's file or store is the learner's to read
        return {}


def _finish_loops(report: RunReport, loops: dict[Any, Any], disp: Any, sink: Any, team: dict[Any, Any],
                  kept_as: dict[Any, Any], grace: float) -> None:
    """Record how each loop ended; stop (then kill) the ones still running so nothing outlives the run."""
    import ray

    refs = list(loops)
    _, running = ray.wait(refs, num_returns=len(refs), timeout=0)
    if running:
        disp.stop.remote()
        sink.stop.remote()
        _, still = ray.wait(running, num_returns=len(running), timeout=grace)
        for ref in still:
            wid = loops[ref]
            if wid in team:
                ray.kill(team[wid], no_restart=True)
            kept_actors()["workers"].pop(kept_as.get(wid), None)
            report.loops[wid] = "running"
    for ref, wid in loops.items():
        if wid in report.loops:
            continue
        try:
            report.loops[wid] = f"returned {ray.get(ref, timeout=grace)!r}"
        except ray.exceptions.RayActorError:
            report.loops[wid] = "killed" if report.killed and report.killed[0] == wid else "died"
        except Exception as error:  # the loop raised
            text = error_text(error)
            report.loops[wid] = "stopped" if ref in running and "RunStopped" in text else f"error: {text}"


def _drain(ray: Any, collector: Any, grace: float) -> None:
    """Let ``add`` calls still storing finish (a worker that did not wait for them has already returned)."""
    deadline, quiet_since, last = time.monotonic() + grace, time.monotonic(), None
    while time.monotonic() < deadline:
        state = (ray.get(collector.busy.remote()), *ray.get(collector.progress.remote()))
        if state != last:
            quiet_since, last = time.monotonic(), state
        elif state[0] == 0 and time.monotonic() - quiet_since > 0.3:
            return
        time.sleep(0.05)
