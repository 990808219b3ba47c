"""Lesson 03 (ray.wait): each check passes the solution and fails realistic wrong answers with their hint.

Every answer below is real code run on the shared local Ray (4 CPUs), as a learner would write it.
"""
from __future__ import annotations

import io
import time

import pytest
import ray
from tqdm.auto import tqdm

from raycourse.grading import grade

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")

DURATIONS = [0.9, 1.5, 0.7, 0.3, 1.9, 1.2]
TEN_DURATIONS = [1.4, 0.9, 0.3, 0.7, 0.8, 0.9, 1.2, 0.7, 0.9, 1.4]
N, K = 12, 3


@ray.remote
def timed_task(i, duration):
    start = time.time()
    time.sleep(duration)
    return i, start, time.time()


@ray.remote
def unit_of_work(i):
    time.sleep(0.2 + 0.15 * (i % 4))
    return i * i


# --- 03.first_three ---------------------------------------------------------------


def _six():
    return [timed_task.remote(i, d) for i, d in enumerate(DURATIONS)]


def _grade_first(first_three, the_rest, first_three_at, refs):
    return grade("03.first_three", first_three=first_three, the_rest=the_rest, first_three_at=first_three_at, refs=refs)


def test_first_three_correct():
    refs = _six()
    ready, not_ready = ray.wait(refs, num_returns=3)
    first_three = ray.get(ready)
    at = time.time()
    v = _grade_first(first_three, ray.get(not_ready), at, refs)
    assert v.status == "correct", v


def test_first_three_starter_is_not_attempted():
    refs = _six()
    at = time.time()
    ray.get(refs)
    assert _grade_first(None, None, at, refs).status == "not attempted"


def test_first_three_first_submitted_instead_of_first_finished():
    refs = _six()
    first_three = ray.get(refs[:3])
    at = time.time()
    v = _grade_first(first_three, ray.get(refs[3:]), at, refs)
    assert v.status == "incorrect" and "first three tasks you *submitted*" in v.message, v


def test_first_three_get_all_then_sort_by_end():
    refs = _six()
    everything = sorted(ray.get(refs), key=lambda r: r[2])
    first_three = everything[:3]
    at = time.time()
    v = _grade_first(first_three, everything[3:], at, refs)
    assert v.status == "incorrect" and "after all six tasks had finished" in v.message, v


def test_first_three_returned_refs():
    refs = _six()
    ready, not_ready = ray.wait(refs, num_returns=3)
    at = time.time()
    v = _grade_first(ready, not_ready, at, refs)
    ray.get(refs)
    assert v.status == "incorrect" and "ObjectRef" in v.message, v


def test_first_three_default_num_returns():
    refs = _six()
    ready, not_ready = ray.wait(refs)
    first_three = ray.get(ready)
    at = time.time()
    v = _grade_first(first_three, ray.get(not_ready), at, refs)
    assert v.status == "incorrect" and "num_returns=3" in v.message, v


def test_first_three_hard_coded():
    refs = _six()
    at = time.time()
    ray.get(refs)
    fake = [(3, 0.0, 0.3), (2, 0.0, 0.7), (0, 0.0, 0.9)]
    v = _grade_first(fake, [(1, 0.0, 1.5), (5, 0.0, 2.1), (4, 0.0, 2.2)], at, refs)
    assert v.status == "incorrect" and "none of this run's tasks returned" in v.message, v


# --- 03.process_in_order ----------------------------------------------------------


def _run_processing(loop):
    """Submit the ten tasks, let ``loop(refs, process)`` handle them, and grade the log."""
    processed = []

    def process(result):
        started = time.time()
        time.sleep(0.1)
        processed.append((result[0], started, time.time()))

    since = time.time()
    refs = [timed_task.remote(i, d) for i, d in enumerate(TEN_DURATIONS)]
    loop(refs, process)
    ray.get(refs)
    return grade("03.process_in_order", processed=processed, refs=refs, since=since)


def wait_loop(refs, process):
    remaining = refs
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=1)
        process(ray.get(ready[0]))


def starter_loop(refs, process):
    for result in ray.get(refs):
        process(result)


def get_all_then_completion_order(refs, process):
    for result in sorted(ray.get(refs), key=lambda r: r[2]):
        process(result)


def get_each_in_submission_order(refs, process):
    for ref in refs:
        process(ray.get(ref))


