"""Adversarial catalogue, lesson 07 (actors): answers learners write, each with the verdict it must get."""
from __future__ import annotations

import pytest

from harness import assert_verdict, ids, judge, right, starter, wrong

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")

SETUP = """
import os
import time

import numpy as np
import ray
"""

# --- 07.counters -------------------------------------------------------------------------------

COUNTER = """
class Counter:
    def __init__(self):
        self.count = 0

    def increment(self):
        time.sleep(0.25)
        self.count += 1
        return self.count

    def get_count(self):
        return self.count
"""
ACTOR = "@ray.remote\n" + COUNTER
SOLUTION = ACTOR + """
counters = [Counter.remote() for _ in range(2)]
ray.get([c.get_count.remote() for c in counters])
refs = [[c.increment.remote() for _ in range(3)] for c in counters]
results = [ray.get(r) for r in refs]
"""
SERIAL_CALLS = ACTOR + """
counters = [Counter.remote() for _ in range(2)]
results = [[ray.get(c.increment.remote()) for _ in range(3)] for c in counters]
"""
COUNTERS = [
    starter("the starter", COUNTER + """
counters = [Counter() for _ in range(2)]
results = [[c.increment() for _ in range(3)] for c in counters]
""", "@ray.remote"),
    right("the solution", SOLUTION),
    right("no wait for start-up, one flat list of refs split afterwards", ACTOR + """
counters = [Counter.remote(), Counter.remote()]
refs = [c.increment.remote() for c in counters for _ in range(3)]
values = ray.get(refs)
results = [values[:3], values[3:]]
"""),
    right("ray.remote(plain class) under another name, .options, a numpy array", COUNTER + """
RemoteCounter = ray.remote(Counter)
Counter = RemoteCounter
counters = [Counter.options(name=f"counter-{i}-{time.time()}").remote() for i in range(2)]
refs = [[c.increment.remote() for _ in range(3)] for c in counters]
results = np.array([ray.get(r) for r in refs])
"""),
    right("calls interleaved between the counters, ray.wait before ray.get", ACTOR + """
counters = [Counter.remote() for _ in range(2)]
refs = [[], []]
for _ in range(3):
    for i, c in enumerate(counters):
        refs[i].append(c.increment.remote())
ray.wait(refs[0] + refs[1], num_returns=6)
results = [ray.get(refs[0]), ray.get(refs[1])]
"""),
    right("after an earlier serial attempt in the same kernel", SOLUTION, before=(SERIAL_CALLS,)),
    wrong("ray.get inside the loop", SERIAL_CALLS, "before it had sent all six calls"),
    wrong("one counter at a time", ACTOR + """
counters = [Counter.remote() for _ in range(2)]
results = [ray.get([c.increment.remote() for _ in range(3)]) for c in counters]
""", "could not work at the same time"),
    wrong("the same actor twice", ACTOR + """
c = Counter.remote()
counters = [c, c]
refs = [[x.increment.remote() for _ in range(3)] for x in counters]
results = [ray.get(r) for r in refs]
""", "same actor"),
    wrong("all six calls to the first counter", ACTOR + """
counters = [Counter.remote() for _ in range(2)]
refs = [[counters[0].increment.remote() for _ in range(3)] for _ in counters]
results = [ray.get(r) for r in refs]
""", "ONE actor"),
    wrong("a new actor for every call", ACTOR + """
counters = [Counter.remote() for _ in range(2)]
refs = [[Counter.remote().increment.remote() for _ in range(3)] for _ in counters]
results = [ray.get(r) for r in refs]
""", "brand-new actor"),
    wrong("calls sent, results typed in", ACTOR + """
counters = [Counter.remote() for _ in range(2)]
refs = [[c.increment.remote() for _ in range(3)] for c in counters]
results = [[1, 2, 3], [1, 2, 3]]
""", "never fetched"),
    wrong("refs instead of counts", ACTOR + """
counters = [Counter.remote() for _ in range(2)]
results = [[c.increment.remote() for _ in range(3)] for c in counters]
""", "ObjectRefs"),
    wrong("several calls at once in one counter (max_concurrency)", ACTOR + """
counters = [Counter.options(max_concurrency=3).remote() for _ in range(2)]
ray.get([c.get_count.remote() for c in counters])
refs = [[c.increment.remote() for _ in range(3)] for c in counters]
results = [ray.get(r) for r in refs]
""", "overlapped", "max_concurrency"),
    wrong("threads in the notebook", COUNTER + """
from concurrent.futures import ThreadPoolExecutor
counters = [Counter() for _ in range(2)]
with ThreadPoolExecutor(2) as pool:
    results = list(pool.map(lambda c: [c.increment() for _ in range(3)], counters))
""", "threads", "@ray.remote"),
    wrong("three counters", ACTOR + """
counters = [Counter.remote() for _ in range(3)]
refs = [[c.increment.remote() for _ in range(3)] for c in counters]
results = [ray.get(r) for r in refs]
""", "3 actors", "two counters"),
    wrong("four calls each, the last one dropped", ACTOR + """
counters = [Counter.remote() for _ in range(2)]
refs = [[c.increment.remote() for _ in range(4)] for c in counters]
results = [ray.get(r)[:3] for r in refs]
""", "4 increment calls"),
    wrong("counters made in an earlier cell, so the counts go on", """
refs = [[c.increment.remote() for _ in range(3)] for c in counters]
results = [ray.get(r) for r in refs]
""", "started at 4", before=(SOLUTION,)),
    wrong("results swapped between the counters, one list patched", ACTOR + """
counters = [Counter.remote() for _ in range(2)]
refs = [[c.increment.remote() for _ in range(3)] for c in counters]
results = [ray.get(r) for r in refs]
results[1] = [1, 2, 4]
""", "`results[1]`", "counter 1's calls returned"),
]


