"""Checks for lesson 00 (set-up): the first remote function.

Evidence: the cell that set ``squares`` (its run, from the journal), the
``square`` tasks it fetched (found by the remote function object itself), the
arguments they were submitted with, and what ``ray.get`` returned for them.
"""
from __future__ import annotations

from typing import Any

from ..grading import Incorrect, NotAttempted, exercise
from .evidence import args_of, expect_values, holds_ref, is_remote_function, parallel_without_ray, run_of, same_values

EXPECTED = [0, 1, 4, 9, 16]


@exercise("00.first_task", "Turn square() into a Ray task and run it for 0..4")
def first_task(squares: Any, square: Any) -> str:
    run = run_of("squares")
    if not is_remote_function(square):
        if same_values(squares, EXPECTED) and not parallel_without_ray(run.source):
            raise NotAttempted("`square` still runs in the notebook. Decorate it with @ray.remote and call "
                               "square.remote(i).")
        raise Incorrect("`square` is a plain Python function: decorate it with @ray.remote so Ray runs it as a task.")
    if holds_ref(squares):
        raise Incorrect("`squares` holds ObjectRefs (futures), not numbers: call ray.get on the list of refs.")
    values = expect_values(squares, EXPECTED, "squares")
    fetched = run.fetched_from(square)
    if not fetched:
        made = run.submissions(square)
        if made:
            raise Incorrect(f"The cell submitted {len(made)} square task(s) but never fetched their results: the "
                            "numbers in `squares` were computed in the notebook. Set squares = ray.get(refs).")
        raise Incorrect("No square task ran in the cell that set `squares`: the numbers were computed in the "
                        "notebook. Call square.remote(i) for each i and ray.get the refs.")
    by_argument = {}
    for submission, value in fetched:
        arguments = args_of(submission)
        by_argument[arguments[0] if arguments else None] = value
    if sorted(k for k in by_argument if isinstance(k, int)) != list(range(5)):
        raise Incorrect(f"Ray ran square for {sorted(by_argument, key=repr)}, not for each of 0, 1, 2, 3, 4: call "
                        "square.remote(i) once for each i in range(5).")
    if [by_argument[i] for i in range(5)] != values:
        raise Incorrect("`squares` does not hold what the square tasks returned: keep the values ray.get gives you, "
                        "in order.")
    return "Five square tasks ran on Ray, and `squares` holds the values ray.get fetched from them."
