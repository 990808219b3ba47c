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
    wrong("values put into the object store and fetched back, no task", """
        @ray.remote
        def square(x):
            return x * x

        squares = ray.get([ray.put(i * i) for i in range(5)])
    """, "no square task ran"),
    wrong("values reordered after fetching", """
        @ray.remote
        def square(x):
            return x * x

        squares = sorted(ray.get([square.remote(i) for i in range(5)]), reverse=True)
    """, "expected"),
    right("refs made in one cell, fetched in the next", """
        squares = ray.get(refs)
    """, before=("""
        @ray.remote
        def square(x):
            return x * x

        refs = [square.remote(i) for i in range(5)]
    """,)),
    right("one ray.get per task (allowed here: lesson 01 is about doing better)", """
        @ray.remote
        def square(x):
            return x * x

        squares = [ray.get(square.remote(i)) for i in range(5)]
    """),
    right("a tuple, after a wrong attempt with refs", """
        @ray.remote
        def square(x):
            return x * x

        squares = tuple(ray.get([square.remote(i) for i in range(5)]))
    """, before=("""
        @ray.remote
        def square(x):
            return x * x

        squares = [square.remote(i) for i in range(5)]
    """,)),
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

from raycourse.lessons import montecarlo

count_inside = ray.remote(montecarlo.count_inside)
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


# --- 01.pi_blocks --------------------------------------------------------------------------------
# The check calls estimate_pi_parallel itself, three times, with sizes it picks at random (one uneven split,
# one even split, one N smaller than a block), and reads the tasks each call started.

