"""Pull-based work distribution: workers ask a dispatcher for the next task, results go to a sink.

Why: when task durations vary a lot, handing work out in fixed batches or a
fixed rotation leaves workers idle while the slowest task of their share
finishes. If instead each worker *pulls* the next task the moment it is free,
the run takes little more than total work / number of workers.

The pieces, each a small Ray actor (all with ``num_cpus=0``: they only keep
books, and must not take a CPU slot from the workers):

* :class:`Dispatcher` hands out :class:`Task` s, then :data:`DONE`. It *leases*
  each task to the worker that took it, so the driver can give a dead worker's
  task back (:meth:`Dispatcher.requeue`).
* :class:`Collector` (in memory) or :class:`FilePickler` (a file) receive
  results; both ignore a second result for the same task, so a re-run task is
  stored once. They report to a :class:`TaskMonitor`, which the driver polls.
* :class:`PullWorker` actors run :func:`pull_loop`; :class:`Workers` keeps a
  group of them alive across runs (starting an actor costs about a second).

:func:`run_pull` wires them together, watches the run with a progress bar and
returns a :class:`RunReport` of what happened, including each task's interval
(:func:`timed`) from which :func:`efficiency` is computed.
"""
from __future__ import annotations

import functools
import heapq
import os
import pickle
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ...timing import Interval


class _Done:
    """The end-of-work signal. Pickles by name, so ``task is DONE`` holds in every process."""

    def __reduce__(self) -> str:
        return "DONE"

    def __repr__(self) -> str:
        return "DONE"


DONE = _Done()


class RunStopped(RuntimeError):
    """Raised to workers still calling a dispatcher or sink after the driver stopped the run."""


@dataclass(frozen=True)
class Task:
    id: int
    payload: Any


@dataclass(frozen=True)
class Timed:
    """A work function's return value with when and where it ran (seconds since the epoch, process id)."""

    value: Any
    start: float
    end: float
    worker: str


def timed(fn: Callable[[Any], Any]) -> Callable[[Any], Timed]:
    """Wrap ``fn`` so each call returns a :class:`Timed`: the evidence for idle time and efficiency.

    The wrapper is a plain function (same name as ``fn``), so it can become a
    task (``ray.remote(timed(fn))``) or be shipped to actors and pools.
    """
    if not callable(fn):
        raise TypeError(f"timed() needs a function, got {type(fn).__name__}")

    @functools.wraps(fn)
    def timed_call(payload: Any) -> Timed:
        start = time.time()
        value = fn(payload)
        return Timed(value, start, time.time(), str(os.getpid()))

    return timed_call


def sleep_units(units: float, unit: float = 0.1) -> float:
    """Dummy work of a known duration: sleep ``units * unit`` seconds, return ``units``."""
    time.sleep(units * unit)
    return units


def spans(timed_results: Iterable[tuple[Any, Any]], name: str = "task") -> list[Interval]:
    """Intervals from ``(task id, Timed)`` pairs, for :func:`efficiency` and ``plots.timeline``."""
    found = [Interval(name, str(i), t.worker, t.start, t.end) for i, t in timed_results if isinstance(t, Timed)]
    return sorted(found, key=lambda s: s.start)


@dataclass(frozen=True)
class Efficiency:
    makespan: float  # first start to last end, seconds
    ideal: float  # total recorded work / workers, seconds
    workers: int

    @property
    def ratio(self) -> float:
        return self.ideal / self.makespan if self.makespan > 0 else 0.0