@pytest.mark.parametrize("answer", COUNTERS, ids=ids(COUNTERS))
def test_counters(answer):
    assert_verdict(judge("07.counters", SETUP, answer), answer)


# --- 07.logging_actor ---------------------------------------------------------------------------

LOGGER = """
class Logger:
    def __init__(self):
        self.messages = []

    def log(self, message):
        self.messages.append(message)

    def get_messages(self):
        return list(self.messages)
"""
EXPERIMENT = """
def experiment(logger, index, steps=5):
    for step in range(1, steps + 1):
        time.sleep(0.2)
        logger.log.remote(f"experiment {index}: step {step} of {steps}")
    return index
"""
ACTORS = "@ray.remote\n" + LOGGER + "\n@ray.remote\n" + EXPERIMENT
LOOP = ACTORS + """
logger = Logger.remote()
ray.get(logger.get_messages.remote())
pending = [experiment.remote(logger, i) for i in range(3)]
progress = []
while pending:
    _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
    progress.append(len(ray.get(logger.get_messages.remote())))
messages = ray.get(logger.get_messages.remote())
"""
ENDS_ONLY = ACTORS + """
logger = Logger.remote()
ray.get(logger.get_messages.remote())
refs = [experiment.remote(logger, i) for i in range(3)]
progress = [len(ray.get(logger.get_messages.remote()))]
ray.get(refs)
progress.append(len(ray.get(logger.get_messages.remote())))
messages = ray.get(logger.get_messages.remote())
"""
LOGGING = [
    starter("the starter", LOGGER + EXPERIMENT.replace("logger.log.remote(", "logger.log(") + """
logger = Logger()
progress = []
for i in range(3):
    experiment(logger, i)
    progress.append(len(logger.get_messages()))
messages = logger.get_messages()
""", "@ray.remote"),
    right("the solution", LOOP),
    right("a count method, ray.wait for one at a time", "@ray.remote\n" + LOGGER + """
    def count(self):
        return len(self.messages)

@ray.remote
""" + EXPERIMENT + """
logger = Logger.remote()
ray.get(logger.count.remote())
pending = [experiment.remote(logger, i) for i in range(3)]
progress = []
while pending:
    _, pending = ray.wait(pending, timeout=0.2)
    progress.append(ray.get(logger.count.remote()))
messages = ray.get(logger.get_messages.remote())
"""),
    right("polling with sleep and ray.wait(timeout=0), keyword arguments", ACTORS + """
logger = Logger.remote()
ray.get(logger.get_messages.remote())
refs = [experiment.remote(logger=logger, index=i, steps=5) for i in range(3)]
progress = []
while True:
    done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
    progress.append(len(ray.get(logger.get_messages.remote())))
    if len(done) == len(refs):
        break
    time.sleep(0.2)
messages = ray.get(logger.get_messages.remote())
"""),
    right("after an earlier attempt that read only at the ends", LOOP, before=(ENDS_ONLY,)),
    wrong("read only at the start and the end", ENDS_ONLY, "no reading taken while the experiments were still running"),
    wrong("read only at the end", ACTORS + """
logger = Logger.remote()
ray.get(logger.get_messages.remote())
ray.get([experiment.remote(logger, i) for i in range(3)])
progress = [len(ray.get(logger.get_messages.remote()))]
messages = ray.get(logger.get_messages.remote())
""", "no reading taken while"),
    wrong("each task makes its own logger", "@ray.remote\n" + LOGGER + """
@ray.remote
def experiment(index, steps=5):
    own = Logger.remote()
    for step in range(1, steps + 1):
        time.sleep(0.2)
        own.log.remote(f"experiment {index}: step {step} of {steps}")
    return index

logger = Logger.remote()
pending = [experiment.remote(i) for i in range(3)]
progress = []
while pending:
    _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
    progress.append(len(ray.get(logger.get_messages.remote())))
messages = ray.get(logger.get_messages.remote())
""", "given no logger"),
    wrong("a new logger passed to every task", ACTORS + """
logger = Logger.remote()
pending = [experiment.remote(Logger.remote(), i) for i in range(3)]
progress = []
while pending:
    _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
    progress.append(len(ray.get(logger.get_messages.remote())))
messages = ray.get(logger.get_messages.remote())
""", "different loggers"),
    wrong("experiments one after another", ACTORS + """
logger = Logger.remote()
progress = []
for i in range(3):
    ray.get(experiment.remote(logger, i))
    progress.append(len(ray.get(logger.get_messages.remote())))
messages = ray.get(logger.get_messages.remote())
""", "one after another"),
    wrong("progress typed in", ACTORS + """
logger = Logger.remote()
ray.get([experiment.remote(logger, i) for i in range(3)])
progress = [0, 5, 10, 15]
messages = ray.get(logger.get_messages.remote())
""", "not what the driver read"),
    wrong("Logger a plain class, copied into every task", LOGGER + "\n@ray.remote\n" + EXPERIMENT.replace(
        "logger.log.remote(", "logger.log(") + """
logger = Logger()
ray.get([experiment.remote(logger, i) for i in range(3)])
progress = [len(logger.get_messages())]
messages = logger.get_messages()
""", "`Logger` should be a class decorated with @ray.remote"),
    wrong("messages written out in the notebook", LOOP.replace(
        "messages = ray.get(logger.get_messages.remote())",
        "messages = [f'experiment {i}: step {s} of 5' for i in range(3) for s in range(1, 6)]"),
        "not what the logger returned"),
    wrong("messages read right after starting", ACTORS + """
logger = Logger.remote()
ray.get(logger.get_messages.remote())
pending = [experiment.remote(logger, i) for i in range(3)]
messages = ray.get(logger.get_messages.remote())
progress = []
while pending:
    _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
    progress.append(len(ray.get(logger.get_messages.remote())))
""", "read them after every experiment has finished"),
    wrong("progress holds the message lists", LOOP.replace(
        "progress.append(len(ray.get(logger.get_messages.remote())))",
        "progress.append(ray.get(logger.get_messages.remote()))"), "list of message counts"),
    wrong("threads in the notebook", LOGGER + EXPERIMENT.replace("logger.log.remote(", "logger.log(") + """
import threading
logger = Logger()
threads = [threading.Thread(target=experiment, args=(logger, i)) for i in range(3)]
progress = []
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    time.sleep(0.2)
    progress.append(len(logger.get_messages()))
messages = logger.get_messages()
""", "threads"),
]