PI_STARTER = """
def estimate_pi_parallel(num_samples, block_size):
    # Serial, and all points at once: memory grows with num_samples.
    return montecarlo.estimate_pi(num_samples)  # your code here
"""
PI_SOLUTION = """
def estimate_pi_parallel(num_samples, block_size):
    blocks = [min(block_size, num_samples - start) for start in range(0, num_samples, block_size)]
    refs = [count_inside.remote(n, seed) for seed, n in enumerate(blocks)]
    return 4 * sum(ray.get(refs)) / num_samples
"""
BLOCKS = "    blocks = [min(block_size, num_samples - start) for start in range(0, num_samples, block_size)]\n"
PI_BLOCKS = [
    starter("the starter", PI_STARTER, "serial starter"),
    right("the solution", PI_SOLUTION),
    right("own remote function with numpy, random seeds, a ray.wait loop", """
@ray.remote
def block(n, seed):
    xy = np.random.default_rng(seed).random((n, 2))
    return int(((xy ** 2).sum(axis=1) <= 1).sum())

def estimate_pi_parallel(num_samples, block_size):
    seeds = np.random.default_rng().integers(0, 2**31, size=math.ceil(num_samples / block_size))
    pending = [block.remote(min(block_size, num_samples - i * block_size), int(s)) for i, s in enumerate(seeds)]
    inside = 0
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        inside += ray.get(ready[0])
    return 4 * inside / num_samples
"""),
    right("options(name=...), keyword arguments, numpy array of counts", """
def estimate_pi_parallel(num_samples, block_size):
    sizes = np.full(num_samples // block_size, block_size).tolist()
    if num_samples % block_size:
        sizes.append(num_samples % block_size)
    refs = [count_inside.options(name="pi-block").remote(num_samples=n, seed=1000 + i) for i, n in enumerate(sizes)]
    return 4 * np.array(ray.get(refs)).sum() / num_samples
"""),
    right("per-block estimates, weighted by block size", """
@ray.remote
def block_estimate(n, seed):
    return montecarlo.estimate_pi(n, seed)

def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    estimates = ray.get([block_estimate.remote(n, s) for s, n in enumerate(blocks)])
    return sum(e * n for e, n in zip(estimates, blocks)) / num_samples
"""),
    right("blocks given as (start, stop) ranges, no seed (fresh entropy per block)", """
@ray.remote
def block_between(start, stop):
    return montecarlo.count_inside(stop - start)

def estimate_pi_parallel(num_samples, block_size):
    edges = list(range(0, num_samples, block_size)) + [num_samples]
    refs = [block_between.remote(a, b) for a, b in zip(edges, edges[1:])]
    return 4.0 * sum(ray.get(refs)) / num_samples
"""),
    right("the solution right after a one-at-a-time attempt", PI_SOLUTION, before=("""
def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    return 4 * sum(ray.get(count_inside.remote(n, s)) for s, n in enumerate(blocks)) / num_samples
""", "estimate_pi_parallel(200_000, 50_000)")),
    wrong("every block uses the same explicit seed", """
def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    return 4 * sum(ray.get([count_inside.remote(n, 42) for n in blocks])) / num_samples
""", "same seed"),
    wrong("a fixed seed hidden inside the task", """
@ray.remote
def block(n):
    return montecarlo.count_inside(n, seed=7)

def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    return 4 * sum(ray.get([block.remote(n) for n in blocks])) / num_samples
""", "same points"),
    wrong("each block draws all the points", """
def estimate_pi_parallel(num_samples, block_size):
    count = math.ceil(num_samples / block_size)
    refs = [count_inside.remote(num_samples, seed) for seed in range(count)]
    return 4 * sum(ray.get(refs)) / (count * num_samples)
""", "all", "points"),
    wrong("every block draws block_size points, the last one too", """
def estimate_pi_parallel(num_samples, block_size):
    count = math.ceil(num_samples / block_size)
    refs = [count_inside.remote(block_size, seed) for seed in range(count)]
    return 4 * sum(ray.get(refs)) / (count * block_size)
""", "remaining"),
    wrong("rounds the number of blocks down", """
def estimate_pi_parallel(num_samples, block_size):
    refs = [count_inside.remote(block_size, seed) for seed in range(num_samples // block_size)]
    return 4 * sum(ray.get(refs)) / num_samples
""", "block", "math.ceil"),
    wrong("one block too many on an even split", """
def estimate_pi_parallel(num_samples, block_size):
    count = num_samples // block_size + 1
    sizes = [block_size] * (count - 1) + [num_samples - block_size * (count - 1)]
    return 4 * sum(ray.get([count_inside.remote(n, s) for s, n in enumerate(sizes)])) / num_samples
""", "expected", "block"),
    wrong("blocks run one at a time (a ray.get per block)", """
def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    inside = 0
    for seed, n in enumerate(blocks):
        inside += ray.get(count_inside.remote(n, seed))
    return 4 * inside / num_samples
""", "one at a time", "ray.get the list once"),
    wrong("decoy block tasks, the estimate made in the notebook", """
def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    refs = [count_inside.remote(n, s) for s, n in enumerate(blocks)]
    return montecarlo.estimate_pi(num_samples)
""", "never fetched"),
    wrong("counts fetched, but the estimate computed in the notebook", """
def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    ray.get([count_inside.remote(n, s) for s, n in enumerate(blocks)])
    return montecarlo.estimate_pi(num_samples, seed=1)
""", "compute the estimate from the values ray.get returned"),
    wrong("unweighted mean of per-block estimates", """
@ray.remote
def block_estimate(n, seed):
    return montecarlo.estimate_pi(n, seed)

def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    return float(np.mean(ray.get([block_estimate.remote(n, s) for s, n in enumerate(blocks)])))
""", "plain mean", "smaller"),
    wrong("divides by blocks x block_size", """
def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    return 4 * sum(ray.get([count_inside.remote(n, s) for s, n in enumerate(blocks)])) / (len(blocks) * block_size)
""", "num_samples"),
    wrong("forgets the factor 4", """
def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    return sum(ray.get([count_inside.remote(n, s) for s, n in enumerate(blocks)])) / num_samples
""", "factor 4"),
    wrong("returns the ref of a sum task", """
@ray.remote
def add(*counts):
    return sum(counts)

def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    return add.remote(*[count_inside.remote(n, s) for s, n in enumerate(blocks)])
""", "ObjectRef"),
    wrong("returns pi itself", """
def estimate_pi_parallel(num_samples, block_size):
    return math.pi
""", "pi itself"),
    wrong("one task draws everything", """
def estimate_pi_parallel(num_samples, block_size):
    return 4 * ray.get(count_inside.remote(num_samples, 0)) / num_samples
""", "one task drew all"),
    wrong("each block reserves four CPUs", """
def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    refs = [count_inside.options(num_cpus=4).remote(n, s) for s, n in enumerate(blocks)]
    return 4 * sum(ray.get(refs)) / num_samples
""", "reserves 4 CPUs"),
    wrong("blocks counted with threads in the notebook", """
from concurrent.futures import ThreadPoolExecutor

def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(montecarlo.count_inside, blocks, range(len(blocks))))
    return 4 * sum(counts) / num_samples
""", "threads"),
    wrong("blocks counted in the notebook, no Ray", """
def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    return 4 * sum(montecarlo.count_inside(n, s) for s, n in enumerate(blocks)) / num_samples
""", "no Ray task", "in the notebook"),
]


