"""Adversarial catalogue, lesson 06 (tree reduce): answers learners write, each with the verdict it must get.

The check calls the learner's ``tree_reduce(refs, op)`` with inputs and an ``op``
of its own; these answers are the exercise cell as a learner might write it.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness import assert_verdict, ids, judge, right, starter, wrong

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")

ROOT = Path(__file__).resolve().parents[2]
SETUP = """
import functools
import math
import time
from collections import deque

import numpy as np
import ray

@ray.remote
def create_vector(i, size=1_000):
    return np.full(size, float(i))

@ray.remote
def add(a, b):
    return a + b
"""
CALL = "\nprint(tree_reduce([create_vector.remote(i) for i in range(5)], add)[:3])\n"


def called(code: str) -> str:
    """The exercise cell: the learner's tree_reduce, then the lesson's own call of it."""
    return textwrap.dedent(code) + CALL


STARTER = called("""
    def tree_reduce(refs, op):
        # In the notebook, one value after another, and op is never used.
        values = ray.get(refs)
        result = values[0]
        for value in values[1:]:
            result = result + value
        return result
""")
SOLUTION = called("""
    def tree_reduce(refs, op):
        level = list(refs)
        while len(level) > 1:
            paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                paired.append(level[-1])  # the odd one out waits for the next level
            level = paired
        return ray.get(level[0])
""")
CHAIN = called("""
    def tree_reduce(refs, op):
        total = refs[0]
        for ref in refs[1:]:
            total = op.remote(total, ref)
        return ray.get(total)
