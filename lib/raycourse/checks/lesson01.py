"""Checks for lesson 01 (tasks): parallel calls, pi in blocks, the overhead crossing point."""
from __future__ import annotations

import math
import time
from typing import Any, Callable

from .. import plots, timing
from ..grading import Incorrect, NotAttempted, exercise
from .evidence import (args_of, concurrency_allowed, cpu_slots, expect_values, holds_ref, is_remote_function,
                       parallel_without_ray, run_of, same_values)
from .evidence import is_ref as is_object_ref


@exercise("01.parallel_calls", "Run four one-second calls of slow_function in parallel")
def parallel_calls(results: Any, slow_function: Any) -> str:
    """Structure from the journal (all four submitted before the first wait), values from what ray.get returned."""
    run = run_of("results")
    elsewhere = parallel_without_ray(run.source)
    if not is_remote_function(slow_function):
        if elsewhere:
            raise Incorrect(f"You ran the calls in parallel with {elsewhere} in the notebook's own process. This "
                            "exercise is about Ray: decorate slow_function with @ray.remote and submit it with .remote().")
        if same_values(results, [0, 1, 2, 3]):
            raise NotAttempted("`slow_function` still runs in the notebook, one call after another. Decorate it with "
                               "@ray.remote, submit all four calls with .remote(), then ray.get the list once.")
        raise Incorrect("`slow_function` is a plain Python function: decorate it with @ray.remote.")
    if holds_ref(results):
        raise Incorrect("`results` holds ObjectRefs (futures), not values: call ray.get once, on the list of refs.")
    values = expect_values(results, [0, 1, 2, 3])
    fetched = run.fetched_from(slow_function)
    if not fetched:
        if run.submissions(slow_function):
            raise Incorrect("The cell submitted slow_function tasks but never fetched their results with ray.get: "
                            "`results` was computed in the notebook. Set results = ray.get(list_of_refs).")
        raise Incorrect("No slow_function task ran in the cell that set `results`: the values were computed in the "
                        "notebook. Submit slow_function.remote(i) for each i and ray.get the refs.")
    if len(fetched) != 4 or sorted(args_of(s)[0] for s, _ in fetched if args_of(s)) != [0, 1, 2, 3]:
        raise Incorrect(f"`results` came from {len(fetched)} slow_function task(s); submit exactly one per i in "
                        "range(4) and fetch all four.")
    if [v for _, v in sorted(fetched, key=lambda sv: args_of(sv[0])[0])] != values:
        raise Incorrect("`results` does not hold what the tasks returned, in order: keep the list ray.get gives you.")
    task_ids = [t for s, _ in fetched for t in s.task_ids]
    waited = run.blocking_before(task_ids)
    spans = run.tasks(slow_function)
    if waited:
        raise Incorrect(
            "The cell waited for results (a ray.get inside the loop) before it had submitted all four tasks, so they "
            "could not all run at once. First submit all four with .remote(), then call ray.get once on the list.",
            evidence=plots.compare([s for s in spans if s.task_id in task_ids], _ideal(spans)))
    cpus = max([dict(s.resources).get("CPU", 1.0) for s in spans] + [1.0])
    if concurrency_allowed(4, cpus) < 4:
        raise Incorrect(f"Each slow_function task reserves {cpus:g} CPUs, so only {concurrency_allowed(4, cpus)} fit "
                        f"at once on {cpu_slots()} CPUs. A task that sleeps needs one CPU: drop num_cpus.")
    overlapped = timing.max_concurrency([s for s in spans if s.task_id in task_ids])
    return (f"All four tasks were submitted before the first ray.get, and Ray ran up to {overlapped} of them at the "
            "same time; `results` holds what they returned.")


def _ideal(spans: list[timing.Interval]) -> list[timing.Interval]:
    """Four one-second tasks side by side: the shape the exercise asks for."""
    return plots.sketch([[(0.0, 1.0)] for _ in range(4)], name="slow_function")