def wait_on_the_full_list(refs, process):  # a bounded version of the endless busy loop
    for _ in range(len(refs)):
        ready, _ = ray.wait(refs, num_returns=1)
        process(ray.get(ready[0]))


def wait_for_all_then_process(refs, process):
    ready, _ = ray.wait(refs, num_returns=len(refs))
    for ref in ready:
        process(ray.get(ref))


def test_process_in_order_correct():
    v = _run_processing(wait_loop)
    assert v.status == "correct", v


def test_process_in_order_starter_is_not_attempted():
    assert _run_processing(starter_loop).status == "not attempted"


@pytest.mark.parametrize(
    "loop, hint",
    [
        (get_all_then_completion_order, "nothing overlapped"),
        (get_each_in_submission_order, "You waited for task 0"),
        (wait_on_the_full_list, "more than once"),
        (wait_for_all_then_process, "all ten tasks"),
    ],
)
def test_process_in_order_wrong_answers(loop, hint):
    v = _run_processing(loop)
    assert v.status in ("incorrect", "not attempted") and hint in v.message, v
    if loop is not wait_for_all_then_process:
        assert v.status == "incorrect", v


def test_process_in_order_nothing_processed():
    since = time.time()
    refs = [timed_task.remote(i, 0.1) for i in range(10)]
    ray.get(refs)
    assert grade("03.process_in_order", processed=[], refs=refs, since=since).status == "not attempted"


# --- 03.limit_in_flight -----------------------------------------------------------


def _bar():
    return tqdm(total=N, file=io.StringIO())


def limit_correct(bar, k=K, drain=True, update=True):
    results, in_flight = [], []
    for i in range(N):
        while len(in_flight) >= k:
            ready, in_flight = ray.wait(in_flight, num_returns=1)
            results.extend(ray.get(ready))
            if update:
                bar.update(len(ready))
        in_flight.append(unit_of_work.remote(i))
    while drain and in_flight:
        ready, in_flight = ray.wait(in_flight, num_returns=1)
        results.extend(ray.get(ready))
        if update:
            bar.update(len(ready))
    ray.get(in_flight)  # the forgotten ones still finish before the next test
    return results


def limit_off_by_one(bar):
    results, in_flight = [], []
    for i in range(N):
        if len(in_flight) > K:  # lets K + 1 run
            ready, in_flight = ray.wait(in_flight, num_returns=1)
            results.extend(ray.get(ready))
            bar.update(len(ready))
        in_flight.append(unit_of_work.remote(i))
    results.extend(ray.get(in_flight))
    bar.update(len(in_flight))
    return results


def limit_all_at_once(bar):
    results = ray.get([unit_of_work.remote(i) for i in range(N)])
    bar.update(N)
    return results


def limit_batches(bar):
    results = []
    for first in range(0, N, K):
        results.extend(ray.get([unit_of_work.remote(i) for i in range(first, first + K)]))
        bar.update(K)
    return results


def limit_serial(bar):
    results = []
    for i in range(N):
        results.append(ray.get(unit_of_work.remote(i)))
        bar.update(1)
    return results


def _grade_limit(attempt, **options):
    bar = _bar()
    since = time.time()
    results = attempt(bar, **options)
    return grade("03.limit_in_flight", results=results, bar=bar, since=since)


def test_limit_in_flight_correct():
    v = _grade_limit(limit_correct)
    assert v.status == "correct", v


def test_limit_in_flight_starter_is_not_attempted():
    assert _grade_limit(limit_serial).status == "not attempted"


@pytest.mark.parametrize(
    "attempt, options, hint",
    [
        (limit_all_at_once, {}, "more than K = 3"),
        (limit_off_by_one, {}, "Up to 4 tasks ran at once"),
        (limit_batches, {}, "batches of 3"),
        (limit_correct, {"drain": False}, "has 9 of the 12 values"),
        (limit_correct, {"update": False}, "progress bar shows 0 of 12"),
        (limit_correct, {"k": 2}, "At most 2 tasks ran at once"),
    ],
)
def test_limit_in_flight_wrong_answers(attempt, options, hint):
    v = _grade_limit(attempt, **options)
    assert v.status == "incorrect" and hint in v.message, v


def test_limit_in_flight_returned_refs():
    refs = [unit_of_work.remote(i) for i in range(N)]
    v = grade("03.limit_in_flight", results=refs, bar=_bar(), since=time.time())
    ray.get(refs)
    assert v.status == "incorrect" and "ObjectRefs" in v.message, v