def efficiency(intervals: Sequence[Interval], workers: int, steady: bool = False) -> Efficiency:
    """How close a run came to ideal, from intervals of that same run.

    Ideal is the *recorded* work divided by the workers: if the machine is busy
    and every task takes longer, the ideal grows with it, so the ratio measures
    idle time, not the speed of the machine. ``steady=True`` starts the clock
    when the last worker began its first task (and counts only work after it):
    workers that start late on a loaded machine are then not held against the
    way work was handed out, while idle workers at the end still are.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not intervals:
        return Efficiency(0.0, 0.0, workers)
    begin, end = min(s.start for s in intervals), max(s.end for s in intervals)
    if steady:
        firsts: dict[str, float] = {}
        for s in intervals:
            firsts[s.worker] = min(firsts.get(s.worker, s.start), s.start)
        begin = max(firsts.values()) if len(firsts) >= workers else begin
    work = sum(max(0.0, s.end - max(s.start, begin)) for s in intervals)
    return Efficiency(end - begin, work / workers, workers)


def predict(durations: Sequence[float], workers: int, strategy: str, chunksize: int = 1) -> float:
    """The makespan a strategy would reach with exact durations and no overhead.

    ``"greedy"``: each task goes to the first free worker (pull, plain tasks,
    ``map_unordered``). ``"rotation"``: chunk k goes to worker k mod workers
    (``Pool.map``, static round-robin). ``"batched"``: ``workers`` tasks, wait
    for all, repeat. ``"ordered"``: ``ActorPool.map``, where a worker is given
    new work only when its result is next in order.
    """
    d = list(durations)
    if strategy == "greedy":
        free = [0.0] * workers
        for x in d:
            heapq.heapreplace(free, free[0] + x)
        return max(free)
    if strategy == "rotation":
        load = [0.0] * workers
        for k, i in enumerate(range(0, len(d), chunksize)):
            load[k % workers] += sum(d[i:i + chunksize])
        return max(load)
    if strategy == "batched":
        return sum(max(d[i:i + workers]) for i in range(0, len(d), workers))
    if strategy == "ordered":
        finish, now = [x for x in d[:workers]], 0.0
        for k in range(len(d)):
            now = max(now, finish[k])  # the caller waits for result k, then frees its worker
            if k + workers < len(d):
                finish.append(now + d[k + workers])
        return now
    raise ValueError(f"unknown strategy {strategy!r}: use 'greedy', 'rotation', 'batched' or 'ordered'")


class Dispatcher:
    """Hands out tasks (``range(n)`` for a count, or an enumeration of inputs) with leases.

    ``next_task(worker_id)`` returns a :class:`Task` or :data:`DONE`. A worker
    asks only after it handed its previous result on, so asking also ends its
    previous lease. ``requeue(worker_id)`` puts a dead worker's task back.
    """

    def __init__(self, inputs: int | Iterable[Any]) -> None:
        if isinstance(inputs, bool) or not isinstance(inputs, int) and not hasattr(inputs, "__iter__"):
            raise TypeError(f"Dispatcher needs a number of tasks or an iterable of inputs, got {type(inputs).__name__}")
        items = range(inputs) if isinstance(inputs, int) else list(inputs)
        self.queue = deque(Task(i, x) for i, x in enumerate(items))
        self.total = len(self.queue)
        self.leases: dict[Any, Task] = {}
        self.handed = self.requeued = 0
        self.stopped = False

    def next_task(self, worker_id: Any) -> Task | _Done:
        if self.stopped:
            raise RunStopped("the run was stopped by the driver")
        self.leases.pop(worker_id, None)
        if not self.queue:
            return DONE
        task = self.queue.popleft()
        self.leases[worker_id] = task
        self.handed += 1
        return task

    def requeue(self, worker_id: Any) -> list[int]:
        """Give the task leased to ``worker_id`` (found dead) to the next worker who asks."""
        task = self.leases.pop(worker_id, None)
        if task is None:
            return []
        self.queue.appendleft(task)
        self.requeued += 1
        return [task.id]

    def leased(self) -> dict[Any, int]:
        return {w: t.id for w, t in self.leases.items()}

    def status(self) -> dict[str, int]:
        return dict(total=self.total, queued=len(self.queue), leased=len(self.leases), handed=self.handed,
                    requeued=self.requeued)

    def stop(self) -> None:
        self.stopped = True

    def reset(self, inputs: int | Iterable[Any]) -> None:
        """Start over with new inputs (reusing the actor saves starting a process)."""
        self.__init__(inputs)  # type: ignore[misc]


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    delivered: int  # every result received, duplicates included


class TaskMonitor:
    """Counts progress reported by the sinks; the driver polls it (cheap, never busy storing results)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.delivered = total, 0, 0

    def advance(self, new: int = 1, delivered: int = 1) -> None:
        self.done += new
        self.delivered += delivered

    def progress(self) -> Progress:
        return Progress(self.done, self.total, self.delivered)

    def reset(self, total: int) -> None:
        self.__init__(total)  # type: ignore[misc]