@pytest.mark.parametrize("answer", PI_BLOCKS, ids=ids(PI_BLOCKS))
def test_pi_blocks(answer):
    assert_verdict(judge("01.pi_blocks", [SETUP_01], answer), answer)


def test_right_after_a_combining_task_is_accepted():
    """A sum task over the blocks' refs (lesson 02's style) is a correct alternative too."""
    answer = right("a sum task over the refs", """
@ray.remote
def add(*counts):
    return sum(counts)

def estimate_pi_parallel(num_samples, block_size):
""" + BLOCKS + """    return 4 * ray.get(add.remote(*[count_inside.remote(n, s) for s, n in enumerate(blocks)])) / num_samples
""")
    assert_verdict(judge("01.pi_blocks", [SETUP_01], answer), answer)


# --- 01.precision --------------------------------------------------------------------------------
# The check calls samples_for with five precisions it picks and judges the inverse exactly; then it ties the
# notebook's `estimates` to the trial tasks of the cell that set them.

ESTIMATE = "estimate = ray.remote(montecarlo.estimate_pi)\n"
FORMULA = """
def samples_for(precision):
    p = math.pi / 4
    return math.ceil(16 * p * (1 - p) / precision**2)
"""
TRIALS = """
precision = 0.01
n = samples_for(precision)
estimates = ray.get([estimate.remote(n, seed) for seed in range(12)])
"""


def samples(body: str) -> str:
    """A samples_for answer (its body), followed by the solution's trials."""
    return "def samples_for(precision):\n    p = math.pi / 4\n" + body + TRIALS


