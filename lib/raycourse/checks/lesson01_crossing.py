"""Check for lesson 01's ``01.crossing_point``: the task size from which Ray beats a serial loop.

Every machine differs, so ``crossing`` is judged against the learner's own
lists; those lists must be real measurements. The serial times must be what
``montecarlo.time_serial`` measured; each Ray time must fit the rounds of tasks
of that size the cell ran: at least the time from the first submission to the
end of the ``ray.get`` that returned the last of them, at most the time between
the neighbouring Ray calls. A typed, scaled or per-task time falls outside.
"""
from __future__ import annotations

from typing import Any

from ..grading import Incorrect, NotAttempted, exercise
from ..lessons import montecarlo
from ..record import Fetch, Submission, Wait
from .evidence import Run, holds_ref, number, parallel_without_ray, plain_list, run_of, same_values
from .submitted import elsewhere, ids_of, keyed, real, require_parallel, whole, work_of


def _record_time(record: Any, edge: str) -> float:
    """When a journal record happened: its start (``edge="start"``) or its end."""
    if isinstance(record, (Fetch, Wait)):
        return record.start if edge == "start" else record.end
    return record.time


def _rounds(run: Run, size: int) -> list[list[Submission]]:
    """The submissions of tasks of ``size`` points, grouped into rounds: a wait on any of them ends a round."""
    ordered = sorted(run.records, key=lambda r: r.seq)
    rounds: list[list[Submission]] = []
    current: list[Submission] = []
    for record in ordered:
        if isinstance(record, Submission) and record.kind in ("task", "method") and \
                size in [v for v in keyed(record).values() if whole(v)]:
            current.append(record)
        elif isinstance(record, (Fetch, Wait)) and current and set(record.task_ids) & set(ids_of(current)):
            rounds.append(current)
            current = []
    if current:
        rounds.append(current)
    return rounds


def _round_bounds(run: Run, round_: list[Submission]) -> tuple[float, float] | None:
    """(shortest, longest) time a timer around this round could have measured; None if it never finished."""
    wanted = set(ids_of(round_))
    ordered = sorted(run.records, key=lambda r: r.seq)
    done: dict[str, Any] = {}
    for record in ordered:
        if isinstance(record, Fetch) and record.values is not None:
            ready = set(record.task_ids)
        elif isinstance(record, Wait):
            ready = set(record.ready)
        else:
            continue
        for task in wanted & ready:
            done.setdefault(task, record)
    if set(done) != wanted:
        return None
    first, closing = round_[0], max(done.values(), key=lambda r: r.seq)
    before = [r for r in ordered if r.seq < first.seq]
    after = [r for r in ordered if r.seq > closing.seq]
    start = _record_time(before[-1], "end") if before else (run.cell.start if run.cell else first.time)
    end = _record_time(after[0], "start") if after else (run.cell.end if run.cell and run.cell.end else closing.end)
    return closing.end - first.time, end - start


def _judge_ray_time(run: Run, size: int, measured: float, calls: int) -> None:
    rounds = _rounds(run, size)
    if not rounds:
        raise Incorrect(f"No Ray task of size {number(size)} ran in the cell that set `ray_times`, yet it holds a "
                        f"time for it ({measured:.4f} s). Time ray.get on {calls} tasks of that size, submitted "
                        "together, and append that time.")
    everything = [s for r in rounds for s in r]
    require_parallel(run, everything, f"size-{number(size)} tasks",
                      f"Submit all {calls} tasks of a size first, then ray.get the list once, inside the timer.")
    if any(len(ids_of(r)) != calls for r in rounds):
        counts = sorted({len(ids_of(r)) for r in rounds})
        raise Incorrect(f"For size {number(size)} you timed {' and '.join(map(str, counts))} task(s) at a time; the "
                        f"serial loop made {calls} calls. Time {calls} tasks of that size, so both do the same work.")
    fetched = run.fetched(ids_of(everything))
    for value in fetched.values():
        if not (montecarlo.plausible_count(value, size) or montecarlo.plausible_estimate(value, size)):
            raise Incorrect(f"A task of size {number(size)} returned {value!r}: your tasks should count "
                            f"{number(size)} random points each, like count_inside(size).")
    bounds = [b for b in (_round_bounds(run, r) for r in rounds) if b is not None]
    if not bounds:
        raise Incorrect(f"The cell never waited for the size-{number(size)} tasks to finish: ray.get them inside "
                        "the timed part, or the time says nothing about the work.")
    shortest, longest = min(b[0] for b in bounds), max(b[1] for b in bounds)
    if measured < shortest - 0.0005:
        raise Incorrect(f"`ray_times` says {measured:.4f} s for size {number(size)}, but its {calls} tasks took "
                        f"{shortest:.4f} s from the first submission to the end of ray.get. Start the timer before "
                        "the first .remote(), stop it after ray.get, and append that time unchanged.")
    if measured > longest + 0.002 + 0.02 * measured:
        raise Incorrect(f"`ray_times` says {measured:.4f} s for size {number(size)}, but everything between the "
                        f"neighbouring Ray calls took at most {longest:.4f} s. Time only the submission and the "
                        "ray.get of that size's tasks, and append that time unchanged.")


