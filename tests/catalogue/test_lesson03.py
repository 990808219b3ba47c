"""Adversarial catalogue, lesson 03: ray.wait loops, each answer with the verdict it must get.

``03.first_three`` is judged on the exercise cell's run; the other two checks call the
learner's function with tasks, counts and ``k`` of their own, so those answers only
define the function (as the lesson's cell does before running it on its own tasks).
"""
from __future__ import annotations

import pytest

from harness import assert_verdict, ids, judge, right, starter, wrong

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")

SETUP = """
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import ray


@ray.remote
def timed_task(i, duration):
    start = time.time()
    time.sleep(duration)
    return i, start, time.time()


durations = [0.45, 0.75, 0.35, 0.15, 0.95, 0.6]
"""
SUBMIT = "refs = [timed_task.remote(i, d) for i, d in enumerate(durations)]\n"
SOLUTION = SUBMIT + """
ready, not_ready = ray.wait(refs, num_returns=3)
first_three = ray.get(ready)
the_rest = ray.get(not_ready)
"""

# --- 03.first_three -----------------------------------------------------------------------------------

FIRST_THREE = [
    starter("the starter", SUBMIT + "first_three = None\nthe_rest = None\n", "Set `first_three`"),
    right("the solution", SOLUTION),
    right("three waits of one, then a wait loop for the rest, numpy arrays", SUBMIT + """
pending, done = list(refs), []
while len(done) < 3:
    ready, pending = ray.wait(pending)
    done += ready
first_three = np.array(ray.get(done))
rest = []
while pending:
    ready, pending = ray.wait(pending)
    rest.append(ray.get(ready[0]))
the_rest = np.array(rest)
"""),
    right("fetched one by one, the rest by filtering refs", SUBMIT + """
ready, _ = ray.wait(refs, num_returns=3)
first_three = [ray.get(r) for r in ready]
the_rest = ray.get([r for r in refs if r not in ready])
"""),
    right("after a wrong attempt in the same kernel", SOLUTION, before=(SUBMIT + """
first_three = ray.get(refs[:3])
the_rest = ray.get(refs[3:])
""",)),
    wrong("the first three submitted", SUBMIT + """
first_three = ray.get(refs[:3])
the_rest = ray.get(refs[3:])
""", "first three tasks you *submitted*"),
    wrong("ray.wait without num_returns", SUBMIT + """
ready, not_ready = ray.wait(refs)
first_three = ray.get(ready)
the_rest = ray.get(not_ready)
""", "has 1 result;", "num_returns=3"),
    wrong("everything fetched first, then split by the tasks' own end stamps", SUBMIT + """
results = ray.get(refs)
by_end = sorted(results, key=lambda r: r[2])
first_three, the_rest = by_end[:3], by_end[3:]
""", "after all six tasks had finished"),
    wrong("ready and not-ready swapped", SUBMIT + """
ready, not_ready = ray.wait(refs, num_returns=3)
the_rest = ray.get(ready)
first_three = ray.get(not_ready)
""", "not the three tasks that finished first"),
    wrong("refs instead of values", SUBMIT + """
ready, not_ready = ray.wait(refs, num_returns=3)
first_three, the_rest = ready, not_ready
""", "ObjectRefs"),
    wrong("values typed in", SUBMIT + """
first_three = [(3, 0.0, 0.15), (2, 0.0, 0.35), (0, 0.0, 0.45)]
the_rest = [(1, 0.0, 0.75), (5, 0.0, 0.95), (4, 0.0, 1.1)]
""", "never fetched"),
    wrong("values from the earlier run, decoy fetch", SUBMIT + """
ray.get(refs)
first_three, the_rest = old[:3], old[3:]
""", "none of this cell's timed_task tasks returned", before=(SUBMIT + "old = ray.get(refs)\n",)),
    wrong("the rest fetched again with everything", SUBMIT + """
ready, not_ready = ray.wait(refs, num_returns=3)
first_three = ray.get(ready)
the_rest = ray.get(refs)
""", "each of the 6 tasks once"),
    wrong("the rest incomplete", SUBMIT + """
ready, not_ready = ray.wait(refs, num_returns=3)
first_three = ray.get(ready)
the_rest = ray.get(not_ready[:2])
""", "each of the 6 tasks once"),
    wrong("picked by position, without ray.wait", SUBMIT + """
first_three = ray.get([refs[3], refs[2], refs[0]])
the_rest = ray.get([refs[1], refs[5], refs[4]])
""", "without asking ray.wait"),
    wrong("ray.wait with a timeout too short", SUBMIT + """
ready, not_ready = ray.wait(refs, num_returns=3, timeout=0.01)
first_three = ray.get(ready)
the_rest = ray.get(not_ready)
""", "expected 3"),
]