@exercise("01.pi_blocks", "Estimate pi in fixed-size blocks, in parallel")
def pi_blocks(estimate_pi_parallel: Callable[[int, int], Any]) -> str:
    """Runs the learner's function twice (one uneven split) and reads the tasks it started."""
    if not callable(estimate_pi_parallel):
        raise Incorrect("`estimate_pi_parallel` should be a function taking (num_samples, block_size).")
    for num_samples, block_size in [(2_000_000, 250_000), (1_100_000, 250_000)]:
        blocks = math.ceil(num_samples / block_size)
        since = time.time()
        value = estimate_pi_parallel(num_samples, block_size)
        until = time.time()
        if is_object_ref(value):
            raise Incorrect("estimate_pi_parallel returned an ObjectRef: ray.get the block counts before combining them.")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise Incorrect(f"estimate_pi_parallel should return a number, got {type(value).__name__}.")
        ran = timing.intervals(since=since, until=until, expect=blocks, timeout=10)
        if not ran:
            if value == math.pi or round(value, 5) == 3.14159:
                raise Incorrect("The function returns pi itself without running any Ray task: estimate it from the blocks.")
            raise NotAttempted("No Ray task ran while estimating: submit one task per block with .remote().")
        if len(ran) == 1:
            raise Incorrect(
                f"One task drew all {num_samples:,} points, so its memory grows with N. "
                f"Split the work into blocks of at most block_size points ({blocks} tasks here)."
            )
        if len(ran) != blocks:
            raise Incorrect(
                f"For {num_samples:,} samples in blocks of {block_size:,} expected {blocks} tasks (the last one smaller), "
                f"but {len(ran)} ran. Use math.ceil(num_samples / block_size) blocks."
            )
        if timing.max_concurrency(ran) < 2:
            raise Incorrect("The blocks ran one at a time: submit all blocks first, then ray.get the list once.")
        if abs(value - math.pi) > 0.01:
            raise Incorrect(
                f"For {num_samples:,} samples the estimate {value:.5f} is too far from pi. Divide the total count inside by "
                "the total number of samples (not by block_size), times 4; give each block its own seed."
            )
    return "Both estimates were close to pi and were computed by parallel blocks whose size does not grow with N."


@exercise("01.crossing_point", "Find the task size below which Ray's overhead outweighs its gain")
def crossing_point(sizes: Any, serial_times: Any, ray_times: Any, crossing: Any) -> str:
    """Judged for consistency with the learner's own measurements, which vary by machine."""
    if not ray_times and crossing is None:
        raise NotAttempted("Measure `ray_times` for each size and set `crossing`.")
    if any(is_object_ref(t) for t in ray_times):
        raise Incorrect("`ray_times` holds ObjectRefs: time how long ray.get takes, not the refs.")
    try:
        sizes, serial_times, ray_times = list(sizes), [float(t) for t in serial_times], [float(t) for t in ray_times]
    except (TypeError, ValueError):
        raise Incorrect("`sizes`, `serial_times` and `ray_times` should be lists of numbers.") from None
    if not (len(sizes) == len(serial_times) == len(ray_times)) or len(sizes) < 4:
        raise Incorrect(f"Expected one serial and one Ray time per size, for at least 4 sizes; got {len(sizes)} sizes, "
                        f"{len(serial_times)} serial and {len(ray_times)} Ray times.")
    if sizes != sorted(sizes) or len(set(sizes)) != len(sizes):
        raise Incorrect("`sizes` should be increasing.")
    if min(serial_times + ray_times) <= 0:
        raise Incorrect("Every time should be a positive number of seconds.")
    faster = [r < s for s, r in zip(serial_times, ray_times)]
    expected = next((sizes[i] for i in range(len(sizes)) if all(faster[i:])), None)
    if expected is None:
        if crossing is None:  # consistent with the data; a busy or one-core machine can show this
            return (f"Consistent with your measurements: Ray never stayed faster up to size {sizes[-1]:,}. "
                    "On an idle multi-core machine it wins for large tasks; rerun later to see the crossing.")
        raise Incorrect(f"Your measurements never show Ray faster from {crossing} upwards, so `crossing` cannot be {crossing}; "
                        "in that case set crossing = None.")
    if crossing != expected:
        raise Incorrect(
            f"Your own measurements say Ray is faster from size {expected} on (every larger size included), "
            f"so `crossing` should be {expected}, not {crossing}. Compute it from the lists rather than typing it."
        )
    return f"From size {expected} on, Ray beats the serial loop on this machine; below it the per-task overhead dominates."
