"""Checks for lesson 04 (the object store): share one put array between 20 tasks.

Timing cannot tell "put once" from "copied 20 times" on a busy machine, and it
need not: the driver's journal says it. The check calls the learner's
``run_tasks(array, task)`` with an array it draws now (a fresh shape and fresh
values) and a ``task`` of its own, then reads what that call did: every
``ray.put`` (of which object, how many bytes), every ``task.remote`` and what
each received (a ref is passed by reference, an array by value, a ref inside a
list arrives as a ref), every ``ray.get``/``ray.wait`` and when it came, and
what ``ray.get`` returned for which task. The values the function returns must
be those fetched, in the order of ``i``.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import record
from ..grading import Incorrect, NotAttempted, exercise
from ..lessons.dispatch.kept import helper
from ..record import Fetch, Put, Submission
from .evidence import (Run, call, expect_values, holds_ref, is_ref, number, parallel_without_ray, plain_list, plural,
                       run_of, short)

NUM_TASKS = 20
MAX_SLEEP = 0.15  # seconds; each probe task sleeps a random fraction of this
GATE_TIMEOUT = 10.0  # seconds task 0 waits at most for the others (only a serial answer makes it wait that long)
PROBE_CPUS = 0.5  # the probe's tasks run two per CPU: task 0 waits beside the others even when few CPUs are free

_probe: dict[str, Any] = {}


class _Gate:
    """Counts the probe tasks that finished (a bookkeeping actor, kept between checks)."""

    def __init__(self) -> None:
        self.finished = 0

    def reset(self) -> None:
        self.finished = 0

    def arrive(self) -> None:
        self.finished += 1

    def count(self) -> int:
        return self.finished


def _column_mean(a: Any, i: Any) -> Any:
    """The check's task: the mean of column ``i`` (None for an argument that is not an array, instead of failing).

    It first sleeps up to :data:`MAX_SLEEP` seconds, as long as the array's first row says: the array is drawn
    afresh for every check, so the tasks finish in an order nobody can foresee.
    """
    if not hasattr(a, "shape") or not isinstance(i, int) or len(getattr(a, "shape", ())) != 2:
        return None
    time.sleep(0.0 if i == 0 else MAX_SLEEP * float(a[0, i]))
    return float(a[:, i].mean())


def _gated(gate: Any) -> Any:
    """The probe's function: :func:`_column_mean`, and task 0 finishes only after the others did.

    So results collected in completion order (a ``ray.wait`` loop appending what is ready) never come out in
    the order of ``i``, however fast or slow the machine starts workers: task 0 waits until the other
    tasks have told ``gate`` they finished (at most :data:`GATE_TIMEOUT` seconds, for answers that never
    submit them while it runs).
    """
    def column_mean(a: Any, i: Any) -> Any:
        import ray

        value = _column_mean(a, i)
        if value is None:
            return value
        if i != 0:
            ray.get(gate.arrive.remote())
            return value
        deadline = time.monotonic() + GATE_TIMEOUT
        while ray.get(gate.count.remote()) < NUM_TASKS - 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        return value

    column_mean.__name__ = column_mean.__qualname__ = "column_mean"
    return column_mean


def _probe_task() -> Any:
    """The check's own remote function, with a reset gate: its tasks are found by this object.

    Made again only when the gate is new (the first check of a Ray session): the function carries its handle.
    """
    import ray

    gate = helper("04.put_once gate", _Gate)
    if _probe.get("gate") is not gate:
        _probe.update(gate=gate, task=ray.remote(num_cpus=PROBE_CPUS)(_gated(gate)))
    return _probe["task"]


def _fresh_array() -> np.ndarray:
    """An array the learner could not foresee: a shape and values drawn now (about 0.2 to 2 MiB)."""
    rng = np.random.default_rng()
    return rng.random((int(rng.integers(400, 1200)), int(rng.integers(NUM_TASKS + 4, 200))))


def _carrier(submission: Submission, array: np.ndarray) -> tuple[str, str]:
    """How one call got the array: ("ref", object id), ("value", ""), ("nested", object id) or ("none", "")."""
    for summary in submission.args:
        if isinstance(summary, tuple) and summary and summary[0] == "ref":
            return "ref", summary[1]
    for summary in submission.args:
        if isinstance(summary, tuple) and summary and summary[0] == "array" and tuple(summary[1]) == array.shape:
            return "value", ""
    for summary in submission.args:
        inside = record.refs_in(summary)
        if inside:
            return "nested", inside[0][0]
    return "none", ""


def _index(submission: Submission) -> int | None:
    """The ``i`` a call was made for: its one plain integer argument."""
    found = [s[1] for s in submission.args if isinstance(s, tuple) and s and s[0] == "value"
             and isinstance(s[1], int) and not isinstance(s[1], bool)]
    return found[0] if len(found) == 1 else None


def _array_puts(puts: list[Put], array: np.ndarray) -> list[Put]:
    """The puts of the array itself (or of a copy of it: same type and size)."""
    return [p for p in puts if p.value_id == id(array) or (p.type_name == "ndarray" and p.nbytes == array.nbytes)]


def _fetched_put(run: Run, object_ids: set[str]) -> bool:
    return any(isinstance(f, Fetch) and object_ids & set(f.object_ids) for f in run.fetches())


def _judge_no_tasks(run: Run, value: Any, expected: list[float], source: str) -> None:
    others = run.submissions()
    if others:
        raise Incorrect(f"run_tasks submitted {plural(len(others), 'task')} of `{others[0].name}`, not of the `task` "
                        "it was given. Call task.remote(ref, i): the check passes in a task of its own.")
    elsewhere = parallel_without_ray(source)
    if elsewhere:
        raise Incorrect(f"run_tasks computed the results with {elsewhere} in the notebook's process, not as Ray "
                        "tasks. Submit task.remote(ref, i) for each i and ray.get the refs.")
    values = plain_list(value)
    if values is not None and len(values) == len(expected) and np.allclose(values, expected):
        raise Incorrect("run_tasks computed the results in the notebook: no task ran. Submit task.remote(ref, i) "
                        f"for each i in range({NUM_TASKS}) and return what ray.get gives you.")
    raise Incorrect(f"run_tasks ran no task: submit task.remote(ref, i) for each i in range({NUM_TASKS}).")


def _judge_arguments(run: Run, submissions: list[Submission], array: np.ndarray) -> str:
    """How the array reached the tasks; returns the one object id they all shared, or raises."""
    carried = [_carrier(s, array) for s in submissions]
    kinds = [k for k, _ in carried]
    puts = run.puts()
    array_puts = _array_puts(puts, array)
    if not puts and kinds.count("value") == len(kinds) == NUM_TASKS:
        raise NotAttempted(f"Every call still passes the array itself (the starter), so Ray copies it into the object "
                           f"store {NUM_TASKS} times. Put it once with ray.put and pass the ref.")
    if len(array_puts) > 1:
        where = " (a ray.put inside the loop?)" if len(array_puts) >= NUM_TASKS else ""
        raise Incorrect(f"ray.put ran {len(array_puts)} times on the array, so {len(array_puts)} copies went into the "
                        f"object store{where}. Call ray.put(array) once, before the loop, and pass that one ref to "
                        "every task.")
    if "nested" in kinds:
        raise Incorrect(f"{plural(kinds.count('nested'), 'call')} passed the ref inside a list (or another container). "
                        "Ray replaces an ObjectRef by its value only when it is a direct argument: call "
                        "task.remote(ref, i).")
    if "value" in kinds:
        count = kinds.count("value")
        if array_puts and _fetched_put(run, {p.object_id for p in array_puts}):
            raise Incorrect(f"You put the array once, but then ray.get turned the ref back into an array in the "
                            f"notebook, and {plural(count, 'call')} received that array by value (copied into the "
                            "store again). Pass the ref itself to task.remote.")
        if array_puts:
            raise Incorrect(f"You put the array once, but {plural(count, 'call')} received the array itself, not the "
                            "ref: each of those copies it into the store again. Pass the ref to task.remote.")
        raise Incorrect(f"{plural(count, 'call')} received the array by value, so each copies it into the object store. "
                        "Call ray.put(array) once and pass the ref to every task.")
    if "none" in kinds:
        raise Incorrect(f"{plural(kinds.count('none'), 'call')} received neither the array nor a ref to it: call "
                        "task.remote(ref, i) with ref = ray.put(array).")
    shared = {oid for _, oid in carried}
    if len(shared) > 1:
        raise Incorrect(f"The tasks received {len(shared)} different refs: put the array once and pass the same ref "
                        "to all of them.")
    (object_id,) = shared
    if object_id not in {p.object_id for p in array_puts}:
        raise Incorrect("The tasks shared one ref, but not one made by ray.put(array) in run_tasks: put the array "
                        "itself, once, and pass that ref.")
    extra = [p for p in puts if p not in array_puts]
    if extra:
        raise Incorrect(f"ray.put ran {len(puts)} times: once for the array, and also for a `{extra[0].type_name}`. "
                        "Only the array needs putting; return the values ray.get gives you.")
    return object_id


@exercise("04.put_once", "Share one put array between 20 tasks")
def put_once(run_tasks: Any) -> str:
    """Calls ``run_tasks`` with a fresh array and the check's own task; judges puts, arguments, waits and values."""
    if not callable(run_tasks):
        raise Incorrect("`run_tasks` should be a function taking (array, task).")
    source = run_of("run_tasks").source
    array = _fresh_array()
    probe = _probe_task()
    expected = [float(array[:, i].mean()) for i in range(NUM_TASKS)]
    shape = f"{number(array.shape[0])} x {number(array.shape[1])}"
    value, run = call(run_tasks, array, probe, what=f"run_tasks(<a {shape} array>, task)", timeout=120)
    submissions = run.submissions(probe)
    if not submissions:
        _judge_no_tasks(run, value, expected, source)
    _judge_arguments(run, submissions, array)
    indices = [_index(s) for s in submissions]
    if len(submissions) != NUM_TASKS or sorted(i for i in indices if i is not None) != list(range(NUM_TASKS)):
        shown = sorted((i for i in indices if i is not None))
        raise Incorrect(f"run_tasks called task.remote {plural(len(submissions), 'time')} (for i in "
                        f"{short(shown, 60)}); expected {NUM_TASKS}, one for each i in range({NUM_TASKS}).")
    task_ids = [t for s in submissions for t in s.task_ids]
    if run.blocking_before(task_ids):
        raise Incorrect(f"run_tasks waited for a result (ray.get or ray.wait) before it had submitted all "
                        f"{NUM_TASKS} tasks, so they ran one after another. Submit all of them first, then fetch "
                        "the results.")
    if is_ref(value) or holds_ref(value):
        raise Incorrect(f"run_tasks returned ObjectRefs: return the {NUM_TASKS} values, ray.get(list_of_refs).")
    fetched = run.fetched(task_ids)
    by_index = {i: fetched.get(t) for s, i in zip(submissions, indices) for t in s.task_ids}
    if any(t not in fetched for t in task_ids):
        missing = sum(t not in fetched for t in task_ids)
        raise Incorrect(f"run_tasks never fetched the results of {plural(missing, 'task')}: return what ray.get "
                        "returns for all of them, not values computed in the notebook.")
    in_order = [by_index[i] for i in range(NUM_TASKS)]
    values = plain_list(value)
    if values is not None and len(values) == NUM_TASKS and sorted(map(repr, values)) == sorted(map(repr, in_order)) \
            and values != in_order:
        raise Incorrect(f"run_tasks returned the {NUM_TASKS} results, but not in the order of i (in the order they "
                        "finished?). Return them in the order the tasks were submitted: task(array, 0) first.")
    expect_values(value, in_order, "run_tasks(array, task)")
    return (f"The array went into the object store once; all {NUM_TASKS} tasks were submitted before the first wait "
            "and read that one copy through its ref, and run_tasks returned their results in order.")
