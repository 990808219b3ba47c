"""Monte Carlo estimates of pi, the running example of lesson 01.

Throw points uniformly into the unit square; the fraction inside the quarter
circle tends to pi/4. Memory grows with the number of points thrown at once,
which is why lesson 01 splits large estimates into fixed-size blocks.
"""
from __future__ import annotations

import numpy as np


def count_inside(num_samples: int, seed: int | None = None) -> int:
    """How many of ``num_samples`` random points in the unit square fall inside the quarter circle."""
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    rng = np.random.default_rng(seed)
    xy = rng.random((num_samples, 2))
    return int(np.count_nonzero((xy * xy).sum(axis=1) <= 1.0))


def estimate_pi(num_samples: int, seed: int | None = None) -> float:
    """Estimate pi from ``num_samples`` points, all drawn at once (memory grows with N)."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    return 4.0 * count_inside(num_samples, seed) / num_samples


def standard_error(num_samples: int) -> float:
    """One standard deviation of the estimate: 4 * sqrt(p (1 - p) / N) with p = pi / 4."""
    p = np.pi / 4
    return float(4 * np.sqrt(p * (1 - p) / num_samples))
