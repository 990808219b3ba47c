"""Lessons 00 and 01: each check passes the solution and fails each realistic wrong answer with its hint.

The wrong answers are real code run on a real (local) Ray, as a learner would write it.
"""
from __future__ import annotations

import math
import time

import pytest
import ray

from raycourse import pi
from raycourse.grading import grade

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")


def square(x):
    return x * x


def slow_function(i):
    time.sleep(1)
    return i


# --- 00.first_task ---------------------------------------------------------------


def test_first_task_correct():
    remote_square = ray.remote(square)
    since = time.time()
    squares = ray.get([remote_square.remote(i) for i in range(5)])
    v = grade("00.first_task", squares=squares, square=remote_square, since=since)
    assert v.status == "correct", v


def test_first_task_starter_is_not_attempted():
    since = time.time()
    v = grade("00.first_task", squares=[square(i) for i in range(5)], square=square, since=since)
    assert v.status == "not attempted" and "@ray.remote" in v.message


def test_first_task_hard_coded_values():
    # Runs before any test that leaves square tasks starting just before its `since`
    # (intervals forgive 50 ms of clock skew between nodes).
    remote_square = ray.remote(square)
    v = grade("00.first_task", squares=[0, 1, 4, 9, 16], square=remote_square, since=time.time())
    assert v.status == "incorrect" and "Ray ran 0 square tasks" in v.message


def test_first_task_refs_instead_of_values():
    remote_square = ray.remote(square)
    since = time.time()
    refs = [remote_square.remote(i) for i in range(5)]
    v = grade("00.first_task", squares=refs, square=remote_square, since=since)
    ray.get(refs)  # let them finish so they cannot land in the next test's window
    assert v.status == "incorrect" and "ObjectRefs" in v.message


def test_first_task_plain_function_wrong_values():
    v = grade("00.first_task", squares=[0, 1, 2, 3, 4], square=square, since=time.time())
    assert v.status == "incorrect" and "decorate it with @ray.remote" in v.message


# --- 01.parallel_calls -------------------------------------------------------------


def _parallel_answer(get_inside_loop: bool = False):
    remote_slow = ray.remote(slow_function)
    since = time.time()
    if get_inside_loop:
        results = [ray.get(remote_slow.remote(i)) for i in range(4)]
    else:
        results = ray.get([remote_slow.remote(i) for i in range(4)])
    return dict(results=results, duration=time.time() - since, slow_function=remote_slow, since=since)


def test_parallel_calls_correct():
    v = grade("01.parallel_calls", **_parallel_answer())
    assert v.status == "correct", v


def test_parallel_calls_starter_is_not_attempted():
    v = grade("01.parallel_calls", results=[0, 1, 2, 3], duration=4.0, slow_function=slow_function, since=time.time())
    assert v.status == "not attempted"


def test_parallel_calls_get_inside_loop():
    v = grade("01.parallel_calls", **_parallel_answer(get_inside_loop=True))
    assert v.status == "incorrect" and "ray.get inside the loop" in v.message


def test_parallel_calls_returned_refs():
    remote_slow = ray.remote(slow_function)
    since = time.time()
    refs = [remote_slow.remote(i) for i in range(4)]
    v = grade("01.parallel_calls", results=refs, duration=0.01, slow_function=remote_slow, since=since)
    ray.get(refs)
    assert v.status == "incorrect" and "ray.get" in v.message


def test_parallel_calls_hard_coded_results():
    remote_slow = ray.remote(slow_function)
    v = grade("01.parallel_calls", results=[0, 1, 2, 3], duration=1.2, slow_function=remote_slow, since=time.time())
    assert v.status == "incorrect" and "not 4" in v.message


def test_parallel_calls_timer_stopped_before_get():
    answer = _parallel_answer()
    answer["duration"] = 0.002  # timed only the submission
    v = grade("01.parallel_calls", **answer)
    assert v.status == "incorrect" and "cannot take less than 1 s" in v.message


# --- 01.pi_blocks ------------------------------------------------------------------

count_inside = ray.remote(pi.count_inside)