""")

TREE_REDUCE = [
    starter("the starter", STARTER, "still the starter", "op.remote"),
    starter("the starter, comments reworded", called("""
        def tree_reduce(refs, op):
            values = ray.get(refs)   # fetch everything
            result = values[0]
            for value in values[1:]:
                result = result + value  # TODO: a tree
            return result
    """), "still the starter"),
    right("the solution", SOLUTION),
    right("recursive halving", called("""
        def tree_reduce(refs, op):
            def build(items):
                if len(items) == 1:
                    return items[0]
                middle = (len(items) + 1) // 2
                return op.remote(build(items[:middle]), build(items[middle:]))
            return ray.get(build(list(refs)))
    """)),
    right("while loop with an index, the odd one carried first", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                start = len(level) % 2
                next_level = level[:start]
                i = start
                while i < len(level):
                    next_level.append(op.options(name="combine").remote(level[i], level[i + 1]))
                    i += 2
                level = next_level
            (final,) = ray.get(level)
            return final
    """)),
    right("zip of evens and odds, leftover appended", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                leftover = [level[-1]] if len(level) % 2 else []
                level = [op.remote(a, b) for a, b in zip(level[0::2], level[1::2])] + leftover
            return ray.get(level[0])
    """)),
    right("after an earlier serial-chain attempt", SOLUTION, before=(CHAIN,)),
    wrong("a serial chain", CHAIN, "serial chain", "levels"),
    wrong("pairing by completion order (ray.wait)", called("""
        def tree_reduce(refs, op):
            pending = list(refs)
            while len(pending) > 1:
                (first,), pending = ray.wait(pending, num_returns=1)
                (second,), pending = ray.wait(pending, num_returns=1)
                pending.append(op.remote(first, second))
            return ray.get(pending[0])
    """), "out of order", "ray.wait", "by position"),
    wrong("a queue that wraps the odd one around", called("""
        def tree_reduce(refs, op):
            queue = deque(refs)
            while len(queue) > 1:
                a = queue.popleft()
                b = queue.popleft()
                queue.append(op.remote(a, b))
            return ray.get(queue[0])
    """), "wrong order", "by position"),
    wrong("the odd leftover dropped", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                level = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            return ray.get(level[0])
    """), "never reached op", "carry the last one over"),
    wrong("a tree for powers of two only", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                level = [op.remote(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            return ray.get(level[0])
    """), "IndexError", "odd number", "not only powers of two"),
    wrong("log2(n) levels: only for powers of two", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            for _ in range(int(math.log2(len(level)))):
                level = [op.remote(level[2 * k], level[2 * k + 1]) for k in range(len(level) // 2)]
            return ray.get(level[0])
    """), "never reached op"),
    wrong("ray.get between levels", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
                if len(level) % 2:
                    paired.append(level[-1])
                level = ray.get(paired)
            return level[0]
    """), "values fetched in the notebook", "between levels"),
    wrong("ray.get then ray.put between levels", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
                if len(level) % 2:
                    paired.append(level[-1])
                level = [ray.put(value) for value in ray.get(paired)]
            return ray.get(level[0])
    """), "put back with ray.put", "between levels"),
    wrong("ray.get of each level as a barrier, refs kept", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
                if len(level) % 2:
                    paired.append(level[-1])
                ray.get(paired)  # let the level finish first
                level = paired
            return ray.get(level[0])
    """), "waited (ray.get)", "between levels"),
    wrong("ray.wait for the whole level between levels", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
                if len(level) % 2:
                    paired.append(level[-1])
                ray.wait(paired, num_returns=len(paired))
                level = paired
            return ray.get(level[0])
    """), "waited (ray.wait)", "between levels"),
    wrong("values combined in the notebook with op's own function", called("""
        def tree_reduce(refs, op):
            values = ray.get(list(refs))
            while len(values) > 1:
                pairs = [op._function(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
                values = pairs + values[len(pairs) * 2:]
            return values[0]
    """), "never called op.remote", "in the notebook"),
    wrong("functools.reduce in the notebook", called("""
        def tree_reduce(refs, op):
            return functools.reduce(lambda a, b: a + b, ray.get(refs))
    """), "never called op.remote"),
    wrong("returns the final ref", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
                if len(level) % 2:
                    paired.append(level[-1])
                level = paired
            return level[0]
    """), "returned an ObjectRef"),
    wrong("n calls: a chain from an empty start", called("""
        def tree_reduce(refs, op):
            total = ray.put(0)
            for ref in refs:
                total = op.remote(total, ref)
            return ray.get(total)
    """), "exactly", "op calls", "starting value"),
    wrong("operands swapped", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                paired = [op.remote(level[i + 1], level[i]) for i in range(0, len(level) - 1, 2)]
                if len(level) % 2:
                    paired.append(level[-1])
                level = paired
            return ray.get(level[0])
    """), "wrong order", "left one first"),
    wrong("the odd one combined with itself", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                if len(level) % 2:
                    level = level + [level[-1]]
                level = [op.remote(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            return ray.get(level[0])
    """), "more than once"),
    wrong("threads combining fetched values", called("""
        from concurrent.futures import ThreadPoolExecutor

        def tree_reduce(refs, op):
            values = ray.get(refs)
            with ThreadPoolExecutor(4) as pool:
                while len(values) > 1:
                    pairs = list(pool.map(lambda k: values[k] + values[k + 1], range(0, len(values) - 1, 2)))
                    values = pairs + values[len(pairs) * 2:]
            return values[0]
    """), "never called op.remote", "threads"),
    wrong("a single input sent through op", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            if len(level) == 1:
                return ray.get(op.remote(level[0], ray.put("")))
            while len(level) > 1:
                paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
                if len(level) % 2:
                    paired.append(level[-1])
                level = paired
            return ray.get(level[0])
    """), "single input", "nothing to combine"),
    wrong("the lesson's add instead of the op given", called("""
        def tree_reduce(refs, op):
            level = list(refs)
            while len(level) > 1:
                paired = [add.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
                if len(level) % 2:
                    paired.append(level[-1])
                level = paired
            return ray.get(level[0])
    """), "`add`", "not of the `op`"),
    wrong("not a function", "tree_reduce = None\n", "should be a function"),
]


@pytest.mark.parametrize("answer", TREE_REDUCE, ids=ids(TREE_REDUCE))
def test_tree_reduce(answer):
    assert_verdict(judge("06.tree_reduce", SETUP, answer), answer)


def test_the_check_knows_the_lessons_starter():
    """The check tells the starter from other code by its bytecode: it must be the learners' starter."""
    from raycourse.checks.lesson06 import STARTER as KNOWN

    cells = json.loads((ROOT / "notebooks" / "06_tree_reduce.ipynb").read_text())["cells"]
    exercise = next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and "def tree_reduce" in "".join(c["source"]))
    assert textwrap.dedent(KNOWN).strip() in exercise
    assert textwrap.dedent(KNOWN).strip() in STARTER
