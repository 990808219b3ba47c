"""Lesson 02: each check passes the solution and fails each realistic wrong answer with its hint.

The wrong answers are real code run on a real (local) Ray, as a learner would write it.
"""
from __future__ import annotations

import math
import time
from unittest.mock import patch

import pytest
import ray

from raycourse.grading import grade
from raycourse.checks import lesson02

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")


# --- 02.pipeline ------------------------------------------------------------------------


def load_data(i):
    time.sleep(0.25 * (i + 1))
    return [math.sin(i + k) * (i + 1) for k in range(8)]


def normalize(data):
    time.sleep(0.2)
    peak = max(abs(x) for x in data)
    return [x / peak for x in data]


def extract_features(data):
    time.sleep(0.2)
    mean = sum(data) / len(data)
    return [mean, max(data) - min(data), sum(x * x for x in data) / len(data)]


def compute_loss(features):
    time.sleep(0.2)
    target = [0.0, 1.5, 0.5]
    return round(sum((f - t) ** 2 for f, t in zip(features, target)), 4)


STAGES = [load_data, normalize, extract_features, compute_loss]
REMOTE = [ray.remote(f) for f in STAGES]
LOSSES = lesson02.expected_losses()


def pipeline_answer(style="chained", stages=REMOTE):
    load, norm, feat, loss = stages
    since = time.time()
    if style == "chained":
        losses = ray.get([loss.remote(feat.remote(norm.remote(load.remote(i)))) for i in range(4)])
    elif style == "get_per_input":
        losses = [ray.get(loss.remote(feat.remote(norm.remote(load.remote(i))))) for i in range(4)]
    elif style == "barrier":
        data = ray.get([load.remote(i) for i in range(4)])
        normalized = ray.get([norm.remote(d) for d in data])
        features = ray.get([feat.remote(n) for n in normalized])
        losses = ray.get([loss.remote(f) for f in features])
    elif style == "refs":
        losses = [loss.remote(feat.remote(norm.remote(load.remote(i)))) for i in range(4)]
    elif style == "plain_extract":  # forgot @ray.remote on extract_features: it ran in the driver
        losses = ray.get([loss.remote(feat(ray.get(norm.remote(load.remote(i))))) for i in range(4)])
    else:
        raise ValueError(style)
    return dict(losses=losses, since=since, **dict(zip(lesson02.STAGES, stages)))


def test_the_checks_formulas_match_the_notebooks_functions():
    with patch("time.sleep"):
        losses = [compute_loss(extract_features(normalize(load_data(i)))) for i in range(4)]
        means = [sum(evaluate(lr, f) for f in range(NUM_FOLDS)) / NUM_FOLDS for lr in LEARNING_RATES]
    assert losses == LOSSES and len(set(LOSSES)) == 4, "each input must give its own loss"
    assert means == lesson02.expected_results() and LEARNING_RATES == lesson02.LEARNING_RATES


def test_pipeline_correct():
    v = grade("02.pipeline", **pipeline_answer())
    assert v.status == "correct", v


def test_pipeline_starter_is_not_attempted():
    # The starter's values, computed without the sleeps (the check does not time the starter).
    v = grade("02.pipeline", losses=list(LOSSES), since=time.time(), **dict(zip(lesson02.STAGES, STAGES)))
    assert v.status == "not attempted", v


def test_pipeline_get_inside_the_loop():
    v = grade("02.pipeline", **pipeline_answer("get_per_input"))
    assert v.status == "incorrect" and "ray.get inside the loop" in v.message, v


def test_pipeline_get_after_each_stage_is_a_barrier():
    v = grade("02.pipeline", **pipeline_answer("barrier"))
    assert v.status == "incorrect" and "barrier" in v.message and "slowest load_data" in v.message, v


def test_pipeline_returned_refs():
    answer = pipeline_answer("refs")
    v = grade("02.pipeline", **answer)
    ray.get(answer["losses"])  # let them finish so they cannot land in the next test's window
    assert v.status == "incorrect" and "ObjectRefs" in v.message, v


def test_pipeline_hard_coded_losses():
    v = grade("02.pipeline", losses=list(LOSSES), since=time.time(), **dict(zip(lesson02.STAGES, REMOTE)))
    assert v.status == "incorrect" and "no pipeline task" in v.message, v


def test_pipeline_forgot_remote_on_one_stage():
    stages = [REMOTE[0], REMOTE[1], extract_features, REMOTE[3]]
    v = grade("02.pipeline", **pipeline_answer("plain_extract", stages))
    assert v.status == "incorrect" and "`extract_features` is still a plain function" in v.message, v