PRECISION = [
    starter("the starter", """
def samples_for(precision):
    return None  # your code here

precision = 0.01
n = samples_for(precision)
estimates = []  # your code here
""", "returns None"),
    right("the solution", FORMULA + TRIALS),
    right("search with montecarlo.standard_error, trials as counts in a ray.wait loop", """
def samples_for(precision):
    low, high = 1, 1
    while montecarlo.standard_error(high) > precision:
        high *= 2
    while low < high:
        middle = (low + high) // 2
        if montecarlo.standard_error(middle) <= precision:
            high = middle
        else:
            low = middle + 1
    return low

precision = 0.01
n = samples_for(precision)
pending = [count_inside.remote(n, 100 + k) for k in range(16)]
estimates = []
while pending:
    ready, pending = ray.wait(pending, num_returns=1)
    estimates.append(4 * ray.get(ready[0]) / n)
"""),
    right("numpy ceil (a float), own remote function, numpy array of estimates", """
@ray.remote
def trial(samples, seed=None):
    xy = np.random.default_rng(seed).random((samples, 2))
    return 4 * np.mean((xy ** 2).sum(axis=1) <= 1)

def samples_for(precision):
    p = np.pi / 4
    return np.ceil(16 * p * (1 - p) / precision ** 2)

precision = 0.01
n = int(samples_for(precision))
estimates = np.array(ray.get([trial.options(name="trial").remote(n) for _ in range(20)]))
"""),
    right("the solution right after an off-by-one attempt", FORMULA + TRIALS,
          before=(samples("    return math.ceil(16 * p * (1 - p) / precision**2) + 1\n"),)),
    wrong("off by one", samples("    return math.ceil(16 * p * (1 - p) / precision**2) + 1\n"), "one more than needed"),
    wrong("rounds down", samples("    return int(16 * p * (1 - p) / precision**2)\n"), "round up"),
    wrong("round() rounds down about half the time", samples("    return round(16 * p * (1 - p) / precision**2)\n"),
          "round up"),
    wrong("the variance instead of the standard deviation", samples("    return math.ceil(16 * p * (1 - p) / precision)\n"),
          "variance", "squared"),
    wrong("forgets the factor 4", samples("    return math.ceil(p * (1 - p) / precision**2)\n"), "factor 4"),
    wrong("the factor 4 not squared", samples("    return math.ceil(4 * p * (1 - p) / precision**2)\n"), "square"),
    wrong("p = 0.5", samples("    return math.ceil(16 * 0.25 / precision**2)\n"), "p = 0.5"),
    wrong("returns the unrounded float", samples("    return 16 * p * (1 - p) / precision**2\n"),
          "stopped with an error"),
    wrong("formula right, trials not run yet", FORMULA + "\nprecision = 0.01\nn = samples_for(precision)\nestimates = []\n",
          "at least 10 trials"),
    wrong("trials computed in the notebook", FORMULA + """
precision = 0.01
n = samples_for(precision)
estimates = [montecarlo.estimate_pi(n, seed) for seed in range(12)]
""", "computed in the notebook"),
    wrong("trials with threads in the notebook", FORMULA + """
from concurrent.futures import ThreadPoolExecutor
precision = 0.01
n = samples_for(precision)
with ThreadPoolExecutor(4) as pool:
    estimates = list(pool.map(lambda s: montecarlo.estimate_pi(n, s), range(12)))
""", "threads"),
    wrong("every trial uses the same seed", FORMULA + """
precision = 0.01
n = samples_for(precision)
estimates = ray.get([estimate.remote(n, 3) for _ in range(12)])
""", "same seed"),
    wrong("trials one at a time", FORMULA + """
precision = 0.01
n = samples_for(precision)
estimates = [ray.get(estimate.remote(n, seed)) for seed in range(12)]
""", "one at a time"),
    wrong("trials at a hard-coded N", FORMULA + """
precision = 0.01
n = samples_for(precision)
estimates = ray.get([estimate.remote(10_000, seed) for seed in range(12)])
""", "not with N"),
    wrong("too few trials", FORMULA + """
precision = 0.01
n = samples_for(precision)
estimates = ray.get([estimate.remote(n, seed) for seed in range(3)])
""", "3 trials"),
    wrong("decoy trials, estimates made in the notebook", FORMULA + """
precision = 0.01
n = samples_for(precision)
refs = [estimate.remote(n, seed) for seed in range(12)]
ray.wait(refs, num_returns=12)
estimates = [montecarlo.estimate_pi(n, seed) for seed in range(12)]
""", "never fetched"),
    wrong("estimates altered after fetching", FORMULA + """
precision = 0.01
n = samples_for(precision)
estimates = [e + 0.001 for e in ray.get([estimate.remote(n, seed) for seed in range(12)])]
""", "does not hold what"),
]


@pytest.mark.parametrize("answer", PRECISION, ids=ids(PRECISION))
def test_precision(answer):
    assert_verdict(judge("01.precision", [SETUP_01, ESTIMATE], answer), answer)


# --- 01.crossing_point ---------------------------------------------------------------------------
# The serial times come from the lesson's own cell (montecarlo.time_serial); the learner times eight Ray tasks
# per size in the exercise cell, and `crossing` must follow from both lists. Small sizes keep the catalogue fast.

SERIAL = "sizes = [1_000, 10_000, 100_000, 400_000]\nserial_times = montecarlo.time_serial(sizes)\n"
CROSSING = """
faster = [r < s for s, r in zip(serial_times, ray_times)]
crossing = next((sizes[i] for i in range(len(sizes)) if all(faster[i:])), None)
"""
RAY_TIMES = """
ray_times = []
for size in sizes:
    start = time.perf_counter()
    ray.get([count_inside.remote(size) for _ in range(8)])
    ray_times.append(time.perf_counter() - start)
"""


def timed(loop: str, after: str = CROSSING) -> str:
    return loop + after