@pytest.mark.parametrize("answer", LOGGING, ids=ids(LOGGING))
def test_logging_actor(answer):
    assert_verdict(judge("07.logging_actor", SETUP, answer), answer)


# --- 07.parameter_averaging ---------------------------------------------------------------------

AVERAGE = """
def average_weights(models):
    weights = ray.get([m.get_weights.remote() for m in models])
    average = [np.mean(layer, axis=0) for layer in zip(*weights)]
    ray.get([m.set_weights.remote(average) for m in models])
    return average
"""


def averaging(body: str) -> str:
    return "def average_weights(models):\n" + "\n".join("    " + line if line else "" for line in body.strip("\n").splitlines())


AVERAGING = [
    starter("the starter", averaging("return None"), "returns None"),
    right("the solution", AVERAGE),
    right("sums in a loop, ray.wait for the broadcast, a tuple returned", averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
total = [np.zeros_like(w) for w in weights[0]]
for layers in weights:
    for i, w in enumerate(layers):
        total[i] = total[i] + w
average = [t / len(models) for t in total]
refs = [m.set_weights.remote(average) for m in models]
ray.wait(refs, num_returns=len(refs))
return tuple(average)
""")),
    right("np.stack per layer, fetched and broadcast one model at a time", averaging("""
weights = [ray.get(m.get_weights.remote()) for m in models]
average = [np.stack(layer).mean(axis=0) for layer in zip(*weights)]
for m in models:
    ray.get(m.set_weights.remote(average))
return average
""")),
    right("after an earlier attempt that did not wait", AVERAGE, before=(averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
average = [np.mean(layer, axis=0) for layer in zip(*weights)]
[m.set_weights.remote(average) for m in models]
return average
"""),)),
    wrong("the sum instead of the mean", averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
average = [np.sum(layer, axis=0) for layer in zip(*weights)]
ray.get([m.set_weights.remote(average) for m in models])
return average
"""), "sum", "divide"),
    wrong("one model's weights", averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
average = weights[0]
ray.get([m.set_weights.remote(average) for m in models])
return average
"""), "model 0's weights"),
    wrong("the mean over the wrong axis", averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
average = [np.mean(np.stack(layer), axis=1) for layer in zip(*weights)]
ray.get([m.set_weights.remote(average) for m in models])
return average
"""), "wrong axis", "axis=0"),
    wrong("never broadcast", averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
return [np.mean(layer, axis=0) for layer in zip(*weights)]
"""), "still hold their own weights"),
    wrong("broadcast without waiting", averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
average = [np.mean(layer, axis=0) for layer in zip(*weights)]
[m.set_weights.remote(average) for m in models]
return average
"""), "returned before the models had applied"),
    wrong("get_weights without ray.get", averaging("""
weights = [m.get_weights.remote() for m in models]
average = [np.mean(layer, axis=0) for layer in zip(*weights)]
ray.get([m.set_weights.remote(average) for m in models])
return average
"""), "ObjectRefs", "ray.get"),
    wrong("a loop that only averages two models", averaging("""
first, second = ray.get([models[0].get_weights.remote(), models[1].get_weights.remote()])
average = [(a + b) / 2 for a, b in zip(first, second)]
ray.get([m.set_weights.remote(average) for m in models])
return average
"""), "only 2 of the"),
    wrong("the average sent to the first model only", averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
average = [np.mean(layer, axis=0) for layer in zip(*weights)]
ray.get(models[0].set_weights.remote(average))
return average
"""), "Only 1 of the"),
    wrong("returns the refs of the broadcast", averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
average = [np.mean(layer, axis=0) for layer in zip(*weights)]
return [m.set_weights.remote(average) for m in models]
"""), "ObjectRefs"),
    wrong("the mean of all numbers at once", averaging("""
weights = ray.get([m.get_weights.remote() for m in models])
average = [np.mean([w.mean() for w in layer]) for layer in zip(*weights)]
ray.get([m.set_weights.remote(average) for m in models])
return average
"""), "shapes"),
    wrong("a remote function instead of a driver function", "@ray.remote\n" + AVERAGE, "plain function"),
]


@pytest.mark.parametrize("answer", AVERAGING, ids=ids(AVERAGING))
def test_parameter_averaging(answer):
    verdict = judge("07.parameter_averaging", SETUP, answer)
    assert_verdict(verdict, answer)
    assert "All 2 " not in verdict.message


def test_parameter_averaging_uses_the_learners_own_count():
    from raycourse.grading import grade

    namespace: dict = {"__name__": "__learner__"}
    exec(SETUP + AVERAGE, namespace)
    from raycourse.checks.lesson07_averaging import parameter_averaging

    counts = set()
    for seed in (1, 2, 3):
        message = parameter_averaging(namespace["average_weights"], seed=seed)
        counts.add(message.split(" models")[0])
    assert len(counts) >= 2, counts  # different numbers of models for different seeds
    assert grade("07.parameter_averaging", namespace=namespace).passed
