"""Measuring a run: timed work, intervals, efficiency from the run's own records, and predicted makespans.

Why our own ruler: the strategies of lesson 09 (batches, ``Pool.map``, plain tasks, ``ActorPool``,
pull workers) return results in different shapes and run their work in different processes. Wrapping
the work function with :func:`timed` makes every one of them return the same evidence: the value,
when the work started and ended, and in which process. :func:`efficiency` turns those intervals
into ideal / makespan, and :func:`predict` says what each way of handing out work would reach with
exact durations and no overhead.
"""
from __future__ import annotations

import functools
import heapq
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ...timing import Interval


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
    Wrapping twice changes nothing.
    """
    if not callable(fn):
        raise TypeError(f"timed() needs a function, got {type(fn).__name__}")
    if getattr(fn, "_raycourse_timed", False):
        return fn

    @functools.wraps(fn)
    def timed_call(payload: Any) -> Timed:
        start = time.time()
        value = fn(payload)
        return Timed(value, start, time.time(), str(os.getpid()))

    timed_call._raycourse_timed = True  # type: ignore[attr-defined]
    return timed_call


@dataclass(frozen=True)
class Slowed:
    """``fn`` on a slower machine: each call takes ``factor`` times as long (checks use it for one worker)."""

    fn: Callable[[Any], Any]
    factor: float

    def __call__(self, payload: Any) -> Any:
        start = time.time()
        value = self.fn(payload)
        time.sleep(max(0.0, (self.factor - 1) * (time.time() - start)))
        return value


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


def efficiency(intervals: Sequence[Interval], workers: int) -> Efficiency:
    """How close a run came to ideal, from intervals of that same run.

    Ideal is the *recorded* work divided by the workers: if the machine is busy
    and every task takes longer, the ideal grows with it, so the ratio mostly
    measures idle workers, not the speed of the machine.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not intervals:
        return Efficiency(0.0, 0.0, workers)
    begin, end = min(s.start for s in intervals), max(s.end for s in intervals)
    return Efficiency(end - begin, sum(s.duration for s in intervals) / workers, workers)


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


def schedule(durations: Sequence[float], factors: Sequence[float]) -> list[list[tuple[float, float]]]:
    """When each task would run if each went to the first free worker: ``rows[w]`` lists (start, end) of worker w.

    ``factors[w]``: how many times slower worker w is (1 for all, if the workers are alike). The picture
    of the pull pattern, to set beside a run that went otherwise.
    """
    if not factors:
        raise ValueError("schedule needs at least one worker (one factor per worker)")
    free, rows = [0.0] * len(factors), [[] for _ in factors]
    for duration in durations:
        k = min(range(len(free)), key=free.__getitem__)
        rows[k].append((free[k], free[k] + duration * factors[k]))
        free[k] = rows[k][-1][1]
    return rows
