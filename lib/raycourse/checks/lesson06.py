"""Checks for lesson 06 (tree reduce): a general ``tree_reduce(refs, op)``.

The check calls the learner's function with its own inputs and its own ``op``,
a remote function whose values carry a trace: the running total (did every
input count once?), the concatenated letters (was the order kept? the op is
associative but not commutative), the depth of the dependency tree, and when
each combine ran. Together with the intervals Ray recorded this tells a
balanced tree from a serial chain, a tree that waits in the driver between
levels, a tree that drops the odd leftover, and a tree that pairs by completion
order, without any wall-clock window.
"""
from __future__ import annotations

import math
import string
import time
from typing import Any, Callable

from .. import timing
from ..grading import Incorrect, NotAttempted, exercise
from .evidence import is_ref as is_object_ref

COMBINE_SECONDS = 0.4
Part = tuple  # (total, letters, depth, merges); merges = ((depth, start, end), ...)

_remote: dict[str, Any] = {}


def _grader_leaf(i: int, delay: float) -> Part:
    """One input of the reduction, ready after ``delay`` seconds."""
    time.sleep(delay)
    return (i, string.ascii_lowercase[i], 0, ())


def _grader_combine(a: Part, b: Part) -> Part:
    """Associative, not commutative (letters concatenate), and it records its own depth and timing."""
    start = time.time()
    time.sleep(COMBINE_SECONDS)
    depth = max(a[2], b[2]) + 1
    return (a[0] + b[0], a[1] + b[1], depth, a[3] + b[3] + ((depth, start, time.time()),))


def _tasks() -> tuple[Any, Any]:
    """The remote versions, made once (importing ray only when a check runs)."""
    import ray

    if not _remote:
        _remote["leaf"] = ray.remote(_grader_leaf)
        _remote["combine"] = ray.remote(_grader_combine)
    return _remote["leaf"], _remote["combine"]


def _run(tree_reduce: Callable[..., Any], delays: list[float]) -> tuple[Any, list[timing.Interval]]:
    """Call the learner's function on fresh leaves; return its value and the combine intervals."""
    leaf, combine = _tasks()
    n = len(delays)
    refs = [leaf.remote(i, d) for i, d in enumerate(delays)]
    since = time.time()
    value = tree_reduce(refs, combine)
    if is_object_ref(value):
        raise Incorrect("tree_reduce returned an ObjectRef: call ray.get on the final ref and return the value.")
    spans = timing.intervals(name="_grader_combine", since=since, expect=n - 1, timeout=10, grace=3)
    return value, spans


def _judge_value(value: Any, spans: list[timing.Interval], n: int) -> tuple[int, tuple]:
    """Common verdicts on one run; returns the dependency depth and the merge trace."""
    if not spans:
        raise NotAttempted(
            "No op task ran: tree_reduce combines the values in the notebook. Call op.remote(a, b) on pairs of refs."
        )
    if not (isinstance(value, tuple) and len(value) == 4):
        raise Incorrect(
            f"tree_reduce should return what the last op call returned (here a 4-tuple), got {type(value).__name__}. "
            "Return ray.get(final_ref), and do not combine values yourself."
        )
    total, letters, depth, merges = value
    expected = sum(range(n))
    if total != expected:
        leftover = " With an odd number of items, carry the last one over to the next level; do not drop it." if total < expected else ""
        raise Incorrect(f"For {n} inputs the result counts {total}, expected {expected}: every input must be combined exactly once.{leftover}")
    want = string.ascii_lowercase[:n]
    if letters != want:
        raise Incorrect(
            f"With op = string concatenation the result was {letters!r}, expected {want!r}: op is associative but not "
            "commutative. Pair neighbours by position (0 with 1, 2 with 3, ...), not in the order the inputs finish."
        )
    if len(spans) != n - 1:
        raise Incorrect(f"Reducing {n} inputs should take exactly {n - 1} op calls, but {len(spans)} ran.")
    best = math.ceil(math.log2(n))
    if depth == n - 1:
        raise Incorrect(
            f"Your reduction is a serial chain: {n} inputs took {depth} steps, each waiting for the previous one. "
            f"Combine pairs in parallel, level by level, for {best} steps."
        )
    if depth > best:
        raise Incorrect(f"Your tree is {depth} levels deep for {n} inputs; a balanced tree needs {best}. Pair neighbours at every level.")
    return depth, merges


def _waits_between_levels(merges: tuple) -> bool:
    """True if every combine of one level started only after every combine of the level below ended."""
    by_depth: dict[int, list[tuple[float, float]]] = {}
    for depth, start, end in merges:
        by_depth.setdefault(depth, []).append((start, end))
    return all(
        min(s for s, _ in by_depth[d + 1]) >= max(e for _, e in by_depth[d]) - 0.01
        for d in sorted(by_depth)
        if d + 1 in by_depth
    )


@exercise("06.tree_reduce", "Reduce any number of inputs with a balanced tree of tasks")
def tree_reduce_check(tree_reduce: Any) -> str:
    """Run the learner's ``tree_reduce`` on 8 equal inputs, then on 11 inputs that finish in reverse order."""
    if not callable(tree_reduce):
        raise Incorrect("`tree_reduce` should be a function taking (refs, op).")
    # 8 equal inputs: in time, a tree runs 4, 2, then 1 combines; measure its levels from Ray's records.
    for attempt in range(2):
        value, spans = _run(tree_reduce, [0.0] * 8)
        depth, _ = _judge_value(value, spans, 8)
        levels = timing.levels(spans)
        if levels <= depth:
            break
    else:
        raise Incorrect(
            f"Your tree has {depth} levels, but its 7 op calls ran in {levels} waves, one after another. "
            "Calling ray.get on each op result before the next call serializes them: pass refs to op.remote "
            "and call ray.get once, on the final ref."
        )
    # 11 inputs, the last ready first: odd leftovers, order, and no waiting for a whole level in the driver.
    for attempt in range(2):
        value, spans = _run(tree_reduce, [0.15 * (11 - i) for i in range(11)])
        depth11, merges = _judge_value(value, spans, 11)
        if not _waits_between_levels(merges):
            break
    else:
        raise Incorrect(
            "Each level waited for the whole previous level: ray.get between levels makes every combine wait for "
            "the slowest input. Pass the refs of one level straight to op.remote for the next, and ray.get only the last."
        )
    return (
        f"8 inputs took {depth} levels (measured {levels} waves of 4, 2, 1 combines) and 11 inputs {depth11} levels, "
        "in order, with combines starting as soon as their two inputs were ready."
    )
