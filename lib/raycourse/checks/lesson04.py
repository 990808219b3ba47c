"""Checks for lesson 04 (the object store): share one put array between 20 tasks.

Timing alone cannot tell "put once" from "copied 20 times" on a busy machine, so
the check watches the learner's ``run_tasks(array, task)`` structurally: it hands
in a probe ``task`` whose ``.remote`` records what each call received, and counts
the ``ray.put`` calls made meanwhile.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..grading import Incorrect, NotAttempted, exercise
from .evidence import is_ref as is_object_ref

NUM_TASKS = 20


def column_mean(array: np.ndarray, i: int) -> float:
    """What the probe task computes: the mean of one column."""
    return float(array[:, i].mean())


def _holds_ref(value: Any) -> bool:
    """True for a list, tuple or dict with an ObjectRef inside (Ray passes those through unresolved)."""
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, (list, tuple)) and any(is_object_ref(x) for x in value)


class _ProbeTask:
    """Stands in for the lesson's remote function and remembers every call's arguments."""

    def __init__(self) -> None:
        import ray

        self._remote = ray.remote(column_mean)
        self.calls: list[tuple[Any, ...]] = []

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        call = args + tuple(kwargs.values())
        if any(_holds_ref(a) for a in call):
            # The task would fail on a list holding a ref; stop here with the reason instead.
            raise Incorrect(
                "You passed the ref inside a list. Ray replaces an ObjectRef by its value only when it is a "
                "direct argument: call task.remote(ref, i)."
            )
        self.calls.append(call)
        return self._remote.remote(*args, **kwargs)


def _array_argument(call: tuple[Any, ...]) -> Any:
    """The argument that carried the array: an ObjectRef, the array itself, or None."""
    return next((a for a in call if is_object_ref(a) or isinstance(a, np.ndarray)), None)


def _run_probed(run_tasks: Callable[..., Any], array: np.ndarray) -> tuple[Any, _ProbeTask, list[Any]]:
    """Call ``run_tasks(array, probe)`` with ``ray.put`` counted; always restores ``ray.put``."""
    import ray

    probe = _ProbeTask()
    puts: list[Any] = []
    original = ray.put

    def counting_put(value: Any, *args: Any, **kwargs: Any) -> Any:
        ref = original(value, *args, **kwargs)
        puts.append(ref)
        return ref

    ray.put = counting_put
    try:
        result = run_tasks(array, probe)
    finally:
        ray.put = original
    return result, probe, puts


@exercise("04.put_once", "Share one put array between 20 tasks")
def put_once(run_tasks: Any) -> str:
    """Run the learner's function on a fresh 8 MiB array and inspect the puts and the task arguments."""
    if not callable(run_tasks):
        raise Incorrect("`run_tasks` should be a function taking (array, task).")
    array = np.random.default_rng(4).random((1024, 1024))
    expected = [column_mean(array, i) for i in range(NUM_TASKS)]
    result, probe, puts = _run_probed(run_tasks, array)
    if is_object_ref(result) or (isinstance(result, (list, tuple)) and any(is_object_ref(r) for r in result)):
        raise Incorrect("run_tasks returned ObjectRefs: return ray.get(list_of_refs), the 20 values.")
    if len(probe.calls) != NUM_TASKS:
        raise Incorrect(f"run_tasks called task.remote {len(probe.calls)} times; expected {NUM_TASKS}, one per i in range({NUM_TASKS}).")
    carried = [_array_argument(call) for call in probe.calls]
    if any(c is None for c in carried):
        raise Incorrect("Some task calls received neither the array nor a ref to it: call task.remote(ref, i).")
    by_value = sum(isinstance(c, np.ndarray) for c in carried)
    if len(puts) > 1:
        raise Incorrect(
            f"ray.put ran {len(puts)} times, so the array was copied into the object store {len(puts)} times. "
            "Call ray.put(array) once, before the loop, and pass that one ref to every task."
        )
    if by_value == NUM_TASKS and not puts:
        raise NotAttempted(
            "Every call still passes the array itself (the starter), so Ray copies it into the object store "
            f"{NUM_TASKS} times. Put it once with ray.put and pass the ref."
        )
    if by_value:
        raise Incorrect(
            f"You put the array once, but {by_value} calls received the array itself, not the ref "
            "(ray.get in the driver turns the ref back into a local array). Pass the ref straight to task.remote."
        )
    if len({c.hex() for c in carried}) != 1:
        raise Incorrect("The tasks received different refs: put the array once and pass the same ref to all of them.")
    if not isinstance(result, (list, tuple)) or len(result) != NUM_TASKS:
        raise Incorrect(f"run_tasks should return the list of the {NUM_TASKS} task results, got {type(result).__name__}.")
    if not all(isinstance(r, (int, float)) and math.isclose(r, e, rel_tol=1e-9) for r, e in zip(result, expected)):
        raise Incorrect(f"run_tasks should return the task results in order, task(array, i) for i in range({NUM_TASKS}).")
    return f"The array went into the object store once; all {NUM_TASKS} tasks read that one copy through its ref."
