"""Checks for lesson 03 (ray.wait): the first three to finish, processing in completion order, k tasks in flight.

The evidence is what the tasks themselves recorded (each returns ``(i, start, end)``
timestamps), the timestamps the provided ``process`` function records, and the
intervals in Ray's timeline. Orders are compared with a tolerance because a
task's own "end" stamp is taken a little before the driver can see its result.
"""
from __future__ import annotations

from typing import Any, Sequence

from .. import timing
from ..grading import Incorrect, NotAttempted, exercise
from .evidence import is_ref as is_object_ref

# A result counts as "seen first" only if it ended this much earlier (seconds):
# the time between a task's last line and its result reaching the driver.
TOLERANCE = 0.5

LIMIT_N, LIMIT_K = 12, 3  # lesson 03's limit_in_flight: 12 tasks, at most 3 in flight


def _truth(refs: Any) -> dict[int, tuple[int, float, float]]:
    """The ``(i, start, end)`` each task returned, by task index, fetched again from Ray."""
    import ray

    if is_object_ref(refs) or not isinstance(refs, (list, tuple)) or not all(is_object_ref(r) for r in refs):
        raise Incorrect("`refs` should be the list of ObjectRefs the cell submitted; was the line `refs = [...]` changed?")
    values = ray.get(list(refs))
    return {int(v[0]): (int(v[0]), float(v[1]), float(v[2])) for v in values}


