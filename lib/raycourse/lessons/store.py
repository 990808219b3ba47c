"""Small measuring tools for the object-store lesson: timings, test arrays, store usage.

Why these live here: a lesson cell should show *what* is measured (``ray.put``
against ``pickle``, by value against by reference), not the bookkeeping around
it. Two pieces of bookkeeping matter for honest numbers:

* **Best of several runs.** On a shared or busy machine a single timing mostly
  measures the neighbours; the fastest of a few repeats is close to what the
  operation itself costs.
* **Store usage from Ray, not from guesses.** :func:`store_usage` reads the
  object store's own statistics (the same numbers as ``ray memory --stats-only``),
  which works without the dashboard.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from ..timing import best_time  # noqa: F401  (re-exported: lesson 04 times its comparisons with it)

__all__ = ["MIB", "StoreUsage", "array_of_mb", "best_time", "store_usage"]

MIB = 1024 * 1024


def array_of_mb(megabytes: float, seed: int = 0) -> np.ndarray:
    """A square-ish float64 array of about ``megabytes`` MiB, filled with random numbers.

    Random, not zeros: compressible data would flatter some serializers.
    """
    if not isinstance(megabytes, (int, float)) or isinstance(megabytes, bool) or megabytes <= 0:
        raise ValueError(f"megabytes should be a positive number, got {megabytes!r}")
    count = int(megabytes * MIB) // 8
    columns = 1024 if count >= 1024 else count
    return np.random.default_rng(seed).random((count // columns, columns))


@dataclass(frozen=True)
class StoreUsage:
    """How much of the shared-memory object store is in use, summed over the cluster's nodes."""

    used_mib: float
    objects: int
    percent_full: float

    def __str__(self) -> str:
        return f"object store: {self.used_mib:g} MiB in {self.objects} objects ({self.percent_full:.1f}% full)"


_STATS = re.compile(r"Plasma memory usage (\d+(?:\.\d+)?) MiB, (\d+) objects, (\d+(?:\.\d+)?)% full")


def _read_usage() -> StoreUsage:
    import ray
    from ray._private.internal_api import memory_summary

    text = memory_summary(address=ray.get_runtime_context().gcs_address, stats_only=True)
    match = _STATS.search(text)
    if match is None:
        raise RuntimeError(f"Could not read the object store statistics from Ray's memory summary:\n{text}")
    return StoreUsage(float(match[1]), int(match[2]), float(match[3]))


def store_usage(settle: float = 5.0, quiet: float = 0.75) -> StoreUsage:
    """The object store's usage, as Ray's memory summary reports it, once it has stopped changing.

    Creating and freeing objects is asynchronous (the owner tells the store a
    moment after the last reference goes, later on a busy machine). So this
    reads every quarter second and returns once the reading has not changed
    for ``quiet`` seconds, or after ``settle`` seconds at most; that makes
    before/after comparisons in a notebook dependable. ``settle=0`` reads once.
    """
    import ray

    if not ray.is_initialized():
        raise RuntimeError("Ray is not running: call raycourse.start(...) first.")
    if settle < 0 or quiet < 0:
        raise ValueError(f"settle and quiet must be seconds >= 0, got settle={settle!r}, quiet={quiet!r}")
    deadline = time.monotonic() + settle
    usage = _read_usage()
    unchanged_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - unchanged_since < quiet:
        time.sleep(0.25)
        previous, usage = usage, _read_usage()
        if usage != previous:
            unchanged_since = time.monotonic()
    return usage