def blocks_correct(num_samples, block_size):
    sizes = [min(block_size, num_samples - s) for s in range(0, num_samples, block_size)]
    return 4 * sum(ray.get([count_inside.remote(n, seed) for seed, n in enumerate(sizes)])) / num_samples


def blocks_one_task(num_samples, block_size):
    return 4 * ray.get(count_inside.remote(num_samples)) / num_samples


def blocks_floor_division(num_samples, block_size):  # drops the last partial block
    refs = [count_inside.remote(block_size, seed) for seed in range(num_samples // block_size)]
    return 4 * sum(ray.get(refs)) / num_samples


def blocks_divides_by_block(num_samples, block_size):
    sizes = [min(block_size, num_samples - s) for s in range(0, num_samples, block_size)]
    return 4 * sum(ray.get([count_inside.remote(n, seed) for seed, n in enumerate(sizes)])) / block_size


def blocks_get_in_loop(num_samples, block_size):
    sizes = [min(block_size, num_samples - s) for s in range(0, num_samples, block_size)]
    return 4 * sum(ray.get(count_inside.remote(n, seed)) for seed, n in enumerate(sizes)) / num_samples


def test_pi_blocks_correct():
    assert grade("01.pi_blocks", estimate_pi_parallel=blocks_correct).status == "correct"


def test_pi_blocks_starter_is_not_attempted():
    v = grade("01.pi_blocks", estimate_pi_parallel=lambda n, b: pi.estimate_pi(n))
    assert v.status == "not attempted"


@pytest.mark.parametrize(
    "attempt, hint",
    [
        (blocks_one_task, "memory grows"),
        (blocks_floor_division, "math.ceil"),
        (blocks_divides_by_block, "too far from pi"),
        (blocks_get_in_loop, "one at a time"),
        (lambda n, b: math.pi, "without running any Ray task"),
        (lambda n, b: count_inside.remote(n), "ObjectRef"),
    ],
)
def test_pi_blocks_wrong_answers(attempt, hint):
    v = grade("01.pi_blocks", estimate_pi_parallel=attempt)
    assert v.status == "incorrect" and hint in v.message, v


# --- 01.crossing_point -------------------------------------------------------------

SIZES = [1_000, 10_000, 100_000, 1_000_000]
SERIAL = [0.001, 0.01, 0.1, 1.0]
RAY = [0.02, 0.03, 0.06, 0.5]


def test_crossing_point_consistent_answer_is_correct():
    v = grade("01.crossing_point", sizes=SIZES, serial_times=SERIAL, ray_times=RAY, crossing=100_000)
    assert v.status == "correct"


def test_crossing_point_ray_never_wins_is_fair_to_a_busy_machine():
    v = grade("01.crossing_point", sizes=SIZES, serial_times=SERIAL, ray_times=[0.02, 0.05, 0.2, 2.0], crossing=None)
    assert v.status == "correct" and "never stayed faster" in v.message


def test_crossing_point_starter_is_not_attempted():
    v = grade("01.crossing_point", sizes=SIZES, serial_times=SERIAL, ray_times=[], crossing=None)
    assert v.status == "not attempted"


@pytest.mark.parametrize(
    "ray_times, crossing, hint",
    [
        (RAY, 10_000, "should be 100000"),  # hard-coded a guess
        (RAY, 1_000_000, "should be 100000"),  # took the first size where Ray wins once, not from then on
        ([0.02, 0.005, 0.2, 2.0], 10_000, "never show Ray faster from 10000 upwards"),  # one noisy win is no crossing
        ([0.02, 0.03], 100_000, "at least 4 sizes"),
    ],
)
def test_crossing_point_wrong_answers(ray_times, crossing, hint):
    v = grade("01.crossing_point", sizes=SIZES, serial_times=SERIAL, ray_times=ray_times, crossing=crossing)
    assert v.status == "incorrect" and hint in v.message, v


def test_crossing_point_refs_as_times():
    ref = ray.put(0.1)
    v = grade("01.crossing_point", sizes=SIZES, serial_times=SERIAL, ray_times=[ref] * 4, crossing=None)
    assert v.status == "incorrect" and "ObjectRefs" in v.message
