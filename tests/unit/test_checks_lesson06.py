"""Lesson 06: the tree_reduce check passes a positional tree and fails realistic wrong answers with their hint.

Ray here has 8 CPUs, like the lesson, so that a level of up to 5 combines runs at once.
"""
from __future__ import annotations


import pytest
import ray

from raycourse.grading import grade
from conftest import ray_with


@pytest.fixture(scope="module", autouse=True)
def eight_cpus():
    with ray_with(num_cpus=8):
        yield


def tree_reduce(refs, op):
    level = list(refs)
    while len(level) > 1:
        paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return ray.get(level[0])


def starter(refs, op):  # combines in the notebook: the starter code
    values = ray.get(refs)
    result = values[0]
    for value in values[1:]:
        result = result + value
    return result


def serial_chain(refs, op):
    result = refs[0]
    for ref in refs[1:]:
        result = op.remote(result, ref)
    return ray.get(result)


def get_between_levels(refs, op):
    level = ray.get(list(refs))
    while len(level) > 1:
        paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(ray.put(level[-1]))
        level = ray.get(paired)
    return level[0]


def get_each_call(refs, op):  # a tree in shape, but ray.get on every op result: serial in time
    level = list(refs)
    while len(level) > 1:
        paired = [ray.put(ray.get(op.remote(level[i], level[i + 1]))) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return ray.get(level[0])


def drops_leftover(refs, op):
    level = list(refs)
    while len(level) > 1:
        level = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    return ray.get(level[0])


def by_completion(refs, op):
    pending = list(refs)
    while len(pending) > 1:
        (first,), pending = ray.wait(pending, num_returns=1)
        (second,), pending = ray.wait(pending, num_returns=1)
        pending.append(op.remote(first, second))
    return ray.get(pending[0])


def returns_ref(refs, op):
    level = list(refs)
    while len(level) > 1:
        paired = [op.remote(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def test_tree_reduce_correct():
    v = grade("06.tree_reduce", tree_reduce=tree_reduce)
    assert v.status == "correct", v


def test_tree_reduce_starter_is_not_attempted():
    v = grade("06.tree_reduce", tree_reduce=starter)
    assert v.status == "not attempted" and "No op task ran" in v.message, v


@pytest.mark.parametrize(
    "attempt, hint",
    [
        (serial_chain, "serial chain"),
        (get_between_levels, "waited for the whole previous level"),
        (get_each_call, "one after another"),
        (drops_leftover, "carry the last one over"),
        (by_completion, "not in the order the inputs finish"),
        (returns_ref, "returned an ObjectRef"),
        (lambda refs, op: ray.get(op.remote(refs[0], refs[1])), "combined exactly once"),  # only the first pair
    ],
)
def test_tree_reduce_wrong_answers(attempt, hint):
    v = grade("06.tree_reduce", tree_reduce=attempt)
    assert v.status == "incorrect" and hint in v.message, v
