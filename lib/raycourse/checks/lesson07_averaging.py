"""Checks for lesson 07, part two: ``07.parameter_averaging``, run on model actors the check creates.

The number of models and the layer shapes are drawn at check time, so no answer can be tuned to the lesson's three models.
"""
from __future__ import annotations
import random
from typing import Any, Sequence
import numpy as np
from .. import record
from ..grading import Incorrect, NotAttempted, exercise
from ..record import Fetch, Wait
from .evidence import Run, actor_id, call_keeping_run, holds_ref, is_actor_class, is_ref, is_remote_function, learner_error
from .lesson07 import tasks_of


class Replica:
    """The check's own model replica: numpy weights, one array per layer, of shapes the check chooses."""

    def __init__(self, seed: int, shapes: Sequence[tuple[int, ...]]) -> None:
        self.reset(seed, shapes)

    def reset(self, seed: int, shapes: Sequence[tuple[int, ...]]) -> bool:
        """New weights: a replica kept from an earlier check is as good as a fresh one."""
        rng = np.random.default_rng(seed)
        self.weights = [rng.normal(size=shape) for shape in shapes]
        return True

    def train(self, steps: int = 5) -> int:
        return steps

    def get_weights(self) -> list[np.ndarray]:
        return self.weights

    def set_weights(self, weights: Sequence[Any]) -> None:
        self.weights = [np.array(w, dtype=float, copy=True) for w in weights]


_KEPT: dict[str, Any] = {"job": None, "replicas": []}


def _replicas(rng: random.Random, count: int, shapes: Sequence[tuple[int, ...]]) -> list[Any]:
    """``count`` replicas with fresh weights, reusing those an earlier check of this driver left alive.

    Every actor is a process of its own (seconds to start on a busy machine), so a learner who checks
    again, or a test catalogue of many answers, should not pay for new ones each time. A replica the
    learner's code killed is replaced.
    """
    import ray

    context = ray.get_runtime_context()
    job = (context.get_job_id(), context.get_node_id())  # job ids restart at 01000000 in every new Ray
    if _KEPT["job"] != job:
        _KEPT.update(job=job, replicas=[])
    kept, ready = list(_KEPT["replicas"]), []
    while kept and len(ready) < count:
        replica = kept.pop(0)
        try:
            ray.get(replica.reset.remote(rng.randrange(1_000_000), shapes), timeout=30)
            ready.append(replica)
        except Exception:  # died, timed out, or a handle of an earlier Ray (refused as it is submitted)
            pass
    make = ray.remote(num_cpus=0)(Replica)
    ready += [make.remote(rng.randrange(1_000_000), shapes) for _ in range(count - len(ready))]
    _KEPT["replicas"] = ready + kept
    return ready


def _shapes(rng: random.Random) -> list[tuple[int, ...]]:
    """Two or three layers of sizes chosen now: a matrix, its bias, maybe another matrix."""
    a, b, c = rng.randint(2, 6), rng.randint(2, 6), rng.randint(2, 5)
    shapes: list[tuple[int, ...]] = [(a, b), (b,)]
    if rng.random() < 0.5:
        shapes.append((b, c))
    return shapes


def _layers(value: Any) -> list[np.ndarray] | None:
    if not isinstance(value, (list, tuple)) or not value:
        return None
    try:
        return [np.asarray(w, dtype=float) for w in value]
    except (TypeError, ValueError):
        return None


def _same(a: list[np.ndarray] | None, b: list[np.ndarray]) -> bool:
    return a is not None and len(a) == len(b) and all(x.shape == y.shape and np.allclose(x, y) for x, y in zip(a, b))


def _mean(weights: Sequence[list[np.ndarray]]) -> list[np.ndarray]:
    return [np.mean([w[layer] for w in weights], axis=0) for layer in range(len(weights[0]))]


def _waited_for(run: Run, task_ids: Sequence[str]) -> bool:
    """Did the run's ray.get / ray.wait calls cover every one of ``task_ids`` (all fetched or reported ready)?"""
    wanted, seen = set(task_ids), set()
    for r in run.records:
        if isinstance(r, Fetch) and r.values is not None:
            seen |= set(r.task_ids)
        elif isinstance(r, Wait):
            seen |= set(r.ready)
    return wanted <= seen