class _Sink:
    """What Collector and FilePickler share: dedup by task id, delivery counts, progress reports."""

    def __init__(self, monitor: Any = None) -> None:
        self.monitor, self.counts, self.stopped = monitor, {}, False

    def attach(self, monitor: Any) -> None:
        self.monitor = monitor

    def add(self, task_id: Any, result: Any) -> bool:
        """Store ``result`` unless this task's result is already stored; True if it was new."""
        if self.stopped:
            raise RunStopped("the run was stopped by the driver")
        new = task_id not in self.counts
        self.counts[task_id] = self.counts.get(task_id, 0) + 1
        if new:
            self._store(task_id, result)
        if self.monitor is not None:
            self.monitor.advance.remote(int(new), 1)
        return new

    def _store(self, task_id: Any, result: Any) -> None:
        raise NotImplementedError

    def deliveries(self) -> dict[Any, int]:
        return dict(self.counts)

    def stop(self) -> None:
        self.stopped = True

    def reset(self) -> None:
        """Forget every result (reusing the actor for another run)."""
        self.__init__(self.monitor)  # type: ignore[misc]


class Collector(_Sink):
    """Keeps results in memory: ``results()`` is ``{task id: result}``."""

    def __init__(self, monitor: Any = None) -> None:
        super().__init__(monitor)
        self.stored: dict[Any, Any] = {}

    def _store(self, task_id: Any, result: Any) -> None:
        self.stored[task_id] = result

    def results(self) -> dict[Any, Any]:
        return dict(self.stored)


class FilePickler(_Sink):
    """Appends each record to a file with pickle, flushed at once: a crash loses nothing already written.

    ``write(record)`` for any record; as a sink, ``add(task_id, result)``
    writes ``(task_id, result)``. ``close()`` closes the file and ends the
    actor (call it through :func:`close_pickler`). Read with :func:`read_pickles`.
    """

    def __init__(self, path: str, monitor: Any = None) -> None:
        super().__init__(monitor)
        self.path = str(path)
        self.file = open(self.path, "ab")
        self.written = 0

    def write(self, record: Any) -> int:
        pickle.dump(record, self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.file.flush()  # into the OS now: survives this process dying (os.fsync would survive power loss too)
        self.written += 1
        return self.written

    def _store(self, task_id: Any, result: Any) -> None:
        self.write((task_id, result))

    def results(self) -> dict[Any, Any]:
        return {record[0]: record[1] for record in read_pickles(self.path) if isinstance(record, tuple) and len(record) == 2}

    def close(self) -> int:
        import ray

        self.file.close()
        ray.actor.exit_actor()
        return self.written  # not reached: the caller sees the actor end instead


def read_pickles(path: str) -> list[Any]:
    """Every record in a file written by :class:`FilePickler` (a half-written last record is skipped)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no records file at {path!r}: was the FilePickler created with this path?")
    records = []
    with open(path, "rb") as file:
        while True:
            try:
                records.append(pickle.load(file))
            except EOFError:
                return records
            except (pickle.UnpicklingError, ValueError, AttributeError):
                return records  # a record cut short by a crash


def close_pickler(pickler: Any, timeout: float = 30.0) -> None:
    """Close a :class:`FilePickler` actor's file and let the actor end (its ending is the success signal)."""
    import ray

    try:
        ray.get(pickler.close.remote(), timeout=timeout)
    except ray.exceptions.RayActorError:
        pass  # exit_actor(): the actor ended after closing its file, as intended


def pull_loop(worker_id: Any, dispatcher: Any, sink: Any, work: Callable[[Any], Any]) -> int:
    """The worker's loop: get a task, run it, hand the result on, until the dispatcher says DONE.

    It waits for the sink to confirm each result *before* asking for more:
    asking ends the lease, so a worker that died in between would otherwise
    lose a result nobody will recompute.
    """
    import ray

    done = 0
    while True:
        task = ray.get(dispatcher.next_task.remote(worker_id))
        if task is DONE:
            return done
        ray.get(sink.add.remote(task.id, work(task.payload)))
        done += 1


class PullWorker:
    """A worker actor: ``run`` executes a pull loop; ``work`` runs one payload (for ``ActorPool``)."""

    def __init__(self, worker_id: Any) -> None:
        self.worker_id = worker_id

    def ping(self) -> int:
        return os.getpid()

    def work(self, fn: Callable[[Any], Any], payload: Any) -> Any:
        return fn(payload)

    def run(self, dispatcher: Any, sink: Any, work: Callable[[Any], Any], loop: Callable | None = None) -> Any:
        return (loop or pull_loop)(self.worker_id, dispatcher, sink, work)

