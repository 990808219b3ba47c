"""Adversarial catalogue, lessons 00 and 01: answers learners write, each with the verdict it must get."""
from __future__ import annotations

import pytest

from harness import assert_verdict, ids, judge, right, starter, wrong

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")

# --- 00.first_task -----------------------------------------------------------------------------

SETUP_00 = "import time\nimport ray\n"
FIRST_TASK = [
    starter("the starter", """
        def square(x):
            return x * x

        squares = [square(i) for i in range(5)]
    """, "@ray.remote"),
    right("the solution", """
        @ray.remote
        def square(x):
            return x * x

        squares = ray.get([square.remote(i) for i in range(5)])
    """),
    right("a ray.remote(lambda)", """
        square = ray.remote(lambda x: x * x)
        squares = ray.get([square.remote(i) for i in range(5)])
    """),
    right("refs kept, fetched one by one after submitting all", """
        @ray.remote
        def square(x):
            return x * x

        refs = [square.remote(i) for i in range(5)]
        squares = [ray.get(r) for r in refs]
    """),
    right("options(name=...) and a numpy array", """
        import numpy as np

        @ray.remote
        def square(x):
            return x * x

        squares = np.array(ray.get([square.options(name="sq").remote(i) for i in range(5)]))
    """),
    wrong("refs instead of values", """
        @ray.remote
        def square(x):
            return x * x

        squares = [square.remote(i) for i in range(5)]
    """, "ObjectRefs", "ray.get"),
    wrong("typed-in values next to a remote function", """
        @ray.remote
        def square(x):
            return x * x

        squares = [0, 1, 4, 9, 16]
    """, "computed in the notebook"),
    wrong("decoy tasks, values computed in the driver", """
        @ray.remote
        def square(x):
            return x * x

        refs = [square.remote(i) for i in range(5)]
        squares = [i * i for i in range(5)]
    """, "never fetched"),
    wrong("the underlying function called in the driver", """
        @ray.remote
        def square(x):
            return x * x

        squares = [square._function(i) for i in range(5)]
    """, "no square task ran"),
    wrong("plain function, wrong values", """
        def square(x):
            return x + x

        squares = [square(i) for i in range(5)]
    """, "@ray.remote"),
    wrong("threads in the driver", """
        from concurrent.futures import ThreadPoolExecutor

        def square(x):
            return x * x

        with ThreadPoolExecutor() as pool:
            squares = list(pool.map(square, range(5)))
    """, "@ray.remote"),
    wrong("wrong inputs", """
        @ray.remote
        def square(x):
            return x * x

        squares = ray.get([square.remote(i) for i in range(1, 6)])
    """, "expected"),
    wrong("one task per value but for the wrong arguments, values patched", """
        @ray.remote
        def square(x):
            return x * x

        squares = ray.get([square.remote(i) for i in [0, 1, 2, 3, 3]])
        squares[4] = 16
    """, "each of 0, 1, 2, 3, 4"),
    wrong("a single ObjectRef", """
        @ray.remote
        def squares_of(n):
            return [i * i for i in range(n)]

        square = squares_of
        squares = square.remote(5)
    """, "ObjectRef"),
]


@pytest.mark.parametrize("answer", FIRST_TASK, ids=ids(FIRST_TASK))
def test_first_task(answer):
    assert_verdict(judge("00.first_task", SETUP_00, answer), answer)


# --- 01.parallel_calls ---------------------------------------------------------------------------

SETUP_01 = """
import math
import time

import numpy as np
import ray
"""
SLOW = """
def slow_function(i):
    time.sleep(0.6)
    return i
"""
REMOTE_SLOW = "@ray.remote\n" + SLOW
PARALLEL_CALLS = [
    starter("the starter", SLOW + "\nresults = [slow_function(i) for i in range(4)]\n", "@ray.remote"),
    right("the solution", REMOTE_SLOW + "\nresults = ray.get([slow_function.remote(i) for i in range(4)])\n"),
    right("refs in a list, then one ray.get", REMOTE_SLOW + """
refs = []
for i in range(4):
    refs.append(slow_function.remote(i))
results = ray.get(refs)
"""),
    right("ray.remote(fn) under another name, with options", SLOW + """
remote_slow = ray.remote(num_cpus=1)(slow_function)
slow_function = remote_slow
results = ray.get([slow_function.options(name="slow").remote(i) for i in range(4)])
"""),
    right("ray.wait until all are done, numpy array", REMOTE_SLOW + """
refs = [slow_function.remote(i) for i in range(4)]
ready, _ = ray.wait(refs, num_returns=4)
results = np.array(ray.get(refs))
"""),
    right("after an earlier serial attempt in the same kernel", REMOTE_SLOW +
          "\nresults = ray.get([slow_function.remote(i) for i in range(4)])\n",
          before=(REMOTE_SLOW + "\nresults = [ray.get(slow_function.remote(i)) for i in range(4)]\n",)),
    wrong("ray.get inside the loop", REMOTE_SLOW + "\nresults = [ray.get(slow_function.remote(i)) for i in range(4)]\n",
          "could not all run at once", "ray.get once"),
    wrong("in pairs", REMOTE_SLOW + """
results = []
for i in range(0, 4, 2):
    results += ray.get([slow_function.remote(i), slow_function.remote(i + 1)])
""", "could not all run at once"),
    wrong("each task reserves two CPUs", REMOTE_SLOW + """
results = ray.get([slow_function.options(num_cpus=2).remote(i) for i in range(4)])
""", "reserves 2 CPUs"),
    wrong("refs, not values", REMOTE_SLOW + "\nresults = [slow_function.remote(i) for i in range(4)]\n", "ObjectRefs"),
    wrong("decoys, values typed", REMOTE_SLOW + """
refs = [slow_function.remote(i) for i in range(4)]
ray.wait(refs, num_returns=4)
results = [0, 1, 2, 3]
""", "never fetched"),
    wrong("underlying function in the driver", REMOTE_SLOW + """
results = [slow_function._function(i) for i in range(4)]
""", "no slow_function task ran"),
    wrong("threads", SLOW + """
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(4) as pool:
    results = list(pool.map(slow_function, range(4)))
""", "threads", "Ray"),
    wrong("multiprocessing-style ray Pool is not tasks of slow_function", SLOW + """
from multiprocessing.pool import ThreadPool
results = ThreadPool(4).map(slow_function, range(4))
""", "threads"),
    wrong("one task for all four", """
@ray.remote
def slow_function(i):
    time.sleep(0.6)
    return i

@ray.remote
def all_four():
    return [i for i in range(4)]

results = ray.get(all_four.remote())
""", "no slow_function task ran"),
    wrong("five tasks, one value dropped", REMOTE_SLOW + """
results = ray.get([slow_function.remote(i) for i in range(5)])[:4]
""", "5 slow_function task"),
]


@pytest.mark.parametrize("answer", PARALLEL_CALLS, ids=ids(PARALLEL_CALLS))
def test_parallel_calls(answer):
    assert_verdict(judge("01.parallel_calls", [SETUP_01], answer), answer)
