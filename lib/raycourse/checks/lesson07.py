"""Checks for lesson 07 (actors and the Game of Life).

Evidence used: the values actors returned, which worker process ran each
actor method (``raycourse.timing.intervals``: one actor is one process, so
intervals grouped by worker are intervals grouped by actor), whether those
intervals overlapped, process ids read from the actors, and, for functions the
learner writes, running them on fresh inputs.

Ray 2.60's timeline names an actor method by its bare name (``"increment"``),
so method names here are the ones the exercises ask for.
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from typing import Any, Callable, Sequence

import numpy as np

from .. import timing
from ..grading import Incorrect, NotAttempted, exercise
from .evidence import is_ref as is_object_ref
from ..lessons.life import ConwaysRules, State, patterns
from ..lessons.life.rules import conway
from .evidence import is_remote_function


def _is_actor_class(obj: Any) -> bool:
    import ray.actor

    return isinstance(obj, ray.actor.ActorClass)


def _is_actor(obj: Any) -> bool:
    import ray.actor

    return isinstance(obj, ray.actor.ActorHandle)


def _actor_id(handle: Any) -> str:
    return handle._actor_id.hex()


def _by_worker(spans: Sequence[timing.Interval]) -> dict[str, list[timing.Interval]]:
    groups: dict[str, list[timing.Interval]] = defaultdict(list)
    for s in spans:
        groups[s.worker].append(s)
    return groups


def _no_refs(value: Any, what: str) -> None:
    if is_object_ref(value) or (isinstance(value, (list, tuple)) and any(
            is_object_ref(v) or (isinstance(v, (list, tuple)) and any(is_object_ref(x) for x in v)) for v in value)):
        raise Incorrect(f"`{what}` holds ObjectRefs, not values: ray.get(...) them (once, on the whole list).")


# --- 07.counters -----------------------------------------------------------------------


@exercise("07.counters", "Two counter actors: each one's calls in order, the two in parallel")
def counters(Counter: Any, counters: Any, results: Any, since: float, calls: int = 3) -> str:
    expected = [list(range(1, calls + 1))] * 2
    if not _is_actor_class(Counter):
        if isinstance(results, list) and [list(r) for r in results] == expected:
            raise NotAttempted("`Counter` is still a plain class running in the notebook: decorate it with @ray.remote "
                               "and call counter.increment.remote().")
        raise Incorrect("`Counter` should be a class decorated with @ray.remote.")
    if not isinstance(counters, (list, tuple)) or len(counters) != 2 or not all(_is_actor(c) for c in counters):
        raise Incorrect("`counters` should be a list of two actor handles, made with Counter.remote().")
    if _actor_id(counters[0]) == _actor_id(counters[1]):
        raise Incorrect("Both entries of `counters` are the same actor: call Counter.remote() twice to get two actors.")
    _no_refs(results, "results")
    try:
        values = [list(r) for r in results]
    except TypeError:
        raise Incorrect(f"`results` should be two lists of {calls} counts, one per counter.") from None
    if len(values) != 2 or any(len(v) != calls for v in values):
        raise Incorrect(f"`results` should be two lists of {calls} counts, one per counter; got {values!r}.")
    if all(v == [1] * calls for v in values):
        raise Incorrect("Every call returned 1: each call went to a brand-new actor, so its count was lost. Create the "
                        "two actors once and call increment.remote() on those same handles.")
    if sorted(values[0] + values[1]) == list(range(1, 2 * calls + 1)):
        raise Incorrect("The counts run 1..6 across both lists: all calls went to ONE actor. Give each counter its own actor.")
    if values != expected:
        raise Incorrect(f"`results` is {values!r}; each counter should count {expected[0]!r}, in the order of its calls.")
    ran = timing.intervals(name="increment", since=since, expect=2 * calls)
    if len(ran) < 2 * calls:
        raise Incorrect(f"Ray recorded {len(ran)} increment calls after `since`, not {2 * calls}: set `since` just before "
                        "the calls, and make the results come from those calls.")
    groups = _by_worker(ran)
    if len(groups) != 2:
        raise Incorrect(f"The increment calls ran in {len(groups)} processes; two actors means exactly two.")
    for spans in groups.values():
        if timing.max_concurrency(spans) > 1:
            raise Incorrect("Calls to one counter overlapped: an actor must handle its messages one at a time "
                            "(do not set max_concurrency here).")
    both = timing.max_concurrency(ran)
    if both < 2:
        raise Incorrect("The two counters never worked at the same time. Calling ray.get inside the loop waits for each "
                        "call before sending the next: submit all calls first, then ray.get the lists. (If one actor "
                        "started much later than the other, wait until both are up before timing.)")
    return (f"Each counter handled its {calls} calls in order, one at a time, in its own process, "
            "and the two counters worked in parallel.")


# --- 07.logging_actor ------------------------------------------------------------------


@exercise("07.logging_actor", "A logging actor that tasks write to while the driver reads progress")
def logging_actor(Logger: Any, experiment: Any, logger: Any, progress: Any, messages: Any, since: float,
                  num_experiments: int = 3, steps: int = 5) -> str:
    total = num_experiments * steps
    if not _is_actor_class(Logger) and not is_remote_function(experiment):
        raise NotAttempted("`Logger` and `experiment` still run in the notebook: make Logger an actor and experiment a task.")
    if not _is_actor_class(Logger):
        raise Incorrect("`Logger` should be a class decorated with @ray.remote, so one logger is shared by all tasks.")
    if not is_remote_function(experiment):
        raise Incorrect("`experiment` should be a task (@ray.remote), so the experiments run in parallel.")
    if not _is_actor(logger):
        raise Incorrect("`logger` should be the actor handle from Logger.remote() that you passed to the tasks.")
    _no_refs(messages, "messages")
    deadline = time.monotonic() + 8
    while True:  # log.remote() calls are asynchronous: give the last few a moment to land
        held = list(_get(logger, "get_messages"))
        if len(held) >= total or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if not held:
        raise Incorrect("The logger you passed to the tasks holds no messages. Did each task create its own "
                        "Logger.remote()? Pass the one handle to every task and call logger.log.remote(...) in it.")
    if len(held) != total or len(set(map(str, held))) != total:
        raise Incorrect(f"The logger holds {len(held)} messages ({len(set(map(str, held)))} distinct); "
                        f"{num_experiments} experiments of {steps} steps should log {total} different ones.")
    if not isinstance(messages, (list, tuple)) or len(messages) == 0:
        raise Incorrect("`messages` should be the list the driver read with ray.get(logger.get_messages.remote()).")
    try:
        readings = [int(p) for p in progress]
    except (TypeError, ValueError):
        raise Incorrect("`progress` should be a list of message counts the driver read while the experiments ran.") from None
    if any(b < a for a, b in zip(readings, readings[1:])) or any(r > total for r in readings):
        raise Incorrect(f"`progress` {readings} should be counts of messages, never going down, at most {total}.")
    if len(readings) < 2 or min(readings) >= total:
        raise Incorrect("`progress` has no reading taken while the experiments were still running. Read the logger in a "
                        "loop (e.g. with ray.wait(..., timeout=0.3)) until all experiments are done.")
    task_name = getattr(getattr(experiment, "_function", None), "__name__", "experiment")
    ran = timing.intervals(name=task_name, since=since, expect=num_experiments)
    if len(ran) < num_experiments:
        raise Incorrect(f"Ray recorded {len(ran)} experiment tasks after `since`, not {num_experiments}.")
    if timing.max_concurrency(ran) < 2:
        raise Incorrect("The experiments ran one after another: submit them all before waiting for any "
                        "(ray.get inside the submitting loop makes them serial).")
    return (f"{num_experiments} parallel experiments wrote {total} messages to one logger, and the driver saw the "
            f"progress grow: {readings}.")


def _get(actor: Any, method: str) -> Any:
    import ray

    if not hasattr(actor, method):
        raise Incorrect(f"The actor has no method `{method}`; keep the method names the exercise gives.")
    return ray.get(getattr(actor, method).remote(), timeout=30)


# --- 07.rules ---------------------------------------------------------------------------

_WHAT = {
    (True, 2): "a live cell with 2 neighbours survives", (True, 3): "a live cell with 3 neighbours survives",
    (False, 3): "a dead cell with exactly 3 neighbours is born",
}


def _rule_hint(alive: bool, n: int, got: bool) -> str:
    if (alive, n) in _WHAT:
        return f"{_WHAT[(alive, n)]} (yours returns {got})"
    if alive:
        return f"a live cell with {n} neighbour{'s' if n != 1 else ''} dies of {'loneliness' if n < 2 else 'overcrowding'} (yours returns {got})"
    return f"a dead cell with {n} neighbour{'s' if n != 1 else ''} stays dead (yours returns {got})"


@exercise("07.rules", "Conway's rule for one cell")
def rules(next_state: Callable[[bool, int], Any]) -> str:
    if not callable(next_state):
        raise Incorrect("`next_state` should be a function next_state(alive, neighbours) returning True or False.")
    table: dict[tuple[bool, int], bool] = {}
    for alive in (False, True):
        for n in range(9):
            try:
                value = next_state(alive, n)
            except Exception as error:  # the learner's code: say where it failed
                raise Incorrect(f"next_state(alive={alive}, neighbours={n}) raised {type(error).__name__}: {error}") from None
            if not isinstance(value, (bool, int, np.bool_, np.integer)):
                raise Incorrect(f"next_state(alive={alive}, neighbours={n}) returned {value!r}; return True or False.")
            table[(alive, n)] = bool(value)
    if all(table[(a, n)] == a for a, n in table):
        raise NotAttempted("next_state still returns `alive` unchanged: nothing is ever born or dies.")
    wrong = [(a, n) for a, n in table if table[(a, n)] != conway(a, n)]
    if not wrong:
        _run_patterns(ConwaysRules(next_state))  # the truth table agrees; the boards must too
        return "Block, blinker, glider and random boards all evolve exactly as Conway's rules say."
    failure = _run_patterns(ConwaysRules(lambda a, n: table[(bool(a), int(n))]), raise_on_failure=False)
    a, n = wrong[0]
    raise Incorrect(f"{failure} Check the rule: {_rule_hint(a, n, table[(a, n)])}.")


def _run_patterns(learner: ConwaysRules, raise_on_failure: bool = True) -> str:
    reference = ConwaysRules()
    cases = [("block", patterns.place("block", 6), 3), ("blinker", patterns.place("blinker", 7, (2, 2)), 4),
             ("glider", patterns.place("glider", 12), 8)]
    cases += [(f"random board (seed {seed})", State.random(12, seed), 6) for seed in range(3)]
    for name, start, generations in cases:
        mine, theirs = start, start
        for generation in range(1, generations + 1):
            mine, theirs = learner.step_reference(mine), reference.step(theirs)
            if not mine.same_cells(theirs):
                message = f"The {name} differs from Conway's at generation {generation}."
                if raise_on_failure:
                    raise Incorrect(message)
                return message
    return "The patterns evolved correctly, but some inputs are wrong."


# --- 07.ray_game ------------------------------------------------------------------------


def _grid(state: Any) -> np.ndarray:
    return np.asarray(getattr(state, "grid", state))


@exercise("07.ray_game", "Many games at once, one actor (process) per game")
def ray_game(RayGame: Any, games: Any, states: Any, since: float, steps: int) -> str:
    import ray

    if not _is_actor_class(RayGame):
        if isinstance(games, (list, tuple)) and games and not any(_is_actor(g) for g in games):
            raise NotAttempted("`RayGame` is still a plain class: decorate it with @ray.remote and call its methods with .remote().")
        raise Incorrect("`RayGame` should be a class decorated with @ray.remote.")
    if not isinstance(games, (list, tuple)) or not games or not all(_is_actor(g) for g in games):
        raise Incorrect("`games` should be a list of actor handles, one RayGame.remote(...) per game.")
    distinct = {_actor_id(g) for g in games}
    if len(distinct) < len(games):
        raise Incorrect(f"`games` holds {len(games)} entries but only {len(distinct)} different actor(s): one actor for all "
                        "games runs them one after another in one process. Create one actor per game.")
    _no_refs(states, "states")
    if not isinstance(states, (list, tuple)) or len(states) != len(games):
        raise Incorrect(f"`states` should hold one list of states per game ({len(games)} lists).")
    rules = ConwaysRules()
    for index, history in enumerate(states):
        history = list(history)
        if len(history) == 1:
            raise Incorrect(f"Game {index} has only its initial state: its steps were lost. Did each call create a new "
                            "RayGame.remote()? Keep one handle per game and call step and get_states on it.")
        if len(history) != steps + 1:
            raise Incorrect(f"Game {index} has {len(history)} states; after {steps} steps it should have {steps + 1} "
                            "(the initial one and one per generation).")
        for generation in range(1, len(history)):
            expected = rules.step(State(_grid(history[generation - 1])))
            if not expected.same_cells(_grid(history[generation])):
                raise Incorrect(f"Game {index}'s generation {generation} does not follow from generation {generation - 1}: "
                                "step the game with its own rules and return its states unchanged.")
    pids = ray.get([g.__ray_call__.remote(lambda self: os.getpid()) for g in games], timeout=30)
    if len(set(pids)) < len(games):
        raise Incorrect(f"The {len(games)} games live in {len(set(pids))} process(es); each actor should be its own process.")
    ran = timing.intervals(name="step", since=since, expect=len(games))
    workers = _by_worker(ran)
    if len(ran) < len(games) or len(workers) < len(games):
        raise Incorrect(f"Ray recorded step calls in {len(workers)} process(es) after `since`, not {len(games)}: set `since` "
                        "just before stepping, and call step.remote() on every game.")
    if timing.max_concurrency(ran) < 2:
        raise Incorrect("The games stepped one after another. Submit step.remote() to every game first, then ray.get "
                        "the list once (ray.get inside the loop waits for each game before starting the next).")
    return (f"{len(games)} games ran in {len(set(pids))} separate processes, up to {timing.max_concurrency(ran)} stepping "
            "at the same time, and every generation follows Conway's rules.")


# --- 07.parameter_averaging -------------------------------------------------------------


def _as_layers(weights: Any, what: str) -> list[np.ndarray]:
    _no_refs(weights, what)
    if not isinstance(weights, (list, tuple)):
        raise Incorrect(f"{what} should be a list of numpy arrays (one per layer), got {type(weights).__name__}.")
    return [np.asarray(w, dtype=float) for w in weights]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.allclose(x, y) for x, y in zip(a, b))


@exercise("07.parameter_averaging", "Average the weights of model actors and send the average to all")
def parameter_averaging(average_weights: Callable[[list[Any]], Any], Model: Any, num_models: int = 2) -> str:
    import ray

    if not _is_actor_class(Model):
        raise Incorrect("`Model` should be the actor class defined above (decorated with @ray.remote).")
    if not callable(average_weights):
        raise Incorrect("`average_weights` should be a function taking a list of model actors.")
    models = [Model.remote(seed=100 + i) for i in range(num_models)]
    try:
        ray.get([m.train.remote() for m in models], timeout=60)
        before = [_as_layers(w, "get_weights()") for w in ray.get([m.get_weights.remote() for m in models], timeout=30)]
        expected = [np.mean([w[layer] for w in before], axis=0) for layer in range(len(before[0]))]
        try:
            result = average_weights(models)
        except Exception as error:  # the learner's code: turn the usual slips into hints
            text = f"{type(error).__name__}: {error}"
            if "ObjectRef" in text:
                raise Incorrect(f"average_weights failed ({text}). It averaged ObjectRefs: ray.get the weights first.") from None
            if "cannot be called directly" in text:
                raise Incorrect("average_weights called an actor method without .remote(): use "
                                "model.get_weights.remote() / model.set_weights.remote(average).") from None
            raise Incorrect(f"average_weights raised {text}") from None
        after = [_as_layers(w, "get_weights()") for w in ray.get([m.get_weights.remote() for m in models], timeout=30)]
    finally:
        for m in models:
            ray.kill(m)
    if result is None and all(_same(a, b) for a, b in zip(after, before)):
        raise NotAttempted("average_weights returns None and the models kept their own weights.")
    if result is None:
        raise Incorrect("average_weights should also return the averaged weights (a list of arrays).")
    got = _as_layers(result, "the value average_weights returned")
    if not _same(got, expected):
        total = [np.sum([w[layer] for w in before], axis=0) for layer in range(len(before[0]))]
        if _same(got, total):
            raise Incorrect(f"You returned the sum of the {num_models} models' weights: divide by the number of models.")
        if any(_same(got, b) for b in before):
            raise Incorrect("You returned one model's weights, not the mean over all models.")
        raise Incorrect("The returned weights are not the layer-by-layer mean: for each layer, np.mean of that layer's "
                        "arrays from every model (axis=0), keeping each layer's shape.")
    if all(_same(a, b) for a, b in zip(after, before)):
        raise Incorrect("The models still hold their own weights: broadcast the average with "
                        "model.set_weights.remote(average) for every model.")
    if not all(_same(a, expected) for a in after):
        raise Incorrect("After averaging, not every model holds the average: call set_weights.remote(average) on every model.")
    return f"All {num_models} models now hold the same weights: the layer-by-layer mean of what they had learned."
