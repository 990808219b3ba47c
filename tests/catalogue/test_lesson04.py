"""Adversarial catalogue, lesson 04 (the object store): answers learners write, each with the verdict it must get.

The check calls the learner's ``run_tasks(array, task)`` with an array and a task
of its own; these answers are the exercise cell as a learner might write it.
"""
from __future__ import annotations

import textwrap

import pytest

from harness import assert_verdict, ids, judge, right, starter, wrong

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")

SETUP = """
import numpy as np
import ray

@ray.remote
def column_mean(a, i):
    return float(a[:, i].mean())

array = np.random.default_rng(0).random((256, 64))
"""
CALL = "\nmeans = run_tasks(array, column_mean)\n"


def called(code: str) -> str:
    """The exercise cell: the learner's run_tasks, then the lesson's own call of it."""
    return textwrap.dedent(code) + CALL


SOLUTION = called("""
def run_tasks(array, task):
    ref = ray.put(array)
    return ray.get([task.remote(ref, i) for i in range(20)])
""")
PUT_IN_LOOP = called("""
def run_tasks(array, task):
    return ray.get([task.remote(ray.put(array), i) for i in range(20)])
""")

PUT_ONCE = [
    starter("the starter: the array by value to every task", called("""
        def run_tasks(array, task):
            return ray.get([task.remote(array, i) for i in range(20)])  # copies the array into the store 20 times
    """), "ray.put", "20 times"),
    right("the solution", SOLUTION),
    right("an explicit loop, then one ray.get", called("""
        def run_tasks(array, task):
            shared = ray.put(array)
            refs = []
            for i in range(20):
                refs.append(task.remote(shared, i))
            results = ray.get(refs)
            return results
    """)),
    right(".options on the task, keyword arguments", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            return ray.get([task.options(num_cpus=1, name="mean").remote(a=ref, i=i) for i in range(20)])
    """)),
    right("collected with ray.wait, put back in order", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            refs = [task.remote(ref, i) for i in range(20)]
            position = {r: k for k, r in enumerate(refs)}
            results = [None] * len(refs)
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                results[position[ready[0]]] = ray.get(ready[0])
            return results
    """)),
    right("a numpy array of results", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            return np.array(ray.get([task.remote(ref, i) for i in range(20)]))
    """)),
    right("after an earlier put-in-the-loop attempt", SOLUTION, before=(PUT_IN_LOOP,)),
    wrong("ray.put inside the loop", PUT_IN_LOOP, "ray.put ran 20 times", "once"),
    wrong("a fresh ref per task from a list of puts", called("""
        def run_tasks(array, task):
            refs = [ray.put(array) for _ in range(20)]
            return ray.get([task.remote(refs[i], i) for i in range(20)])
    """), "ray.put ran 20 times"),
    wrong("two refs, alternating", called("""
        def run_tasks(array, task):
            refs = [ray.put(array), ray.put(array)]
            return ray.get([task.remote(refs[i % 2], i) for i in range(20)])
    """), "ray.put ran 2 times"),
    wrong("ray.get of the ref in the driver, then the array passed", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            local = ray.get(ref)
            return ray.get([task.remote(local, i) for i in range(20)])
    """), "ray.get turned the ref back", "by value"),
    wrong("put once, but the array itself passed", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            return ray.get([task.remote(array, i) for i in range(20)])
    """), "put the array once", "not the ref"),
    wrong("the ref inside a list", textwrap.dedent("""
        def run_tasks(array, task):
            ref = ray.put(array)
            return ray.get([task.remote([ref], i) for i in range(20)])
    """), "inside a list", "direct argument"),
    wrong("one ray.get per task, in turn", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            return [ray.get(task.remote(ref, i)) for i in range(20)]
    """), "before it had submitted all 20"),
    wrong("sorted results: not in the order of i", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            return sorted(ray.get([task.remote(ref, i) for i in range(20)]))
    """), "not in the order of i"),
    wrong("collected in completion order", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            pending = [task.remote(ref, i) for i in range(20)]
            results = []
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                results.append(ray.get(ready[0]))
            return results
    """), "not in the order of i"),
    wrong("refs returned", textwrap.dedent("""
        def run_tasks(array, task):
            ref = ray.put(array)
            return [task.remote(ref, i) for i in range(20)]
    """), "returned ObjectRefs"),
    wrong("the list of results put into the store too", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            stored = ray.put([task.remote(ref, i) for i in range(20)])
            return ray.get(ray.get(stored))
    """), "ray.put ran 2 times", "`list`"),
    wrong("decoy tasks, values computed in the notebook", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            [task.remote(ref, i) for i in range(20)]
            return [float(array[:, i].mean()) for i in range(20)]
    """), "never fetched the results of 20 tasks"),
    wrong("the lesson's column_mean instead of the task given", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            return ray.get([column_mean.remote(ref, i) for i in range(20)])
    """), "`column_mean`", "not of the `task`"),
    wrong("threads in the notebook", called("""
        from concurrent.futures import ThreadPoolExecutor

        def run_tasks(array, task):
            with ThreadPoolExecutor(4) as pool:
                return list(pool.map(lambda i: float(array[:, i].mean()), range(20)))
    """), "threads", "not as Ray tasks"),
    wrong("ten tasks instead of twenty", called("""
        def run_tasks(array, task):
            ref = ray.put(array)
            return ray.get([task.remote(ref, i) for i in range(10)])
    """), "10 times", "expected 20"),
    wrong("a ref put outside run_tasks, of the lesson's own array", called("""
        shared = ray.put(array)

        def run_tasks(array, task):
            return ray.get([task.remote(shared, i) for i in range(20)])
    """), "not one made by ray.put(array) in run_tasks"),
    wrong("not a function", "run_tasks = None\n", "should be a function"),
]


@pytest.mark.parametrize("answer", PUT_ONCE, ids=ids(PUT_ONCE))
def test_put_once(answer):
    assert_verdict(judge("04.put_once", SETUP, answer), answer)