@pytest.mark.parametrize("answer", FIRST_THREE, ids=ids(FIRST_THREE))
def test_first_three(answer):
    assert_verdict(judge("03.first_three", SETUP, answer), answer)


# --- 03.process_in_order ---------------------------------------------------------------------------

WAIT_LOOP = """
def process_as_ready(refs, process):
    remaining = list(refs)
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=1)
        process(ray.get(ready[0]))
"""

PROCESS_IN_ORDER = [
    starter("the starter", """
def process_as_ready(refs, process):
    for result in ray.get(refs):
        process(result)
""", "still waits for all"),
    right("the solution", WAIT_LOOP),
    right("a for loop over the count, ray.get of the ready list", """
def process_as_ready(refs, process):
    pending = refs
    for _ in range(len(refs)):
        done, pending = ray.wait(pending)
        for value in ray.get(done):
            process(value)
"""),
    right("a short timeout in a polling loop", """
def process_as_ready(refs, process):
    waiting = set(refs)
    while waiting:
        ready, _ = ray.wait(list(waiting), num_returns=1, timeout=0.05)
        for ref in ready:
            waiting.discard(ref)
            process(ray.get(ref))
"""),
    right("run on the lesson's tasks first, after a submission-order attempt", WAIT_LOOP + """
process_as_ready([timed_task.remote(i, d) for i, d in enumerate(durations)], lambda r: None)
""", before=("""
def process_as_ready(refs, process):
    for ref in refs:
        process(ray.get(ref))
""",)),
    wrong("dawdles before each wait", """
def process_as_ready(refs, process):
    remaining = list(refs)
    while remaining:
        time.sleep(0.7)
        ready, remaining = ray.wait(remaining, num_returns=1)
        process(ray.get(ready[0]))
""", "before it was processed"),
    wrong("dawdles between the wait and the processing", """
def process_as_ready(refs, process):
    remaining = list(refs)
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=1)
        value = ray.get(ready[0])
        time.sleep(0.7)
        process(value)
""", "before it was processed"),
    wrong("ray.get per ref, in submission order", """
def process_as_ready(refs, process):
    for ref in refs:
        process(ray.get(ref))
""", "while task", "already done"),
    wrong("waiting in pairs", """
def process_as_ready(refs, process):
    remaining = list(refs)
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=min(2, len(remaining)))
        for value in ray.get(ready):
            process(value)
""", "2 results at a time", "num_returns=1"),
    wrong("waiting in batches of three", """
def process_as_ready(refs, process):
    remaining = list(refs)
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=min(3, len(remaining)))
        for value in ray.get(ready):
            process(value)
""", "3 results at a time"),
    wrong("a ray.get on the whole list first, then a wait loop", """
def process_as_ready(refs, process):
    ray.get(refs)
    remaining = list(refs)
    while remaining:
        ready, remaining = ray.wait(remaining)
        process(ray.get(ready[0]))
""", "until all", "whole list"),
    wrong("collects in completion order, processes at the end", """
def process_as_ready(refs, process):
    remaining, values = list(refs), []
    while remaining:
        ready, remaining = ray.wait(remaining)
        values.append(ray.get(ready[0]))
    for value in values:
        process(value)
""", "until all"),
    wrong("re-processing: waits on the full list every time", """
def process_as_ready(refs, process):
    for _ in range(len(refs)):
        ready, _ = ray.wait(refs)
        process(ray.get(ready[0]))
""", "more than once", "not-ready list"),
    wrong("refs passed to process", """
def process_as_ready(refs, process):
    remaining = list(refs)
    while remaining:
        ready, remaining = ray.wait(remaining)
        process(ready[0])
""", "ObjectRef"),
    wrong("values not from the tasks", """
def process_as_ready(refs, process):
    remaining = list(refs)
    while remaining:
        ready, remaining = ray.wait(remaining)
        process((len(remaining), 0.0))
""", "none of the tasks returned"),
    wrong("stops after the first result", """
def process_as_ready(refs, process):
    ready, _ = ray.wait(refs)
    process(ray.get(ready[0]))
""", "Only 1 of the"),
    wrong("threads fetching in submission order", """
def process_as_ready(refs, process):
    with ThreadPoolExecutor(4) as pool:
        for value in pool.map(ray.get, refs):
            process(value)
""", "threads"),
]


