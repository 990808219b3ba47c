"""When tasks ran, as Ray recorded it, and what that says about concurrency and order.

Grading "did these run in parallel?" with a wall-clock threshold fails correct
work on a busy laptop. Ray records every task's life in its task events: when
the driver submitted it, when it ran and on which worker process, which task
launched it, what it reserved. We read those records straight from Ray's
control store (the same data ``ray.timeline()`` draws, with the submission
time and the parent task added, and without ``ray.timeline()``'s one-second
pause), so overlap, order and nesting are decided however slow the machine was.

Ray reports a finished task within about a second (``raycourse.start`` asks
for a tenth of a second); :func:`wait_for` polls until the tasks asked for
have been reported.

An :class:`Interval` is one task or actor-method execution. Times are seconds
since the epoch, comparable with ``time.time()`` on the same machine.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

FINISHED, FAILED = 11, 12  # Ray's TaskStatus values for a task that is over
_SUBMITTED = 1  # PENDING_ARGS_AVAIL: the owner created the task
_NIL_TASK = "f" * 40  # a parent id made of this (plus the job id) means "submitted by the driver"


@dataclass(frozen=True)
class Interval:
    name: str  # the function or "Class.method", e.g. "slow_function" or "Counter.increment"
    task_id: str
    worker: str  # the worker process that ran it
    start: float
    end: float
    submitted: float | None = None  # when the submitter created the task (None if unknown)
    parent: str = ""  # the task that submitted it; "" for the driver
    actor: str = ""  # the actor that ran it (an actor method), else ""
    pid: int = 0  # the worker's process id
    failed: bool = False  # the task raised (or was cancelled or killed)
    resources: tuple[tuple[str, float], ...] = ()  # what it reserved, e.g. (("CPU", 1.0), ("Custom", 1.0))

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


_channel: dict[str, Any] = {}


def _events(job: str) -> list[Any]:
    """This job's task event records (protobuf ``TaskEvents``), filtered by the control store itself.

    On a workshop cluster other learners' jobs hold most of the events; asking
    the GCS for one job keeps every poll small. Falls back to reading all events.
    """
    import ray
    from ray._private.state import state

    try:
        from ray._private.grpc_utils import init_grpc_channel
        from ray._raylet import JobID
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

        address = ray.get_runtime_context().gcs_address
        if address not in _channel:
            _channel.clear()
            _channel[address] = gcs_service_pb2_grpc.TaskInfoGcsServiceStub(init_grpc_channel(address))
        request = gcs_service_pb2.GetTaskEventsRequest()
        wanted = gcs_service_pb2.GetTaskEventsRequest.Filters.JobIdFilter()
        wanted.job_id = JobID(bytes.fromhex(job)).binary()
        request.filters.job_filters.append(wanted)
        return list(_channel[address].GetTaskEvents(request, timeout=30).events_by_task)
    except Exception:  # an older or newer Ray without this request: read everything, filter below
        _channel.clear()
        return state._get_all_task_events()


def records(job: str | None = None) -> dict[str, Interval]:
    """task id -> :class:`Interval` for this job's tasks that are over and fully reported."""
    job = job or _job_suffix()
    merged: dict[str, dict[str, Any]] = {}
    for event in _events(job):
        task_id = event.task_id.hex()
        if not task_id.endswith(job):
            continue  # another driver's task on a shared cluster
        entry = merged.setdefault(task_id, {"states": {}, "profile": None, "info": None, "worker": "", "pid": 0,
                                            "attempt": -1})
        if event.attempt_number < entry["attempt"]:
            continue  # an earlier attempt of a retried task
        if event.attempt_number > entry["attempt"]:
            entry.update(states={}, profile=None, attempt=event.attempt_number)
        if event.HasField("task_info"):
            entry["info"] = event.task_info
        if event.HasField("state_updates"):
            updates = event.state_updates
            entry["states"].update(dict(updates.state_ts_ns))
            if updates.worker_id:
                entry["worker"] = updates.worker_id.hex()
            if updates.worker_pid:
                entry["pid"] = updates.worker_pid
        if event.HasField("profile_events"):
            for item in event.profile_events.events:
                if item.event_name.startswith("task::"):
                    entry["profile"] = (item.event_name[len("task::"):], item.start_time / 1e9, item.end_time / 1e9)
                    entry["worker"] = entry["worker"] or event.profile_events.component_id.hex()
    found = {}
    for task_id, entry in merged.items():
        states, info, profile = entry["states"], entry["info"], entry["profile"]
        over = FINISHED in states or FAILED in states
        if not over or info is None:
            continue
        if profile is None and FAILED not in states:
            continue  # finished, but the worker's record of running it has not arrived yet
        if profile is not None:
            name, start, end = profile
        else:  # failed before it ran (cancelled, its worker died): no execution record
            name, start = info.func_or_class_name, states.get(8, states[FAILED]) / 1e9
            end = states[FAILED] / 1e9
        parent = info.parent_task_id.hex()
        found[task_id] = Interval(
            _short_name(info.func_or_class_name or name), task_id, entry["worker"], start, end,
            submitted=states[_SUBMITTED] / 1e9 if _SUBMITTED in states else None,
            parent="" if parent.startswith(_NIL_TASK) else parent,
            actor=info.actor_id.hex() if info.actor_id else "", pid=int(entry["pid"]), failed=FAILED in states,
            resources=tuple(sorted((k, float(v)) for k, v in info.required_resources.items())),
        )
    return found


