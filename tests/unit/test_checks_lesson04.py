"""Lesson 04 (object store): the put_once check grades structure (puts, task arguments), and objects helpers.

Every answer is a real ``run_tasks(array, task)`` a learner could write, run on the shared local Ray.
"""
from __future__ import annotations

import numpy as np
import pytest
import ray

from raycourse import objects
from raycourse.grading import grade

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")


def put_once(array, task):
    ref = ray.put(array)
    return ray.get([task.remote(ref, i) for i in range(20)])


def by_value(array, task):  # the starter
    return ray.get([task.remote(array, i) for i in range(20)])


def put_in_loop(array, task):
    return ray.get([task.remote(ray.put(array), i) for i in range(20)])


def put_then_get_in_driver(array, task):
    ref = ray.put(array)
    local = ray.get(ref)
    return ray.get([task.remote(local, i) for i in range(20)])


def returns_refs(array, task):
    ref = ray.put(array)
    return [task.remote(ref, i) for i in range(20)]


def ref_inside_a_list(array, task):
    ref = ray.put(array)
    return ray.get([task.remote([ref], i) for i in range(20)])


def only_ten_tasks(array, task):
    ref = ray.put(array)
    return ray.get([task.remote(ref, i) for i in range(10)])


def test_put_once_correct():
    v = grade("04.put_once", run_tasks=put_once)
    assert v.status == "correct", v


def test_put_once_starter_is_not_attempted():
    v = grade("04.put_once", run_tasks=by_value)
    assert v.status == "not attempted" and "ray.put" in v.message, v


@pytest.mark.parametrize(
    "attempt, hint",
    [
        (put_in_loop, "ray.put ran 20 times"),
        (put_then_get_in_driver, "20 calls received the array itself"),
        (returns_refs, "ObjectRefs"),
        (ref_inside_a_list, "inside a list"),
        (only_ten_tasks, "called task.remote 10 times"),
    ],
)
def test_put_once_wrong_answers(attempt, hint):
    v = grade("04.put_once", run_tasks=attempt)
    assert v.status == "incorrect" and hint in v.message, v


def test_put_once_not_a_function():
    v = grade("04.put_once", run_tasks=None)
    assert v.status == "incorrect" and "function" in v.message


def test_put_once_restores_ray_put_even_if_the_answer_raises():
    original = ray.put

    def broken(array, task):
        ray.put(array)
        raise RuntimeError("oops")

    v = grade("04.put_once", run_tasks=broken)
    assert v.status == "incorrect" and "oops" in v.message
    assert ray.put is original


# --- raycourse.objects ---------------------------------------------------------------


def test_array_of_mb_size_and_bad_input():
    a = objects.array_of_mb(8)
    assert a.nbytes == 8 * 2**20 and a.shape == (1024, 1024)
    with pytest.raises(ValueError, match="positive"):
        objects.array_of_mb(0)


def test_best_time_takes_the_fastest_and_checks_input():
    assert objects.best_time(lambda: None, 3) < 0.01
    with pytest.raises(TypeError, match="lambda"):
        objects.best_time(42)
    with pytest.raises(ValueError):
        objects.best_time(lambda: None, 0)


def _usage_until(condition, timeout=20.0):
    """Poll the store until ``condition(usage)`` holds: freeing is asynchronous, slower on a busy machine."""
    import time

    deadline = time.monotonic() + timeout
    usage = objects.store_usage()
    while not condition(usage) and time.monotonic() < deadline:
        usage = objects.store_usage(settle=0.5)
    return usage


def test_store_usage_follows_a_put_and_a_del():
    ref = ray.put(np.zeros(16 * 2**20 // 8))
    during = _usage_until(lambda u: u.used_mib >= 16)  # other tests' objects may be freed meanwhile
    assert during.used_mib >= 16 and during.objects >= 1, during
    del ref
    after = _usage_until(lambda u: u.used_mib <= during.used_mib - 15)
    assert after.used_mib <= during.used_mib - 15, (during, after)
    assert "MiB" in str(after)


def test_store_usage_rejects_negative_settle():
    with pytest.raises(ValueError, match="settle"):
        objects.store_usage(settle=-1)
