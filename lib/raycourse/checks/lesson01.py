"""Checks for lesson 01 (tasks): parallel calls, pi in blocks, the overhead crossing point."""
from __future__ import annotations

import math
import time
from typing import Any, Callable

from .. import timing
from ..grading import Incorrect, NotAttempted, exercise, expect_values, is_object_ref
from ._common import require_duration, require_remote, same_values


@exercise("01.parallel_calls", "Run four one-second calls of slow_function in parallel")
def parallel_calls(results: Any, duration: Any, slow_function: Any, since: float) -> str:
    """Concurrency is read from the intervals Ray recorded, never from a wall-clock window."""
    require_remote(slow_function, "slow_function", computed=same_values(results, [0, 1, 2, 3]))
    expect_values(results, [0, 1, 2, 3])
    ran = timing.intervals(name="slow_function", since=since, expect=4)
    if len(ran) < 4:
        raise Incorrect(
            f"Ray ran {len(ran)} slow_function tasks after your timer started, not 4. "
            "Submit slow_function.remote(i) for each i (the values must come from those tasks)."
        )
    require_duration(duration, 1.0, "a one-second task")
    if timing.max_concurrency(ran) < 2:
        raise Incorrect(
            "The four tasks ran one after another. Calling ray.get inside the loop waits for each task "
            "before submitting the next: first submit all four with .remote(), then call ray.get once on the list."
        )
    return f"The four tasks overlapped (up to {timing.max_concurrency(ran)} at once); the cell took {duration:.2f} s."


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