def _as_results(value: Any, what: str, truth: dict[int, tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """The learner's list of task results, each checked to be one this run's tasks returned."""
    if is_object_ref(value):
        raise Incorrect(f"`{what}` is an ObjectRef. ray.wait gives you refs; fetch their values with ray.get(ready).")
    try:
        items = list(value)
    except TypeError:
        raise Incorrect(f"`{what}` should be a list of task results, got {type(value).__name__}.") from None
    if any(is_object_ref(v) for v in items):
        raise Incorrect(f"`{what}` holds ObjectRefs, not results: call ray.get on the list of ready refs.")
    results = []
    for item in items:
        try:
            i, start, end = item
            key = (int(i), float(start), float(end))
        except (TypeError, ValueError):
            raise Incorrect(f"`{what}` should hold the (i, start, end) tuples the tasks returned, found {item!r}.") from None
        if truth.get(key[0]) != key:
            raise Incorrect(
                f"`{what}` holds {item!r}, which none of this run's tasks returned. "
                "Use the values ray.get gives you rather than typing them in."
            )
        results.append(key)
    return results


@exercise("03.first_three", "Take the first three tasks to finish, then the rest")
def first_three(first_three: Any, the_rest: Any, first_three_at: float, refs: Sequence[Any]) -> str:
    """Compares the learner's split with the end stamps the six tasks returned."""
    if first_three is None and the_rest is None:
        raise NotAttempted("Set `first_three` (results of the first three tasks to finish) and `the_rest`.")
    truth = _truth(refs)
    first = _as_results(first_three, "first_three", truth)
    rest = _as_results(the_rest, "the_rest", truth)
    if len(first) != 3:
        hint = " ray.wait returns one ready ref unless you pass num_returns=3." if len(first) == 1 else ""
        raise Incorrect(f"`first_three` has {len(first)} results; expected 3.{hint}")
    if sorted(v[0] for v in first + rest) != sorted(truth):
        raise Incorrect(
            f"`first_three` and `the_rest` together should hold each of the {len(truth)} tasks once. "
            "Fetch the rest from the not-ready list that ray.wait returned."
        )
    by_end = sorted(truth.values(), key=lambda v: v[2])
    if max(v[2] for v in first) > min(v[2] for v in rest) + TOLERANCE:
        submitted_first = sorted(v[0] for v in first) == sorted(truth)[:3]
        finished_first = sorted(v[0] for v in by_end[:3])
        raise Incorrect(
            (
                "These are the first three tasks you *submitted* (ray.get(refs[:3]) waits for them in list order). "
                if submitted_first
                else "These are not the three tasks that finished first. "
            )
            + f"Tasks {finished_first} finished first: ray.wait(refs, num_returns=3) returns them as soon as they are done."
        )
    if not isinstance(first_three_at, (int, float)):
        raise Incorrect("`first_three_at` should be the time.time() taken right after you got the first three; restore that line.")
    last_end = by_end[-1][2]
    if first_three_at >= last_end:
        raise Incorrect(
            "You had the first three only after all six tasks had finished: ray.get on all the refs waits for the slowest. "
            "Wait for just three with ray.wait(refs, num_returns=3), then ray.get those."
        )
    return (
        f"You had the first three results {last_end - first_three_at:.1f} s before the slowest task finished, "
        "and collected the rest afterwards."
    )


def _process_log(processed: Any) -> list[tuple[int, float, float]]:
    try:
        log = [(int(i), float(started), float(finished)) for i, started, finished in processed]
    except (TypeError, ValueError):
        raise Incorrect("`processed` should be the list that process() fills; do not change process() or `processed`.") from None
    return log


@exercise("03.process_in_order", "Process ten results in the order they finish")
def process_in_order(processed: Any, refs: Sequence[Any], since: float) -> str:
    """The driver must never sit waiting for one result while another is already finished."""
    truth = _truth(refs)
    log = _process_log(processed)
    if not log:
        raise NotAttempted("Nothing was processed yet: call process(result) for each of the ten results.")
    ids = [i for i, _, _ in log]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise Incorrect(
            f"Task(s) {repeated} were processed more than once. ray.wait returns (ready, not_ready): "
            "wait on the not-ready list next time, so a processed ref is not returned again."
        )
    if sorted(ids) != sorted(truth):
        raise Incorrect(f"{len(set(ids) & set(truth))} of the {len(truth)} results were processed: process every one of them.")
    end = {i: truth[i][2] for i in truth}
    last_end = max(end.values())
    if log[0][1] >= last_end:
        if ids == sorted(truth):
            raise NotAttempted(
                "The loop still waits for all ten tasks, then processes them in submission order (the starter). "
                "Use ray.wait(remaining, num_returns=1) to get each result as soon as it is ready."
            )
        raise Incorrect(
            "Processing began only after all ten tasks had finished, so nothing overlapped: ray.get on the whole list "
            "waits for the slowest. Loop on ray.wait(remaining, num_returns=1) and process each result right away."
        )
    free_at = since
    for position, (i, started, finished) in enumerate(log):
        waited_for_it = end[i] > free_at + TOLERANCE
        earlier = [j for j in ids[position + 1:] if end[j] + TOLERANCE < end[i]]
        if waited_for_it and earlier:
            raise Incorrect(
                f"You waited for task {i} while task {earlier[0]}, which finished {end[i] - end[earlier[0]]:.1f} s earlier, "
                "was already done (ray.get(ref) in submission order does this). "
                "Ask ray.wait for whichever result is ready first."
            )
        free_at = finished
    gained = last_end - log[0][1]
    return f"Every result was processed as soon as it was ready; the first one {gained:.1f} s before the last task finished."


def _refills(spans: Sequence[timing.Interval]) -> int:
    """How many tasks started while a task from before the previous finish was still running.

    Pipelining submits a new task as soon as one finishes, while the others keep
    running; batches wait for the whole batch, so at each new start every running
    task started after the last finish.
    """
    count = 0
    for task in spans:
        ends_before = [s.end for s in spans if s.end <= task.start]
        if not ends_before:
            continue
        last_end = max(ends_before)
        if any(s.start < last_end and s.end > task.start for s in spans if s is not task):
            count += 1
    return count


@exercise("03.limit_in_flight", "Keep at most K tasks in flight, with a progress bar")
def limit_in_flight(results: Any, bar: Any, since: float) -> str:
    """Read the concurrency of the unit_of_work tasks from Ray's timeline."""
    n, k = LIMIT_N, LIMIT_K
    expected = [i * i for i in range(n)]
    if results is None:
        raise NotAttempted("`results` is not set yet.")
    if is_object_ref(results) or any(is_object_ref(r) for r in results):
        raise Incorrect("`results` holds ObjectRefs: ray.get the ready refs that ray.wait returns, and keep their values.")
    values = sorted(results)
    if values != expected:
        if len(values) < n and set(values) <= set(expected):
            raise Incorrect(
                f"`results` has {len(values)} of the {n} values. After the submitting loop, keep calling ray.wait "
                "until the tasks still in flight have finished too."
            )
        raise Incorrect(f"`results` should hold unit_of_work(i) = i*i for i in range({n}), in any order.")
    ran = timing.intervals(name="unit_of_work", since=since, expect=n, timeout=15)
    if len(ran) != n:
        raise Incorrect(
            f"Ray ran {len(ran)} unit_of_work tasks after `since`, not {n}: submit each i once with unit_of_work.remote(i)."
        )
    most = timing.max_concurrency(ran)
    if most > k:
        raise Incorrect(
            f"Up to {most} tasks ran at once, more than K = {k}. Before each new submission, while len(in_flight) >= K, "
            "wait for one: ready, in_flight = ray.wait(in_flight, num_returns=1)."
        )
    if most == 1:
        raise NotAttempted(f"The tasks ran one at a time (the starter). Keep {k} in flight at once.")
    if most < k:
        raise Incorrect(f"At most {most} tasks ran at once: submit until {k} are in flight before waiting.")
    if _refills(ran) == 0:
        raise Incorrect(
            f"The tasks ran in batches of {k}: each batch waited for its slowest task. Submit a new task as soon as "
            "any one finishes (ray.wait with num_returns=1), so the other slots keep working."
        )
    count = getattr(bar, "n", None)
    if not isinstance(count, (int, float)):
        raise Incorrect("`bar` should be the tqdm progress bar from the cell; restore the `with tqdm(...) as bar:` line.")
    if count != n:
        raise Incorrect(f"The progress bar shows {count:g} of {n}: call bar.update(len(ready)) each time ray.wait returns.")
    return f"All {n} tasks ran, never more than {k} at once, and each finish let the next one start."
