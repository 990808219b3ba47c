"""When tasks ran, as Ray recorded it, and what that says about concurrency.

Grading "did these run in parallel?" with one wall-clock threshold fails
correct work on a busy laptop. Ray records each finished task's start and end
(``ray.timeline()``, no dashboard needed, about a second after the task ends);
from those intervals we can decide overlap, order and concurrency no matter how
slow the machine was.

An :class:`Interval` is one task or actor-method execution. Times are seconds
since the epoch, comparable with ``time.time()`` on the same machine.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence


@dataclass(frozen=True)
class Interval:
    name: str  # the function or method name, e.g. "slow_function" or "Counter.increment"
    task_id: str
    worker: str  # the worker process that ran it
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def _job_suffix() -> str:
    import ray

    return ray.get_runtime_context().get_job_id()


def _short_name(qualified: str) -> str:
    """``"__main__.slow_function"`` -> ``"slow_function"``; ``"pkg.mod.Counter.inc"`` -> ``"Counter.inc"``."""
    parts = [p for p in qualified.split(".") if p]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return ".".join(parts[-2:])
    return parts[-1] if parts else qualified


def _events_now(job: str) -> list[Interval]:
    import ray

    found = []
    for event in ray.timeline():
        args = event.get("args") or {}
        task_id = args.get("task_id")
        if not task_id or event.get("ph") != "X" or not str(event.get("cat", "")).startswith("task::"):
            continue
        if not task_id.endswith(job):
            continue  # another driver's task on a shared cluster
        start = float(event["ts"]) / 1e6
        # "cat" is "task::f" or "task::Counter.increment"; "name" drops the class of an actor method.
        found.append(Interval(_short_name(str(event["cat"])[len("task::"):]), task_id, str(event.get("tid", "")), start, start + float(event["dur"]) / 1e6))
    return found


def intervals(
    refs: Sequence[Any] | None = None,
    *,
    name: str | None = None,
    since: float | None = None,
    until: float | None = None,
    expect: int | None = None,
    timeout: float = 20.0,
    grace: float = 6.0,
) -> list[Interval]:
    """Intervals of this job's finished tasks, sorted by start.

    Select by ``refs`` (ObjectRefs the tasks returned), by function ``name``
    (the bare name, e.g. ``"slow_function"`` or ``"Counter.increment"``), and by
    a window ``since``/``until`` (``time.time()`` values) on the start time.
    Ray reports a task about a second after it ends, so this polls until
    ``expect`` intervals (default: one per ref) are found or ``timeout`` passes,
    then returns what it has: callers decide what a short list means. If not
    a single matching task has appeared after ``grace`` seconds (starter code
    that never called ``.remote()``), it gives up early.
    """
    wanted = {ref.task_id().hex() for ref in refs} if refs is not None else None
    if expect is None and wanted is not None:
        expect = len(wanted)
    job = _job_suffix()
    deadline = time.monotonic() + timeout
    while True:
        found = [
            i
            for i in _events_now(job)
            if (wanted is None or i.task_id in wanted)
            and (name is None or i.name == name or i.name.endswith("." + name))
            # 50 ms of clock skew between nodes is forgiven; a task that had already
            # ended by `since` belongs to an earlier cell whatever the skew.
            and (since is None or (i.start >= since - 0.05 and i.end > since))
            and (until is None or i.start <= until)
        ]
        waited = timeout - (deadline - time.monotonic())
        if expect is None or len(found) >= expect or time.monotonic() >= deadline or (not found and waited >= grace):
            return sorted(found, key=lambda i: i.start)
        time.sleep(0.25)


def max_concurrency(spans: Iterable[Interval]) -> int:
    """The largest number of intervals running at one instant (touching ends do not overlap)."""
    points = []
    for span in spans:
        points.append((span.start, 1))
        points.append((span.end, -1))
    running = best = 0
    for _, delta in sorted(points, key=lambda p: (p[0], p[1])):
        running += delta
        best = max(best, running)
    return best


def overlap(a: Interval, b: Interval) -> float:
    """Seconds during which both ran (0 if they did not overlap)."""
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def completion_order(spans: Iterable[Interval]) -> list[str]:
    """Task ids in the order the tasks finished."""
    return [s.task_id for s in sorted(spans, key=lambda s: s.end)]


def span(spans: Sequence[Interval]) -> float:
    """Seconds from the first start to the last end."""
    return max(s.end for s in spans) - min(s.start for s in spans) if spans else 0.0


def levels(spans: Sequence[Interval], slack: float = 0.0) -> int:
    """How many sequential waves the intervals form.

    Two intervals are in successive waves when one starts after the other ends
    (``slack`` seconds of overlap are forgiven). The answer is the longest chain of such "after"
    relations, which for a reduction tree is its depth: a serial chain of n
    reductions gives n, a balanced tree ceil(log2(n+1)).
    """
    ordered = sorted(spans, key=lambda s: s.start)
    depth: list[int] = []
    for i, current in enumerate(ordered):
        before = [depth[j] for j in range(i) if ordered[j].end <= current.start + slack]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


def best_time(function: Callable[[], Any], repeats: int = 5) -> float:
    """Seconds taken by the fastest of ``repeats`` calls of ``function()``.

    The minimum, not the mean: interference from other programs only ever adds
    time, so the fastest run is the best estimate of the operation's own cost.
    """
    if not callable(function):
        raise TypeError(f"best_time needs a function to call, got {type(function).__name__}; wrap the code in a lambda")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest
