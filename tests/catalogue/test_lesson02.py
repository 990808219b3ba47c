"""Adversarial catalogue, lesson 02: pipelines of refs and nested tasks, each answer with the verdict it must get."""
from __future__ import annotations

import pytest

from harness import assert_verdict, ids, judge, right, starter, wrong

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")

SETUP = """
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import ray
"""

# --- 02.pipeline -------------------------------------------------------------------------------------
# The lesson's stages with shorter sleeps; `REMOTE` decorates all four, `PLAIN` none.

BODIES = {
    "load_data": """
def load_data(i):
    time.sleep(0.1 + 0.05 * i)
    noise = random.gauss(0, 0.05)
    return [math.sin(i + k) * (i + 1) + noise for k in range(8)]
""",
    "normalize": """
def normalize(data):
    time.sleep(0.1)
    peak = max(abs(x) for x in data)
    return [x / peak for x in data]
""",
    "extract_features": """
def extract_features(data):
    time.sleep(0.1)
    mean = sum(data) / len(data)
    return [mean, max(data) - min(data), sum(x * x for x in data) / len(data)]
""",
    "compute_loss": """
def compute_loss(features):
    time.sleep(0.1)
    target = [0.0, 1.5, 0.5]
    return round(sum((f - t) ** 2 for f, t in zip(features, target)), 4)
""",
}


def stages(*plain: str) -> str:
    """The four stage definitions, each decorated with @ray.remote unless named in ``plain``."""
    return "".join(("" if name in plain else "\n@ray.remote") + body for name, body in BODIES.items())


REMOTE, PLAIN = stages(), stages(*BODIES)
CHAIN = """
loss_refs = []
for i in range(4):
    data = load_data.remote(i)
    normalized = normalize.remote(data)
    features = extract_features.remote(normalized)
    loss_refs.append(compute_loss.remote(features))
losses = ray.get(loss_refs)
"""
SERIAL = """
losses = []
for i in range(4):
    data = load_data(i)
    normalized = normalize(data)
    features = extract_features(normalized)
    losses.append(compute_loss(features))
"""

PIPELINE = [
    starter("the starter", PLAIN + SERIAL, "still run in the notebook"),
    right("the solution, stages and pipeline in two cells", CHAIN, before=(REMOTE,)),
    right("one nested expression per input, numpy array", REMOTE + """
losses = np.array(ray.get([compute_loss.remote(extract_features.remote(normalize.remote(load_data.remote(i))))
                           for i in range(4)]))
"""),
    right("ray.remote(fn) under new names, .options(name=...), and a helper task", PLAIN + """
load_task = ray.remote(load_data)
norm_task = ray.remote(normalize).options(name="norm")
features_task = ray.remote(extract_features)
loss_task = ray.remote(num_cpus=1)(compute_loss)

@ray.remote
def log_start(n):
    return f"starting {n} inputs"

ray.get(log_start.remote(4))
refs = [loss_task.remote(features_task.remote(norm_task.remote(load_task.remote(i)))) for i in range(4)]
losses = ray.get(refs)
"""),
    right("stage by stage lists of refs, then ray.wait on the losses, fetched one by one", REMOTE + """
loaded = [load_data.remote(i) for i in range(4)]
normalized = [normalize.remote(r) for r in loaded]
features = [extract_features.remote(r) for r in normalized]
loss_refs = [compute_loss.remote(r) for r in features]
ray.wait(loss_refs, num_returns=len(loss_refs))
losses = [ray.get(r) for r in loss_refs]
"""),
    right("after a barrier attempt in the same kernel", REMOTE + CHAIN, before=(REMOTE + """
data = ray.get([load_data.remote(i) for i in range(4)])
losses = ray.get([compute_loss.remote(extract_features.remote(normalize.remote(d))) for d in data])
""",)),
    wrong("a ray.get between the first two stages (barrier)", REMOTE + """
data = ray.get([load_data.remote(i) for i in range(4)])
losses = ray.get([compute_loss.remote(extract_features.remote(normalize.remote(d))) for d in data])
""", "barrier", "load_data"),
    wrong("refs passed on, but a ray.wait for all loads first", REMOTE + """
loaded = [load_data.remote(i) for i in range(4)]
ray.wait(loaded, num_returns=4)
losses = ray.get([compute_loss.remote(extract_features.remote(normalize.remote(r))) for r in loaded])
""", "ray.wait", "barrier"),
    wrong("ray.get inside the loop, per input", REMOTE + """
losses = []
for i in range(4):
    features = extract_features.remote(normalize.remote(load_data.remote(i)))
    losses.append(ray.get(compute_loss.remote(features)))
""", "inside the loop"),
    wrong("one stage left as a plain function, run in the driver", stages("extract_features") + """
losses = []
refs = []
for i in range(4):
    normalized = ray.get(normalize.remote(load_data.remote(i)))
    refs.append(compute_loss.remote(extract_features(normalized)))
losses = ray.get(refs)
""", "`extract_features`", "plain function"),
    wrong("the ref wrapped in a list, so the stage gets a ref", REMOTE + """
losses = ray.get([compute_loss.remote(extract_features.remote(normalize.remote([load_data.remote(i)])))
                  for i in range(4)])
""", "list holding a ref", "`normalize`"),
    wrong("losses typed in next to decoy tasks", REMOTE + CHAIN + """
losses = [0.9416, 0.7712, 0.8051, 0.6409]
""", "typed-in"),
    wrong("losses recomputed in the driver from the plain functions", REMOTE + CHAIN + """
losses = [compute_loss._function(extract_features._function(normalize._function(load_data._function(i))))
          for i in range(4)]
""", "keep the values ray.get gives you"),
    wrong("decoy tasks never fetched, losses computed in the driver", REMOTE + """
loss_refs = [compute_loss.remote(extract_features.remote(normalize.remote(load_data.remote(i)))) for i in range(4)]
losses = [compute_loss._function(extract_features._function(normalize._function(load_data._function(i))))
          for i in range(4)]
""", "never fetched"),
    wrong("stages chained in the wrong order", REMOTE + """
losses = ray.get([compute_loss.remote(normalize.remote(extract_features.remote(load_data.remote(i))))
                  for i in range(4)])
""", "output of `extract_features`", "load_data → normalize"),
    wrong("a stage skipped", REMOTE + """
losses = ray.get([compute_loss.remote(normalize.remote(load_data.remote(i))) for i in range(4)])
""", "No `extract_features` task"),
    wrong("a stage skipped, with a decoy submission of it", REMOTE + """
loss_refs = []
for i in range(4):
    normalized = normalize.remote(load_data.remote(i))
    extract_features.remote(normalized)
    loss_refs.append(compute_loss.remote(normalized))
losses = ray.get(loss_refs)
""", "output of `normalize`", "extract_features"),
    wrong("every input loaded twice", REMOTE + """
loss_refs = []
for i in range(4):
    load_data.remote(i)
    loss_refs.append(compute_loss.remote(extract_features.remote(normalize.remote(load_data.remote(i)))))
losses = ray.get(loss_refs)
""", "submitted 8 times"),
    wrong("losses in completion order, not input order", REMOTE + """
loss_refs = [compute_loss.remote(extract_features.remote(normalize.remote(load_data.remote(i)))) for i in range(4)]
losses = [ray.get(r) for r in reversed(loss_refs)]
""", "wrong order"),
    wrong("refs, not numbers", REMOTE + """
losses = [compute_loss.remote(extract_features.remote(normalize.remote(load_data.remote(i)))) for i in range(4)]
""", "ObjectRefs"),
    wrong("threads in the driver", PLAIN + """
def run(i):
    return compute_loss(extract_features(normalize(load_data(i))))

with ThreadPoolExecutor(4) as pool:
    losses = list(pool.map(run, range(4)))
""", "threads"),
    wrong("the stages redefined after the pipeline ran", REMOTE, "run the pipeline cell again",
          before=(REMOTE + CHAIN,)),
]


@pytest.mark.parametrize("answer", PIPELINE, ids=ids(PIPELINE))
def test_pipeline(answer):
    assert_verdict(judge("02.pipeline", SETUP, answer), answer)


# --- 02.nested_tasks ---------------------------------------------------------------------------------

EVALUATE = """
LEARNING_RATES = [0.001, 0.01, 0.1, 1.0]
NUM_FOLDS = 3

def evaluate(learning_rate, fold):
    time.sleep(0.3)
    distance = math.log10(learning_rate) + 1.3
    noise = random.gauss(0, 0.002)
    return round(0.95 - 0.1 * distance**2 - 0.01 * fold + noise, 4)
"""
REMOTE_EVALUATE = EVALUATE.replace("def evaluate", "@ray.remote\ndef evaluate")
NESTED = """
@ray.remote
def run_experiment(learning_rate):
    scores = ray.get([evaluate.remote(learning_rate, fold) for fold in range(NUM_FOLDS)])
    return sum(scores) / len(scores)
"""
DRIVER = """
results = ray.get([run_experiment.remote(lr) for lr in LEARNING_RATES])
best = LEARNING_RATES[results.index(max(results))]
"""

NESTED_TASKS = [
    starter("the starter", EVALUATE + """
def run_experiment(learning_rate):
    scores = [evaluate(learning_rate, fold) for fold in range(NUM_FOLDS)]
    return sum(scores) / len(scores)

results = [run_experiment(lr) for lr in LEARNING_RATES]
best = LEARNING_RATES[results.index(max(results))]
""", "still runs in the notebook"),
    right("the solution, in three cells", DRIVER, before=(REMOTE_EVALUATE, NESTED)),
    right("ray.wait inside the experiment, numpy mean and argmax, .options(name=...)", REMOTE_EVALUATE + """
@ray.remote
def run_experiment(learning_rate):
    pending = [evaluate.options(name=f"fold-{f}").remote(learning_rate, f) for f in range(NUM_FOLDS)]
    ray.wait(pending, num_returns=len(pending))
    return float(np.mean(ray.get(pending)))

refs = [run_experiment.remote(lr) for lr in LEARNING_RATES]
results = np.array(ray.get(refs))
best = LEARNING_RATES[int(np.argmax(results))]
"""),
    right("renamed functions made with ray.remote(fn), a dict of refs", EVALUATE + """
score_fold = ray.remote(evaluate)

def sweep_one(learning_rate):
    return sum(ray.get([score_fold.remote(learning_rate, f) for f in range(NUM_FOLDS)])) / NUM_FOLDS

run_experiment = ray.remote(sweep_one)
pending = {lr: run_experiment.remote(lr) for lr in LEARNING_RATES}
results = [ray.get(pending[lr]) for lr in LEARNING_RATES]
best = max(LEARNING_RATES, key=lambda lr: results[LEARNING_RATES.index(lr)])
"""),
    right("after a serial attempt in the same kernel", REMOTE_EVALUATE + NESTED + DRIVER, before=(
        REMOTE_EVALUATE + NESTED + """
results = [ray.get(run_experiment.remote(lr)) for lr in LEARNING_RATES]
best = LEARNING_RATES[results.index(max(results))]
""",)),
    wrong("folds serial inside the experiment", REMOTE_EVALUATE + """
@ray.remote
def run_experiment(learning_rate):
    scores = [ray.get(evaluate.remote(learning_rate, fold)) for fold in range(NUM_FOLDS)]
    return sum(scores) / len(scores)
""" + DRIVER, "one after another", "inside run_experiment"),
    wrong("experiments serial in the driver", REMOTE_EVALUATE + NESTED + """
results = [ray.get(run_experiment.remote(lr)) for lr in LEARNING_RATES]
best = LEARNING_RATES[results.index(max(results))]
""", "one at a time"),
    wrong("evaluate called from the driver, not nested", REMOTE_EVALUATE + NESTED + """
fold_refs = [[evaluate.remote(lr, f) for f in range(NUM_FOLDS)] for lr in LEARNING_RATES]
results = [sum(ray.get(refs)) / NUM_FOLDS for refs in fold_refs]
best = LEARNING_RATES[results.index(max(results))]
""", "driver submitted 12 evaluate tasks"),
    wrong("run_experiment still a plain function, folds submitted from the driver", REMOTE_EVALUATE + """
def run_experiment(learning_rate):
    return sum(ray.get([evaluate.remote(learning_rate, f) for f in range(NUM_FOLDS)])) / NUM_FOLDS

results = [run_experiment(lr) for lr in LEARNING_RATES]
best = LEARNING_RATES[results.index(max(results))]
""", "`run_experiment` is a plain function"),
    wrong("evaluate left a plain function", EVALUATE + """
@ray.remote
def run_experiment(learning_rate):
    scores = [evaluate(learning_rate, fold) for fold in range(NUM_FOLDS)]
    return sum(scores) / len(scores)
""" + DRIVER, "`evaluate` is a plain function"),
    wrong("run_experiment returns refs", REMOTE_EVALUATE + """
@ray.remote
def run_experiment(learning_rate):
    return [evaluate.remote(learning_rate, fold) for fold in range(NUM_FOLDS)]

results = ray.get([run_experiment.remote(lr) for lr in LEARNING_RATES])
best = LEARNING_RATES[0]
""", "returned ObjectRefs"),
    wrong("run_experiment returns refs, the driver averages them", REMOTE_EVALUATE + """
@ray.remote
def run_experiment(learning_rate):
    return [evaluate.remote(learning_rate, fold) for fold in range(NUM_FOLDS)]

nested = ray.get([run_experiment.remote(lr) for lr in LEARNING_RATES])
results = [sum(ray.get(refs)) / NUM_FOLDS for refs in nested]
best = LEARNING_RATES[results.index(max(results))]
""", "returned ObjectRefs"),
    wrong("values typed in after the sweep", REMOTE_EVALUATE + NESTED + DRIVER + """
results = [0.6511, 0.8911, 0.9311, 0.7711]
best = 0.1
""", "typed-in"),
    wrong("threads in the driver", EVALUATE + """
def run_experiment(learning_rate):
    with ThreadPoolExecutor(NUM_FOLDS) as pool:
        scores = list(pool.map(lambda f: evaluate(learning_rate, f), range(NUM_FOLDS)))
    return sum(scores) / len(scores)

with ThreadPoolExecutor(4) as pool:
    results = list(pool.map(run_experiment, LEARNING_RATES))
best = LEARNING_RATES[results.index(max(results))]
""", "threads"),
    wrong("best is the score, not the learning rate", REMOTE_EVALUATE + NESTED + """
results = ray.get([run_experiment.remote(lr) for lr in LEARNING_RATES])
best = max(results)
""", "a score", "learning rate"),
    wrong("best is the first learning rate", REMOTE_EVALUATE + NESTED + """
results = ray.get([run_experiment.remote(lr) for lr in LEARNING_RATES])
best = LEARNING_RATES[0]
""", "highest mean score"),
    wrong("the maximum fold instead of the mean", REMOTE_EVALUATE + """
@ray.remote
def run_experiment(learning_rate):
    return max(ray.get([evaluate.remote(learning_rate, fold) for fold in range(NUM_FOLDS)]))
""" + DRIVER, "not the mean"),
    wrong("each experiment submitted twice", REMOTE_EVALUATE + NESTED + """
[run_experiment.remote(lr) for lr in LEARNING_RATES]
results = ray.get([run_experiment.remote(lr) for lr in LEARNING_RATES])
best = LEARNING_RATES[results.index(max(results))]
""", "8 run_experiment tasks"),
]


@pytest.mark.parametrize("answer", NESTED_TASKS, ids=ids(NESTED_TASKS))
def test_nested_tasks(answer):
    assert_verdict(judge("02.nested_tasks", SETUP, answer), answer)