@pytest.mark.parametrize("answer", PROCESS_IN_ORDER, ids=ids(PROCESS_IN_ORDER))
def test_process_in_order(answer):
    assert_verdict(judge("03.process_in_order", SETUP, answer), answer)


# --- 03.limit_in_flight ----------------------------------------------------------------------------

LIMIT = """
def run_with_limit(work, items, k, bar):
    results, in_flight = [], []
    for item in items:
        while len(in_flight) >= k:
            ready, in_flight = ray.wait(in_flight, num_returns=1)
            results.extend(ray.get(ready))
            bar.update(len(ready))
        in_flight.append(work.remote(item))
    while in_flight:
        ready, in_flight = ray.wait(in_flight, num_returns=1)
        results.extend(ray.get(ready))
        bar.update(len(ready))
    return results
"""

LIMIT_IN_FLIGHT = [
    starter("the starter", """
def run_with_limit(work, items, k, bar):
    results = []
    for item in items:
        results.append(ray.get(work.remote(item)))
        bar.update(1)
    return results
""", "one task at a time"),
    right("the solution", LIMIT),
    right("a while loop over an iterator, .options(name=...), numpy result", """
def run_with_limit(work, items, k, bar):
    todo, in_flight, out = iter(items), [], []
    while True:
        for item in todo:
            in_flight.append(work.options(name="job").remote(item))
            if len(in_flight) == k:
                break
        if not in_flight:
            return np.array(out)
        done, in_flight = ray.wait(in_flight)
        out += ray.get(done)
        bar.update(len(done))
"""),
    right("submit k first, then one per finish, drain with a get loop", """
def run_with_limit(work, items, k, bar):
    items = list(items)
    in_flight = [work.remote(x) for x in items[:k]]
    results = []
    for x in items[k:]:
        ready, in_flight = ray.wait(in_flight)
        results.append(ray.get(ready[0]))
        bar.update()
        in_flight.append(work.remote(x))
    for ref in in_flight:
        results.append(ray.get(ref))
        bar.update(1)
    return results
"""),
    right("after a batches attempt in the same kernel", LIMIT, before=("""
def run_with_limit(work, items, k, bar):
    items, results = list(items), []
    for start in range(0, len(items), k):
        results += ray.get([work.remote(x) for x in items[start:start + k]])
        bar.update(len(items[start:start + k]))
    return results
""",)),
    wrong("batches of k", """
def run_with_limit(work, items, k, bar):
    items, results = list(items), []
    for start in range(0, len(items), k):
        batch = [work.remote(x) for x in items[start:start + k]]
        results += ray.get(batch)
        bar.update(len(batch))
    return results
""", "batches"),
    wrong("batches of k with ray.wait for the whole batch", """
def run_with_limit(work, items, k, bar):
    items, results = list(items), []
    for start in range(0, len(items), k):
        batch = [work.remote(x) for x in items[start:start + k]]
        ready, _ = ray.wait(batch, num_returns=len(batch))
        results += ray.get(ready)
        bar.update(len(ready))
    return results
""", "batches"),
    wrong("waits for the oldest first", """
def run_with_limit(work, items, k, bar):
    in_flight, results = [], []
    for item in items:
        if len(in_flight) >= k:
            results.append(ray.get(in_flight.pop(0)))
            bar.update(1)
        in_flight.append(work.remote(item))
    for ref in in_flight:
        results.append(ray.get(ref))
        bar.update(1)
    return results
""", "oldest"),
    wrong("CPU reservation throttling: all submitted at once", """
def run_with_limit(work, items, k, bar):
    refs = [work.options(num_cpus=4 / k).remote(x) for x in items]
    results = []
    while refs:
        ready, refs = ray.wait(refs)
        results += ray.get(ready)
        bar.update(len(ready))
    return results
""", "submitted at once", "num_cpus"),
    wrong("one too many in flight", LIMIT.replace("while len(in_flight) >= k", "while len(in_flight) > k"),
          "more than k"),
    wrong("one too few in flight", LIMIT.replace("while len(in_flight) >= k", "while len(in_flight) >= k - 1"),
          "the check asked for k"),
    wrong("a fixed K of 3 instead of the parameter", "K = 3\n" + LIMIT.replace("while len(in_flight) >= k",
                                                                             "while len(in_flight) >= K"),
          "k ="),
    wrong("results still in flight are dropped", """
def run_with_limit(work, items, k, bar):
    results, in_flight = [], []
    for item in items:
        while len(in_flight) >= k:
            ready, in_flight = ray.wait(in_flight, num_returns=1)
            results.extend(ray.get(ready))
            bar.update(len(ready))
        in_flight.append(work.remote(item))
    return results
""", "still in flight"),
    wrong("progress bar never advanced", LIMIT.replace("bar.update(len(ready))", "pass"), "never moved"),
    wrong("progress bar advanced on submission", """
def run_with_limit(work, items, k, bar):
    results, in_flight = [], []
    for item in items:
        while len(in_flight) >= k:
            ready, in_flight = ray.wait(in_flight, num_returns=1)
            results.extend(ray.get(ready))
        in_flight.append(work.remote(item))
        bar.update(1)
    while in_flight:
        ready, in_flight = ray.wait(in_flight, num_returns=1)
        results.extend(ray.get(ready))
    return results
""", "when results arrive"),
    wrong("work done in the driver", """
def run_with_limit(work, items, k, bar):
    bar.update(len(items))
    return [work._function(x) for x in items]
""", "computed the others in the notebook"),
    wrong("threads limit the work", """
def run_with_limit(work, items, k, bar):
    def one(x):
        value = ray.get(work.remote(x))
        bar.update(1)
        return value
    with ThreadPoolExecutor(k) as pool:
        return list(pool.map(one, items))
""", "threads"),
    # Longer than the longest task: every wait starts at least 0.3 s after a slot freed, whatever the durations.
    wrong("dawdles before each wait while a slot is free", LIMIT.replace(
        "        while len(in_flight) >= k:\n            ready,",
        "        while len(in_flight) >= k:\n            __import__('time').sleep(1.5)\n            ready,"),
          "slot stayed free"),
    wrong("dawdles after each wait before submitting the next", LIMIT.replace(
        "            bar.update(len(ready))\n        in_flight.append",
        "            bar.update(len(ready))\n            __import__('time').sleep(0.6)\n        in_flight.append"),
          "slot stayed free"),
    wrong("values not from the tasks",
          LIMIT.replace("results.extend(ray.get(ready))", "results.extend([0] * len(ready))"),
          "not what the work tasks returned"),
]


@pytest.mark.parametrize("answer", LIMIT_IN_FLIGHT, ids=ids(LIMIT_IN_FLIGHT))
def test_limit_in_flight(answer):
    assert_verdict(judge("03.limit_in_flight", SETUP, answer), answer)