def test_pipeline_wrong_order_of_losses():
    v = grade("02.pipeline", losses=list(reversed(LOSSES)), since=time.time(), **dict(zip(lesson02.STAGES, REMOTE)))
    assert v.status == "incorrect" and "input order" in v.message, v


# --- 02.nested_tasks -----------------------------------------------------------------------

LEARNING_RATES = [0.001, 0.01, 0.1, 1.0]
NUM_FOLDS = 3


def evaluate(learning_rate, fold):
    time.sleep(0.25)
    distance = math.log10(learning_rate) + 1.3
    return round(0.95 - 0.1 * distance**2 - 0.01 * fold, 4)


remote_evaluate = ray.remote(evaluate)


@ray.remote
def run_experiment(learning_rate):
    scores = ray.get([remote_evaluate.remote(learning_rate, fold) for fold in range(NUM_FOLDS)])
    return sum(scores) / len(scores)


@ray.remote
def run_experiment_serial_folds(learning_rate):
    scores = [ray.get(remote_evaluate.remote(learning_rate, fold)) for fold in range(NUM_FOLDS)]
    return sum(scores) / len(scores)


@ray.remote
def run_experiment_plain_evaluate(learning_rate):
    scores = [evaluate(learning_rate, fold) for fold in range(NUM_FOLDS)]
    return sum(scores) / len(scores)


@ray.remote
def run_experiment_returns_refs(learning_rate):
    return [remote_evaluate.remote(learning_rate, fold) for fold in range(NUM_FOLDS)]


def plain_run_experiment(learning_rate):
    scores = [evaluate(learning_rate, fold) for fold in range(NUM_FOLDS)]
    return sum(scores) / len(scores)


def sweep(experiment, inner=remote_evaluate, one_at_a_time=False):
    since = time.time()
    if one_at_a_time:
        results = [ray.get(experiment.remote(lr)) for lr in LEARNING_RATES]
    else:
        results = ray.get([experiment.remote(lr) for lr in LEARNING_RATES])
    try:
        best = LEARNING_RATES[results.index(max(results))]
    except TypeError:
        best = None
    return dict(results=results, best=best, since=since, run_experiment=experiment, evaluate=inner)


def test_nested_correct():
    v = grade("02.nested_tasks", **sweep(run_experiment))
    assert v.status == "correct", v
    assert "0.1" in v.message


def test_nested_starter_is_not_attempted():
    results = lesson02.expected_results()
    v = grade("02.nested_tasks", results=results, best=0.1, since=time.time(),
              run_experiment=plain_run_experiment, evaluate=evaluate)
    assert v.status == "not attempted", v


def test_nested_serial_inner_loop():
    v = grade("02.nested_tasks", **sweep(run_experiment_serial_folds))
    assert v.status == "incorrect" and "Inside one experiment the folds ran one after another" in v.message, v


def test_nested_experiments_one_at_a_time_from_the_driver():
    v = grade("02.nested_tasks", **sweep(run_experiment, one_at_a_time=True))
    assert v.status == "incorrect" and "experiments ran one at a time" in v.message, v


def test_nested_inner_tasks_without_remote():
    v = grade("02.nested_tasks", **sweep(run_experiment_plain_evaluate, inner=evaluate))
    assert v.status == "incorrect" and "`evaluate` is a plain function" in v.message, v


def test_nested_returned_refs():
    answer = sweep(run_experiment_returns_refs)
    v = grade("02.nested_tasks", **answer)
    ray.get([r for refs in answer["results"] for r in refs])
    assert v.status == "incorrect" and "returned ObjectRefs instead of a number" in v.message, v


def driver_run_experiment(learning_rate):  # not nested: the driver launches every fold itself
    scores = ray.get([remote_evaluate.remote(learning_rate, fold) for fold in range(NUM_FOLDS)])
    return sum(scores) / len(scores)


def test_nested_outer_not_remote():
    since = time.time()
    results = [driver_run_experiment(lr) for lr in LEARNING_RATES]
    v = grade("02.nested_tasks", results=results, best=0.1, since=since,
              run_experiment=driver_run_experiment, evaluate=remote_evaluate)
    assert v.status == "incorrect" and "`run_experiment` is a plain function" in v.message, v


def test_nested_best_is_the_score_not_the_rate():
    results = lesson02.expected_results()
    v = grade("02.nested_tasks", results=results, best=max(results), since=time.time(),
              run_experiment=run_experiment, evaluate=remote_evaluate)
    assert v.status == "incorrect" and "not the score" in v.message, v


def test_nested_hard_coded_results():
    v = grade("02.nested_tasks", results=lesson02.expected_results(), best=0.1, since=time.time(),
              run_experiment=run_experiment, evaluate=remote_evaluate)
    assert v.status == "incorrect" and "no run_experiment or evaluate task" in v.message, v
