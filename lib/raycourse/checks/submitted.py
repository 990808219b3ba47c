"""What the driver submitted, read from the journal: arguments by key, tasks in flight at each wait, room to run.

Lesson 01's checks judge tasks by the arguments they were submitted with (which
argument is a block's size, which one its seed, whatever the order or keyword
names) and judge "all at once" by what was in flight whenever the driver
waited: a ``ray.get`` per task inside the submitting loop leaves one task in
flight, however fast or slow the machine ran it.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from .. import plots
from ..grading import Incorrect
from ..record import Fetch, Submission, Wait
from .evidence import Run, args_of, concurrency_allowed, cpu_slots, parallel_without_ray, plural


def whole(value: Any) -> bool:
    """A whole number (not a bool): how sizes and seeds look among a task's arguments."""
    return isinstance(value, int) and not isinstance(value, bool)


def real(value: Any) -> bool:
    """A finite plain number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def keyed(submission: Submission) -> dict[Any, Any]:
    """A submission's arguments by position (0, 1, ...) and keyword name, as plain values."""
    values = args_of(submission)
    names = submission.kwargs
    positional = len(values) - len(names)
    return {**dict(enumerate(values[:positional])), **dict(zip(names, values[positional:]))}


def work_of(run: Run) -> list[Submission]:
    """The task and actor-method submissions of a run (actor creations are not work)."""
    return [s for s in run.submissions() if s.kind in ("task", "method")]


def ids_of(submissions: Sequence[Submission]) -> list[str]:
    """The task ids of these submissions, in order."""
    return [t for s in submissions for t in s.task_ids]


def fewest_in_flight(run: Run, task_ids: Sequence[str]) -> int | None:
    """The fewest of ``task_ids`` in flight (submitted, not yet returned) at a wait made before the last was submitted.

    None when the driver submitted all of them before it waited for any. A
    ``ray.get`` per task inside the submitting loop gives 1: one at a time.
    """
    wanted = set(task_ids)
    blocking = {r.seq for r in run.blocking_before(task_ids)}
    if not blocking:
        return None
    submitted: set[str] = set()
    finished: set[str] = set()
    fewest: int | None = None
    for record in sorted(run.records, key=lambda r: r.seq):
        if record.seq in blocking:
            flying = len(submitted - finished)
            fewest = flying if fewest is None else min(fewest, flying)
        if isinstance(record, Submission):
            submitted |= wanted & set(record.task_ids)
        elif isinstance(record, Fetch) and record.values is not None:
            finished |= wanted & set(record.task_ids)
        elif isinstance(record, Wait):
            finished |= wanted & set(record.ready)
    return fewest


def cpus_of(submission: Submission) -> float:
    """CPUs one task of this submission reserved (an actor method call reserves none of its own)."""
    if submission.kind != "task":
        return 0.0
    value = submission.options.get("num_cpus", 1)
    return float(value) if real(value) else 1.0


def require_parallel(run: Run, work: Sequence[Submission], what: str, how: str) -> None:
    """Incorrect unless the tasks could all run at once, as far as the CPUs allow (judged from the journal)."""
    task_ids = ids_of(work)
    total = len(task_ids)
    per_task = max([cpus_of(s) for s in work] + [0.0])
    room = concurrency_allowed(total, per_task) if per_task > 0 else total
    if per_task > 0 and room < min(total, cpu_slots()):
        raise Incorrect(f"Each of your {what} reserves {per_task:g} CPUs, so only {room} fit at once on "
                        f"{cpu_slots()} CPUs. A task that computes with one core needs one CPU: drop num_cpus.")
    fewest = fewest_in_flight(run, task_ids)
    if fewest is not None and fewest < min(total, room):
        spans = run.tasks(timeout=10)
        longest = max([s.duration for s in spans] + [0.05])
        sketch = plots.sketch([[(0.0, longest)] for _ in range(min(total, room))], name="task")
        raise Incorrect(
            f"Your code waited for results while only {plural(fewest, 'task')} of its {total} {what} "
            f"{'was' if fewest == 1 else 'were'} in flight, so they ran {'one at a time' if fewest == 1 else 'in small groups'} "
            f"(Ray had room for {min(total, room)} at once). {how}",
            evidence=plots.compare(spans, sketch, marked=[s.task_id for s in spans]))


def elsewhere(source: str) -> str:
    """A sentence for a hint when a cell used threads, processes or asyncio instead of Ray ("" otherwise)."""
    kind = parallel_without_ray(source)
    return f" You used {kind} in the notebook's own process: this exercise is about Ray tasks." if kind else ""