@exercise("01.crossing_point", "Find the task size below which Ray's overhead outweighs its gain")
def crossing_point(sizes: Any, serial_times: Any, ray_times: Any, crossing: Any) -> str:
    """The Ray times are tied to the rounds of tasks that cell ran; ``crossing`` must follow from the learner's lists."""
    run = run_of("ray_times")
    if holds_ref(ray_times):
        raise Incorrect("`ray_times` holds ObjectRefs: time how long ray.get takes, not the refs.")
    times = plain_list(ray_times)
    if not times:
        if crossing is None and not work_of(run):
            raise NotAttempted("Time eight Ray tasks per size into `ray_times` (your code here), then set `crossing`.")
        raise Incorrect("`ray_times` is empty: append one Ray time per size."
                        + elsewhere(run.source))
    sizes_list = plain_list(sizes)
    serial = plain_list(serial_times)
    if not sizes_list or not all(whole(s) and s > 0 for s in sizes_list) or sizes_list != sorted(set(sizes_list)):
        raise Incorrect("`sizes` should be increasing whole numbers of points per task.")
    if serial is None or not all(real(t) for t in serial) or not all(real(t) for t in times):
        raise Incorrect("`serial_times` and `ray_times` should be lists of numbers (seconds).")
    if not (len(sizes_list) == len(serial) == len(times)) or len(sizes_list) < 4:
        raise Incorrect(f"Expected one serial and one Ray time per size, for at least 4 sizes; got "
                        f"{len(sizes_list)} sizes, {len(serial)} serial and {len(times)} Ray times.")
    measured = montecarlo.serial_measurement(sizes_list)
    if measured is None:
        raise Incorrect("`serial_times` was not measured for these `sizes` by montecarlo.time_serial: run the serial "
                        "cell again (after any change to `sizes`).")
    if not same_values(serial, measured[0]):
        raise Incorrect("`serial_times` is not what montecarlo.time_serial measured: keep the serial measurements "
                        "unchanged, or the comparison is not fair.")
    if min(times) <= 0:
        raise Incorrect("Every Ray time should be a positive number of seconds.")
    if not work_of(run) and parallel_without_ray(run.source):
        raise Incorrect(f"No Ray task ran: you used {parallel_without_ray(run.source)} in the notebook's own process. "
                        "Time Ray tasks: count_inside.remote(size).")
    for size, seconds in zip(sizes_list, times):
        _judge_ray_time(run, size, float(seconds), measured[1])
    faster = [r < s for s, r in zip(serial, times)]
    expected = next((sizes_list[i] for i in range(len(sizes_list)) if all(faster[i:])), None)
    said = number(crossing) if whole(crossing) else repr(crossing)
    if expected is None:
        if crossing is None:  # consistent with the data; a busy or one-core machine can show this
            return (f"Consistent with your measurements: Ray never stayed faster up to size {number(sizes_list[-1])}. "
                    "On an idle multi-core machine it wins for large tasks; rerun later to see the crossing.")
        raise Incorrect(f"Your measurements never show Ray faster from {said} upwards, so `crossing` cannot be "
                        f"{said}; in that case set crossing = None.")
    if crossing != expected:
        raise Incorrect(
            f"Your own measurements say Ray is faster from size {number(expected)} on (every larger size included), "
            f"so `crossing` should be {number(expected)}, not {said}. Compute it from the lists rather than typing it.")
    return (f"Your Ray times match the tasks the cell ran, and from size {number(expected)} on Ray beats the serial "
            "loop on this machine; below it the per-task overhead dominates.")