@exercise("07.parameter_averaging", "Average the weights of model actors and send the average to all")
def parameter_averaging(average_weights: Any, seed: int | None = None) -> str:
    """Runs the learner's function on 3-6 fresh replicas with layer shapes chosen now; reads each replica after."""
    import ray

    if not callable(average_weights) or is_actor_class(average_weights):
        raise Incorrect("`average_weights` should be a function that takes a list of model actors.")
    if is_remote_function(average_weights):
        raise Incorrect("`average_weights` should be a plain function run in the notebook (it drives the actors): "
                        "remove its @ray.remote.")
    rng = random.Random(seed)
    count, shapes = rng.randint(3, 6), _shapes(rng)
    with record.paused():
        models = _replicas(rng, count, shapes)
        before = [[np.asarray(w) for w in ws] for ws in ray.get([m.get_weights.remote() for m in models], timeout=60)]
    result, error, run = call_keeping_run(average_weights, list(models), what="average_weights(models)", timeout=60)
    with record.paused():
        try:
            after = [[np.asarray(w) for w in ws] for ws in ray.get([m.get_weights.remote() for m in models], timeout=60)]
        except ray.exceptions.RayActorError:
            raise Incorrect("A model actor died while `average_weights` ran: do not kill the models, only read and "
                            "set their weights.") from None
    ids = {actor_id(m): i for i, m in enumerate(models)}
    gets = [s for s in run.submissions(kind="method") if s.actor_id in ids and s.name.endswith("get_weights")]
    sets = [s for s in run.submissions(kind="method") if s.actor_id in ids and s.name.endswith("set_weights")]
    unchanged = all(_same(a, b) for a, b in zip(after, before))
    what = f"average_weights(models) with {count} models"
    if error is not None:
        if gets and not run.fetched(tasks_of(gets)):
            raise Incorrect(f"`{what}` failed because it averaged ObjectRefs: get_weights.remote() returns refs. "
                            "Fetch the weights first: ray.get([m.get_weights.remote() for m in models]).")
        raise Incorrect(learner_error(what, error))
    if result is None and unchanged and not sets:
        if not gets:
            raise NotAttempted("`average_weights` returns None and leaves the models alone: fetch their weights, "
                               "average them layer by layer, and send the average back.")
        raise Incorrect("`average_weights` returned None: return the averaged weights (a list of arrays, one per layer).")
    expected = _mean(before)
    if is_ref(result) or holds_ref(result):
        raise Incorrect("`average_weights` returned ObjectRefs: ray.get the weights, average them, return the arrays.")
    got = _layers(result)
    if got is None:
        raise Incorrect(f"`average_weights` should return a list of arrays (one per layer), got {type(result).__name__}.")
    if not _same(got, expected):
        raise Incorrect(_averaging_mistake(got, expected, before))
    if unchanged:
        raise Incorrect(f"The {count} models still hold their own weights: send the average to every model with "
                        "model.set_weights.remote(average).")
    holding = sum(_same(a, expected) for a in after)
    if holding < count:
        raise Incorrect(f"Only {holding} of the {count} models hold the average afterwards: call "
                        "set_weights.remote(average) on every model in `models`.")
    if not _waited_for(run, tasks_of(sets)):
        raise Incorrect("`average_weights` returned before the models had applied the average: set_weights.remote() "
                        "only sends the message. Wait for those calls (ray.get on their refs) before returning.")
    return (f"All {count} models (layers of shapes {', '.join(map(str, shapes))}) now hold the layer-by-layer mean of "
            "their weights, and `average_weights` waited until every one had applied it.")


def _averaging_mistake(got: list[np.ndarray], expected: list[np.ndarray], before: list[list[np.ndarray]]) -> str:
    """Name the slip behind a wrong average: the sum, one model, a fixed pair, the wrong axis."""
    count = len(before)
    if _same(got, [np.sum([w[layer] for w in before], axis=0) for layer in range(len(expected))]):
        return f"You returned the sum of the {count} models' weights: divide by the number of models (np.mean)."
    for index, weights in enumerate(before):
        if _same(got, weights):
            return f"You returned model {index}'s weights, not the mean over all {count} models."
    for i in range(count):
        for j in range(i + 1, count):
            if _same(got, _mean([before[i], before[j]])):
                return (f"You averaged only 2 of the {count} models: average over every model in `models`, "
                        "however many there are.")
    stacked = [np.stack([w[layer] for w in before]) for layer in range(len(expected))]
    if len(got) == len(expected) and all(any(g.shape == np.mean(s, axis=a).shape and np.allclose(g, np.mean(s, axis=a))
                                             for a in range(1, s.ndim)) for g, s in zip(got, stacked)):
        return ("You averaged over the wrong axis: within each model's layer instead of across the models. For each "
                "layer, np.mean(that layer's arrays from every model, axis=0) keeps the layer's shape.")
    if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
        shapes = ", ".join(str(g.shape) for g in got)
        return (f"The average has layers of shapes {shapes}, but the models' layers have shapes "
                f"{', '.join(str(e.shape) for e in expected)}: average over the models, not within a layer. For each "
                "layer, np.mean(that layer's arrays from every model, axis=0).")
    return ("The returned weights are not the layer-by-layer mean: for each layer, np.mean of that layer's arrays "
            "from every model (axis=0).")
