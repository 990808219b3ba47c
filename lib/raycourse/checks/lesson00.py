"""Checks for lesson 00 (set-up): the first remote function."""
from __future__ import annotations

from typing import Any

from .. import timing
from ..grading import Incorrect, exercise, expect_values
from ._common import require_remote, same_values


@exercise("00.first_task", "Turn square() into a Ray task and run it for 0..4")
def first_task(squares: Any, square: Any, since: float) -> str:
    require_remote(square, "square", computed=same_values(squares, [0, 1, 4, 9, 16]))
    expect_values(squares, [0, 1, 4, 9, 16], "squares")
    ran = timing.intervals(name="square", since=since, expect=5)
    if len(ran) < 5:
        raise Incorrect(
            f"Ray ran {len(ran)} square tasks since `since` was set, not 5. "
            "Call square.remote(i) for each i, then ray.get the list of refs."
        )
    return "Five square tasks ran on Ray and you fetched their values with ray.get."
