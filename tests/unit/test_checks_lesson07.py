"""Lesson 07: each check passes the solution, calls the starter "not attempted", and names each realistic mistake.

The answers are real code run on the shared local Ray, as a learner would write them.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import ray

from raycourse.grading import grade
from raycourse.life import ConwaysRules, Game, State

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")


def _kill(*handles):
    for h in handles:
        try:
            ray.kill(h)
        except Exception:
            pass


# --- 07.counters ----------------------------------------------------------------------------


class PlainCounter:
    def __init__(self):
        self.count = 0

    def increment(self):
        time.sleep(0.3)
        self.count += 1
        return self.count

    def get_count(self):
        return self.count

    def reset(self):
        self.count = 0


Counter = ray.remote(PlainCounter)
_PAIR: list = []


@pytest.fixture
def pair():
    """Two counter actors shared by the tests (actors are slow to start), reset before each use."""
    if not _PAIR:
        _PAIR.extend(Counter.remote() for _ in range(2))
    ray.get([c.reset.remote() for c in _PAIR])
    return list(_PAIR)


def _counters(pair, style: str = "correct"):
    counters = [pair[0], pair[0]] if style == "same actor" else pair
    ray.get([c.get_count.remote() for c in counters])
    since = time.time()
    if style == "get in loop":
        results = [[ray.get(c.increment.remote()) for _ in range(3)] for c in counters]
    elif style == "new actor per call":  # two calls per counter are enough to show it
        results = [ray.get([Counter.remote().increment.remote() for _ in range(2)]) for _ in counters]
    elif style == "refs":
        results = [[c.increment.remote() for _ in range(3)] for c in counters]
    else:
        refs = [[c.increment.remote() for _ in range(3)] for c in counters]
        results = [ray.get(r) for r in refs]
    return dict(Counter=Counter, counters=counters, results=results, since=since, calls=len(results[0]))


def test_counters_correct(pair):
    v = grade("07.counters", **_counters(pair))
    assert v.status == "correct", v


def test_counters_starter_is_not_attempted():
    counters = [PlainCounter() for _ in range(2)]
    v = grade("07.counters", Counter=PlainCounter, counters=counters, since=time.time(),
              results=[[c.increment() for _ in range(3)] for c in counters])
    assert v.status == "not attempted" and "@ray.remote" in v.message


@pytest.mark.parametrize("style, hint", [
    ("get in loop", "ray.get inside the loop"),
    ("new actor per call", "brand-new actor"),
    ("same actor", "same actor"),
    ("refs", "ObjectRefs"),
])
def test_counters_wrong_answers(pair, style, hint):
    answer = _counters(pair, style)
    v = grade("07.counters", **answer)
    if style == "refs":
        ray.get([r for row in answer["results"] for r in row])
    assert v.status == "incorrect" and hint in v.message, v


def test_counters_all_calls_to_one_of_two_actors(pair):
    refs = [pair[0].increment.remote() for _ in range(6)]  # the second counter never gets a call
    v = grade("07.counters", Counter=Counter, counters=pair, since=time.time(), results=[ray.get(refs[:3]), ray.get(refs[3:])])
    assert v.status == "incorrect" and "ONE actor" in v.message


# --- 07.logging_actor -----------------------------------------------------------------------


class PlainLogger:
    def __init__(self):
        self.messages = []

    def log(self, message):
        self.messages.append(message)

    def get_messages(self):
        return list(self.messages)

    def reset(self):
        self.messages = []


Logger = ray.remote(PlainLogger)
_LOGGER: list = []


def plain_experiment(logger, index, steps=5):
    for step in range(1, steps + 1):
        time.sleep(0.2)
        logger.log.remote(f"experiment {index}: step {step}/{steps}")
    return index


experiment = ray.remote(plain_experiment)


@ray.remote
def experiment_own_logger(logger, index, steps=5):
    mine = Logger.remote()  # a new logger per task: nobody reads it
    for step in range(1, steps + 1):
        time.sleep(0.2)
        mine.log.remote(f"experiment {index}: step {step}/{steps}")
    return index


def _logging(style: str = "correct"):
    if not _LOGGER:
        _LOGGER.append(Logger.remote())
    logger = _LOGGER[0]
    ray.get(logger.reset.remote())
    since = time.time()
    task = experiment_own_logger if style == "own logger" else experiment
    progress = []
    if style == "get in loop":
        for i in range(3):
            ray.get(task.remote(logger, i))
            progress.append(len(ray.get(logger.get_messages.remote())))
    else:
        pending = [task.remote(logger, i) for i in range(3)]
        if style == "read at the end":
            ray.get(pending)
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.3)
            progress.append(len(ray.get(logger.get_messages.remote())))
    time.sleep(0.3)
    messages = logger.get_messages.remote() if style == "refs" else ray.get(logger.get_messages.remote())
    if style == "read at the end":
        progress = [len(messages)]
    return dict(Logger=Logger, experiment=task, logger=logger, progress=progress, messages=messages, since=since)


def test_logging_actor_correct():
    v = grade("07.logging_actor", **_logging())
    assert v.status == "correct", v


def test_logging_actor_starter_is_not_attempted():
    logger = PlainLogger()
    progress = []

    def serial(logger, index, steps=5):
        for step in range(steps):
            logger.log(f"experiment {index}: step {step}")

    for i in range(3):
        serial(logger, i)
        progress.append(len(logger.get_messages()))
    v = grade("07.logging_actor", Logger=PlainLogger, experiment=serial, logger=logger, progress=progress,
              messages=logger.get_messages(), since=time.time())
    assert v.status == "not attempted"


@pytest.mark.parametrize("style, hint", [
    ("own logger", "holds no messages"),
    ("get in loop", "one after another"),
    ("read at the end", "no reading taken while"),
    ("refs", "ObjectRefs"),
])
def test_logging_actor_wrong_answers(style, hint):
    v = grade("07.logging_actor", **_logging(style))
    assert v.status == "incorrect" and hint in v.message, v


# --- 07.rules ---------------------------------------------------------------------------------


def conway_rule(alive, neighbours):
    return neighbours in (2, 3) if alive else neighbours == 3


def test_rules_correct():
    assert grade("07.rules", next_state=conway_rule).status == "correct"


def test_rules_starter_is_not_attempted():
    assert grade("07.rules", next_state=lambda alive, neighbours: alive).status == "not attempted"


@pytest.mark.parametrize("rule, hint", [
    (lambda a, n: n == 2 if a else n == 3, "a live cell with 3 neighbours survives"),
    (lambda a, n: n in (2, 3), "a dead cell with 2 neighbours stays dead"),  # born with 2 as well
    (lambda a, n: n > 2 if a else n == 3, "a live cell with 2 neighbours survives"),  # `> 2` instead of 2..3
    (lambda a, n: n >= 2 if a else n == 3, "dies of overcrowding"),  # forgot the upper bound
    (lambda a, n: n == 3, "a live cell with 2 neighbours survives"),  # forgot survival with 2
    (lambda a, n: None, "return True or False"),
    (lambda a, n: [2, 3].index(n) >= 0, "raised ValueError"),
])
def test_rules_wrong_answers(rule, hint):
    v = grade("07.rules", next_state=rule)
    assert v.status == "incorrect" and hint in v.message, v


def test_rules_wrong_answer_names_the_failing_pattern():
    v = grade("07.rules", next_state=lambda a, n: n == 2 if a else n == 3)
    assert "differs from Conway's at generation" in v.message


# --- 07.ray_game ------------------------------------------------------------------------------


class PlainGame:
    def __init__(self, size, seed):
        self.game = Game(State.random(size, seed), rules=ConwaysRules(vectorized=False))

    def step(self, num_steps=1):
        time.sleep(0.3)  # enough work that concurrent games surely overlap
        return self.game.step(num_steps)

    def get_states(self):
        return self.game.states

    def reset(self, seed):
        self.__init__(12, seed)


RayGame = ray.remote(PlainGame)
STEPS = 5
_GAMES: list = []


def _ray_games(style: str = "correct", n: int = 3):
    if not _GAMES:
        _GAMES.extend(RayGame.remote(12, seed) for seed in range(n))
    ray.get([g.reset.remote(seed) for seed, g in enumerate(_GAMES)])
    if style == "new actor per call":
        n = 2  # fewer fresh actors: they are slow to start
    games = [_GAMES[0]] * n if style == "one actor" else _GAMES[:n]
    since = time.time()
    if style == "get in loop":
        for g in games:
            ray.get(g.step.remote(STEPS))
    elif style == "new actor per call":
        ray.get([RayGame.remote(12, seed).step.remote(STEPS) for seed in range(n)])
    else:
        ray.get([g.step.remote(STEPS) for g in games])
    if style == "new actor per call":
        states = ray.get([RayGame.remote(12, seed).get_states.remote() for seed in range(n)])
    elif style == "refs":
        states = [g.get_states.remote() for g in games]
    else:
        states = ray.get([g.get_states.remote() for g in games])
    return dict(RayGame=RayGame, games=games, states=states, since=since, steps=STEPS)


def test_ray_game_correct():
    v = grade("07.ray_game", **_ray_games())
    assert v.status == "correct", v


def test_ray_game_starter_is_not_attempted():
    games = [PlainGame(12, seed) for seed in range(3)]
    for g in games:
        g.step(STEPS)
    v = grade("07.ray_game", RayGame=PlainGame, games=games, states=[g.get_states() for g in games],
              since=time.time(), steps=STEPS)
    assert v.status == "not attempted"


@pytest.mark.parametrize("style, hint", [
    ("get in loop", "one after another"),
    ("one actor", "one actor for all"),
    ("new actor per call", "only its initial state"),
    ("refs", "ObjectRefs"),
])
def test_ray_game_wrong_answers(style, hint):
    v = grade("07.ray_game", **_ray_games(style))
    assert v.status == "incorrect" and hint in v.message, v


def test_ray_game_tampered_states():
    answer = _ray_games()
    answer["states"][1] = answer["states"][1][:1] + [State.random(12, 99)] * STEPS
    v = grade("07.ray_game", **answer)
    assert v.status == "incorrect" and "does not follow" in v.message


# --- 07.parameter_averaging -------------------------------------------------------------------


@ray.remote
class Model:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.weights = [self.rng.normal(size=(4, 3)), np.zeros(3)]

    def train(self, steps=5):
        for _ in range(steps):
            self.weights = [w - 0.1 * self.rng.normal(size=w.shape) for w in self.weights]
        return steps

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        self.weights = [np.array(w, copy=True) for w in weights]


def average_correct(models):
    weights = ray.get([m.get_weights.remote() for m in models])
    average = [np.mean(layer, axis=0) for layer in zip(*weights)]
    ray.get([m.set_weights.remote(average) for m in models])
    return average


def average_refs(models):
    weights = [m.get_weights.remote() for m in models]
    average = [np.mean(layer, axis=0) for layer in zip(*weights)]
    ray.get([m.set_weights.remote(average) for m in models])
    return average


def average_no_broadcast(models):
    weights = ray.get([m.get_weights.remote() for m in models])
    return [np.mean(layer, axis=0) for layer in zip(*weights)]


def average_sum(models):
    weights = ray.get([m.get_weights.remote() for m in models])
    total = [np.sum(layer, axis=0) for layer in zip(*weights)]
    ray.get([m.set_weights.remote(total) for m in models])
    return total


def average_no_remote(models):
    weights = ray.get([m.get_weights.remote() for m in models])
    average = [np.mean(layer, axis=0) for layer in zip(*weights)]
    for m in models:
        m.set_weights(average)
    return average


def average_first_model(models):
    first = ray.get(models[0].get_weights.remote())
    ray.get([m.set_weights.remote(first) for m in models])
    return first


def test_parameter_averaging_correct():
    v = grade("07.parameter_averaging", average_weights=average_correct, Model=Model)
    assert v.status == "correct", v


def test_parameter_averaging_starter_is_not_attempted():
    v = grade("07.parameter_averaging", average_weights=lambda models: None, Model=Model)
    assert v.status == "not attempted"


@pytest.mark.parametrize("attempt, hint", [
    (average_refs, "averaged ObjectRefs"),
    (average_no_broadcast, "still hold their own weights"),
    (average_sum, "sum"),
    (average_no_remote, "without .remote()"),
    (average_first_model, "one model's weights"),
])
def test_parameter_averaging_wrong_answers(attempt, hint):
    v = grade("07.parameter_averaging", average_weights=attempt, Model=Model)
    assert v.status == "incorrect" and hint in v.message, v


def test_zz_free_the_shared_actors():
    _kill(*_PAIR, *_LOGGER, *_GAMES)