def wait_for(task_ids: Iterable[str], timeout: float = 20.0, grace: float | None = None) -> list[Interval]:
    """The intervals of ``task_ids``, polling until every one is reported or ``timeout`` passes.

    Returns what it found, sorted by start: callers decide what a short list means.
    ``grace``: give up early if not a single one has appeared after that many seconds.
    """
    wanted = {t for t in task_ids if t}
    if not wanted:
        return []
    started = time.monotonic()
    while True:
        found = records()
        got = [found[t] for t in wanted if t in found]
        waited = time.monotonic() - started
        if len(got) == len(wanted) or waited >= timeout or (grace is not None and not got and waited >= grace):
            return sorted(got, key=lambda i: i.start)
        time.sleep(0.1)


def children(parents: Iterable[str], timeout: float = 10.0, expect: int | None = None) -> list[Interval]:
    """Tasks launched *by* the tasks ``parents`` (nested tasks), polling until ``expect`` are reported."""
    wanted = set(parents)
    started = time.monotonic()
    while True:
        got = [i for i in records().values() if i.parent in wanted]
        if expect is None or len(got) >= expect or time.monotonic() - started >= timeout:
            return sorted(got, key=lambda i: i.start)
        time.sleep(0.1)


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
    """Intervals of this job's finished tasks, sorted by start, selected by refs, name and a time window.

    Prefer :func:`tasks`, which finds tasks by the remote function or actor that
    made them. This lower-level selector polls until ``expect`` intervals (default:
    one per ref) are found or ``timeout`` passes; if none has appeared after
    ``grace`` seconds it gives up early.
    """
    wanted = {ref.task_id().hex() for ref in refs} if refs is not None else None
    if expect is None and wanted is not None:
        expect = len(wanted)
    started = time.monotonic()
    while True:
        found = [
            i for i in records().values()
            if (wanted is None or i.task_id in wanted)
            and (name is None or i.name == name or i.name.endswith("." + name))
            and (since is None or (i.start >= since - 0.05 and i.end > since))
            and (until is None or i.start <= until)
        ]
        waited = time.monotonic() - started
        if expect is None or len(found) >= expect or waited >= timeout or (not found and waited >= grace):
            return sorted(found, key=lambda i: i.start)
        time.sleep(0.1)


def tasks(*made_by: Any, cell: int | None = None, nested: bool = True, timeout: float = 20.0) -> list[Interval]:
    """The tasks your last cell (or cell run ``cell``) started through these remote functions or actors.

    ``made_by``: remote functions, actor classes or actor handles; none means every
    task the cell started. ``nested``: include the tasks those tasks launched.
    This is what lessons draw: ``plots.timeline(timing.tasks(slow_function))``.
    """
    from .record import JOURNAL

    runs = [c for c in JOURNAL.cells if c.end is not None and (cell is None or c.number == cell)]
    for run in reversed(runs):
        submitted = [r for r in JOURNAL.in_cell(run.number) if getattr(r, "task_ids", None) is not None
                     and hasattr(r, "kind") and _made_by(r, made_by)]
        if submitted:
            ids = [t for r in submitted for t in r.task_ids]
            spans = wait_for(ids, timeout=timeout, grace=min(timeout, 6.0))
            if nested:
                spans += [c for c in children([s.task_id for s in spans], timeout=0) if c.task_id not in ids]
            return sorted(spans, key=lambda i: i.start)
    return []


def _made_by(submission: Any, made_by: Sequence[Any]) -> bool:
    import ray.actor

    if submission.kind == "actor":
        return False  # creating an actor is not a task to draw
    if not made_by:
        return True
    for thing in made_by:
        if submission.target is thing and thing is not None:
            return True
        if isinstance(thing, ray.actor.ActorHandle) and submission.actor_id == thing._actor_id.hex():
            return True
        if isinstance(thing, ray.actor.ActorClass) and submission.kind == "method":
            from .record import JOURNAL

            created = {r.actor_id for r in list(JOURNAL.records) if getattr(r, "kind", "") == "actor" and r.target is thing}
            if submission.actor_id in created:
                return True
    return False


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


def in_flight(spans: Iterable[Interval]) -> int:
    """The most tasks submitted but not yet finished at one instant (from submission, not start, to end)."""
    points = []
    for span in spans:
        points.append((span.submitted if span.submitted is not None else span.start, 1))
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