CROSSING_POINT = [
    starter("the starter", """
ray_times = []  # your code here: one time per size, for eight count_inside tasks of that size
crossing = None  # your code here
""", "your code here"),
    right("the solution", timed(RAY_TIMES)),
    right("ray.wait for all eight, own remote function, numpy array of times", timed("""
@ray.remote
def points_inside(size):
    xy = np.random.default_rng().random((size, 2))
    return int(((xy ** 2).sum(axis=1) <= 1).sum())

times = []
for size in sizes:
    start = time.time()
    refs = [points_inside.remote(size) for _ in range(8)]
    ray.wait(refs, num_returns=8)
    times.append(time.time() - start)
ray_times = np.array(times)
""")),
    right("the best of three with timing.best_time", timed("""
from raycourse import timing
ray_times = [timing.best_time(lambda: ray.get([count_inside.remote(size) for _ in range(8)]), repeats=3)
             for size in sizes]
""")),
    right("the solution right after typed-in times", timed(RAY_TIMES),
          before=(timed("ray_times = [0.01, 0.01, 0.01, 0.01]\n"),)),
    wrong("typed-in Ray times", timed("ray_times = [0.004, 0.003, 0.005, 0.02]\n"), "No Ray task of size"),
    wrong("Ray times per task (divided by eight)", timed(RAY_TIMES + "ray_times = [t / 8 for t in ray_times]\n"),
          "took", "unchanged"),
    wrong("Ray times scaled up", timed(RAY_TIMES + "ray_times = [3 * t + 0.05 for t in ray_times]\n"), "at most",
          "unchanged"),
    wrong("ray.get inside the loop", timed("""
ray_times = []
for size in sizes:
    start = time.perf_counter()
    [ray.get(count_inside.remote(size)) for _ in range(8)]
    ray_times.append(time.perf_counter() - start)
"""), "one at a time"),
    wrong("one task per size instead of eight", timed("""
ray_times = []
for size in sizes:
    start = time.perf_counter()
    ray.get(count_inside.remote(size))
    ray_times.append(time.perf_counter() - start)
"""), "8 calls"),
    wrong("serial times changed to make Ray look good", timed(RAY_TIMES + "serial_times = [10 * t for t in serial_times]\n"),
          "serial_times"),
    wrong("crossing typed, not computed", RAY_TIMES + "crossing = 12_345\n", "crossing"),
    wrong("ObjectRefs instead of times", timed("ray_times = [count_inside.remote(size) for size in sizes]\n"),
          "stopped with an error"),
    wrong("a time missing", timed(RAY_TIMES + "ray_times = ray_times[:-1]\n"), "one Ray time per size"),
    wrong("threads in the notebook", timed("""
from concurrent.futures import ThreadPoolExecutor
ray_times = []
for size in sizes:
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(montecarlo.count_inside, [size] * 8))
    ray_times.append(time.perf_counter() - start)
"""), "threads"),
    wrong("tasks that do not count the points", timed("""
@ray.remote
def nothing(size):
    return 0

ray_times = []
for size in sizes:
    start = time.perf_counter()
    ray.get([nothing.remote(size) for _ in range(8)])
    ray_times.append(time.perf_counter() - start)
"""), "should count"),
]


@pytest.mark.parametrize("answer", CROSSING_POINT, ids=ids(CROSSING_POINT))
def test_crossing_point(answer):
    assert_verdict(judge("01.crossing_point", [SETUP_01, SERIAL], answer), answer)


def test_crossing_none_is_right_when_ray_never_wins():
    """A busy or one-core machine may never let Ray win: crossing = None is then the consistent answer."""
    answer = right("Ray never faster (tasks that also wait 50 ms stand for a busy machine)", """
@ray.remote
def slow_count(size):
    time.sleep(0.05)
    return montecarlo.count_inside(size)

ray_times = []
for size in sizes:
    start = time.perf_counter()
    ray.get([slow_count.remote(size) for _ in range(8)])
    ray_times.append(time.perf_counter() - start)
crossing = None
""", "never stayed faster")
    tiny = "sizes = [1_000, 2_000, 3_000, 4_000]\nserial_times = montecarlo.time_serial(sizes)\n"
    assert_verdict(judge("01.crossing_point", [SETUP_01, tiny], answer), answer)
