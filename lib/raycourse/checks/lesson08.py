"""Checks for lesson 08 (the Game of Life): the rule for one cell, and one actor per game.

``08.rules`` calls the learner's ``next_state`` on every (alive, neighbours)
pair, names the rule each wrong answer breaks, and then steps a blinker, a
glider and random boards it draws now, generation by generation, against the
reference rules.

``08.ray_game`` ties every game's states to *its own* actor: the journal holds
each actor's creation arguments (size and seed), so the first state must be
``State.random(size, seed)`` for that actor and every later one must follow
from the one before; the states must be the very objects ``ray.get`` returned
from that actor's calls (typed or driver-computed boards fail); and every game
must have been sent a step before the driver first waited for any of them.
Ray's records then show one process per actor.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np

from .. import plots, record
from ..grading import Incorrect, NotAttempted, exercise
from ..lessons.life import ConwaysRules, State, patterns
from ..lessons.life.rules import conway
from ..record import JOURNAL, Fetch, Submission, Wait
from .evidence import actor_id, holds_ref, is_actor, is_actor_class, parallel_without_ray, plural, run_of
from .lesson07 import bound_arguments, calls_on, created_from, recorded, tasks_of

# --- 08.rules ------------------------------------------------------------------------------------


def _as_bool(value: Any, alive: bool, neighbours: int) -> bool:
    """A rule's answer as a bool: True/False, numpy bools, 1/0 and None (a falsy "dead") are all fine."""
    if value is None:
        return False
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise Incorrect(f"`next_state(alive={alive}, neighbours={neighbours})` returned {value!r}: return True (alive "
                    "next generation) or False (dead).")


def _broken_rules(table: dict[tuple[bool, int], bool]) -> list[str]:
    """Each of Conway's rules the learner's table breaks, said the way the lesson says it."""
    def wrong(alive: bool, counts: range | list[int]) -> list[int]:
        return [n for n in counts if table[(alive, n)] != conway(alive, n)]

    found = []
    if lonely := wrong(True, range(0, 2)):
        found.append(f"a live cell with fewer than 2 neighbours dies of loneliness (yours keeps it alive with "
                     f"{_counts(lonely)})")
    for n in (2, 3):
        if wrong(True, [n]):
            found.append(f"a live cell with {n} neighbours survives (yours lets it die)")
    if crowded := wrong(True, range(4, 9)):
        found.append(f"a live cell with more than 3 neighbours dies of overcrowding (yours keeps it alive with "
                     f"{_counts(crowded)})")
    if wrong(False, [3]):
        found.append("a dead cell with exactly 3 neighbours is born (yours leaves it dead)")
    if born := wrong(False, [n for n in range(9) if n != 3]):
        found.append(f"a dead cell is born only with exactly 3 neighbours (yours also brings it to life with "
                     f"{_counts(born)})")
    return found


def _counts(ns: list[int]) -> str:
    return ", ".join(map(str, ns[:-1])) + (" or " if len(ns) > 1 else "") + str(ns[-1])


@exercise("08.rules", "Conway's rule for one cell")
def rules(next_state: Any, seed: int | None = None) -> str:
    """The whole truth table, then boards chosen now, stepped with the learner's rule against the reference."""
    if not callable(next_state) or isinstance(next_state, type):
        raise Incorrect("`next_state` should be a function next_state(alive, neighbours) returning True or False.")
    table: dict[tuple[bool, int], bool] = {}
    for alive in (False, True):
        for n in range(9):
            try:
                value = next_state(alive, n)
            except Exception as error:  # the learner's code: say where it failed, not how Python said it
                raise Incorrect(f"`next_state({alive}, {n})` raised {type(error).__name__}: the rule must answer for "
                                "a dead or live cell with any number of neighbours from 0 to 8.") from None
            table[(alive, n)] = _as_bool(value, alive, n)
    if all(table[(a, n)] == a for a, n in table):
        raise NotAttempted("`next_state` still returns `alive` unchanged: nothing is ever born or dies.")
    broken = _broken_rules(table)
    if broken:
        more = f"; and {plural(len(broken) - 3, 'more rule')}" if len(broken) > 3 else ""
        raise Incorrect("Not quite Conway's rule: " + "; ".join(broken[:3]) + more + ".")
    rng = random.Random(seed)
    learner, reference = ConwaysRules(lambda a, n: table[(bool(a), int(n))]), ConwaysRules()
    cases = [("blinker", patterns.place("blinker", 7, (2, 2)), 4), ("glider", patterns.place("glider", 12), 8)]
    cases += [(f"random board (seed {s})", State.random(rng.randint(8, 14), s), 6)
              for s in rng.sample(range(1_000_000), 3)]
    for name, mine, generations in cases:
        theirs = mine
        for generation in range(1, generations + 1):
            mine, theirs = learner.step_reference(mine), reference.step(theirs)
            if not mine.same_cells(theirs):  # cannot happen with a table equal to Conway's; kept as a guard
                raise Incorrect(f"The {name} differs from Conway's at generation {generation}.")
    return ("Your rule matches Conway's for every cell, and a blinker, a glider and three random boards evolve "
            "exactly as they should.")


# --- 08.ray_game ---------------------------------------------------------------------------------


def _init_arguments(cls: Any, creation: Submission) -> dict[str, Any] | None:
    """The creation's arguments by name (size, seed), bound to the actor class's ``__init__``."""
    init = getattr(getattr(getattr(cls, "__ray_metadata__", None), "modified_class", None), "__init__", None)
    return bound_arguments(init, creation, method=True)


def _fetched_objects(actor: str) -> dict[int, float]:
    """id() of every value ``ray.get`` returned from a call on ``actor`` (and of the objects in returned lists),
    with the time of the latest such fetch (ids of freed objects are reused: see :func:`record.is_recorded`)."""
    calls = set(tasks_of(calls_on(list(JOURNAL.records), actor)))
    found: dict[int, float] = {}
    for fetch in (r for r in list(JOURNAL.records) if isinstance(r, Fetch) and r.values is not None):
        for task, summary, value_id in zip(fetch.task_ids, fetch.values, fetch.value_ids):
            if task in calls:
                for key in {value_id} | _ids_inside(summary):
                    found[key] = max(found.get(key, 0.0), fetch.end)
    return found


def _fetched_from(objects: dict[int, float], history: list[Any]) -> bool:
    """Every state in ``history`` is an object fetched from the actor (itself, not a newer one at its address)."""
    return all(id(s) in objects and record.is_recorded(s, id(s), objects[id(s)]) for s in history)


def _ids_inside(summary: Any) -> set[int]:
    if not isinstance(summary, tuple) or not summary:
        return set()
    if summary[0] in ("object", "array"):
        return {summary[-1]}
    if summary[0] in ("list", "tuple"):
        return set().union(*(_ids_inside(v) for v in summary[1])) if summary[1] else set()
    return set()


def _first_wait_after(step_seq: int, calls: set[str]) -> int | None:
    """The seq of the driver's first ray.get/ray.wait on these actors' calls after the first step was sent."""
    for r in list(JOURNAL.records):
        if isinstance(r, (Fetch, Wait)) and r.seq > step_seq and calls & set(r.task_ids):
            if isinstance(r, Wait) and r.timeout == 0:
                continue
            return r.seq
    return None


def _serial_sketch(games: int) -> list[Any]:
    return plots.sketch([[(g * 1.0, g * 1.0 + 1.0)] for g in range(games)], name="step")


@exercise("08.ray_game", "Many games at once, one actor (process) per game")
def ray_game(RayGame: Any, games: Any, states: Any, STEPS: Any) -> str:
    """Journal: each actor's seed, its fetched states, steps sent to all before a wait; Ray: one process each."""
    run = run_of("states")
    elsewhere = parallel_without_ray(run.source)
    if not is_actor_class(RayGame):
        if elsewhere:
            raise Incorrect(f"You stepped the games with {elsewhere} in the notebook's own process. This exercise is "
                            "about actors: decorate RayGame with @ray.remote and call its methods with .remote().")
        if isinstance(games, (list, tuple)) and games and not any(is_actor(g) for g in games):
            raise NotAttempted("`RayGame` is still a plain class: decorate it with @ray.remote, create the games with "
                               "RayGame.remote(SIZE, seed) and call their methods with .remote().")
        raise Incorrect("`RayGame` should be a class decorated with @ray.remote.")
    if not isinstance(games, (list, tuple)) or not games or not all(is_actor(g) for g in games):
        raise Incorrect("`games` should be a list of actor handles, one RayGame.remote(SIZE, seed) per game.")
    ids = [actor_id(g) for g in games]
    if len(set(ids)) < len(ids):
        raise Incorrect(f"`games` holds {len(games)} entries but only {plural(len(set(ids)), 'different actor')}: one "
                        "actor steps its games one after another, in one process. Create one actor per game.")
    if len(games) < 2:
        raise Incorrect("Run at least two games, one actor each, so that they can step at the same time.")
    made = created_from(RayGame)
    if not all(i in made for i in ids):
        raise Incorrect("`games` were not made from this `RayGame` class: run the exercise's cell again.")
    if holds_ref(states):
        raise Incorrect("`states` holds ObjectRefs: ray.get the get_states() refs (once, on the whole list).")
    if not isinstance(states, (list, tuple)) or len(states) != len(games):
        raise Incorrect(f"`states` should hold one list of states per game ({len(games)} lists, in the order of `games`).")
    if not isinstance(STEPS, int) or STEPS < 1:
        raise Incorrect("`STEPS` should be the number of generations to step (a whole number, at least 1).")
    settings = [_init_arguments(RayGame, made[i]) for i in ids]
    if any(s is None or "size" not in s or "seed" not in s for s in settings):
        raise Incorrect("Create each game as RayGame.remote(SIZE, seed): keep RayGame's __init__(self, size, seed).")
    seeds = [s["seed"] for s in settings]
    if len(set(map(repr, seeds))) < len(seeds):
        raise Incorrect(f"Several games were created with the same seed ({seeds}): give each game its own seed, "
                        "so that they play different games.")
    rules = ConwaysRules()
    fetched = [_fetched_objects(i) for i in ids]
    for index, (history, setting) in enumerate(zip(states, settings)):
        history = list(history) if isinstance(history, (list, tuple)) else None
        if not history or not all(isinstance(s, State) for s in history):
            raise Incorrect(f"`states[{index}]` should be the list of State objects game {index}'s get_states() returned.")
        owners = [n for n, objects in enumerate(fetched) if _fetched_from(objects, history)]
        if not owners:
            raise Incorrect(f"The states of game {index} were not fetched from its actor: set `states` from "
                            "ray.get([game.get_states.remote() for game in games]), without building or copying boards.")
        if index not in owners:
            raise Incorrect(f"`states[{index}]` holds game {owners[0]}'s states, not game {index}'s: keep `states` in "
                            "the order of `games`.")
        if len(history) == 1:
            raise Incorrect(f"Game {index} has only its initial state: it was never stepped. Call step.remote(STEPS) on "
                            "each game's own handle before you read its states.")
        if len(history) != STEPS + 1:
            raise Incorrect(f"Game {index} has {len(history)} states; after {STEPS} steps it should have {STEPS + 1} "
                            "(the initial one and one per generation).")
        if history[0] != State.random(setting["size"], setting["seed"]):
            raise Incorrect(f"`states[{index}]` does not start from game {index}'s own board, "
                            f"State.random({setting['size']}, {setting['seed']!r}): keep `states` in the order of `games`.")
        for generation in range(1, len(history)):
            if not rules.step(history[generation - 1]).same_cells(history[generation]):
                raise Incorrect(f"Game {index}'s generation {generation} does not follow from generation "
                                f"{generation - 1}: step each game with its own rules.")
    steps = {i: calls_on(list(JOURNAL.records), i, "step") for i in ids}
    if not all(steps.values()):
        raise Incorrect("Some games were never sent a step call.")
    first_step = min(s.seq for calls in steps.values() for s in calls)
    all_calls = set(tasks_of([c for i in ids for c in calls_on(list(JOURNAL.records), i)]))
    blocked = _first_wait_after(first_step, all_calls)
    late = [n for n, i in enumerate(ids) if blocked is not None and min(s.seq for s in steps[i]) > blocked]
    spans = recorded(tasks_of([c for calls in steps.values() for c in calls]))
    if late:
        raise Incorrect(f"The driver waited for a game before it had sent a step to {plural(len(late), 'other game')} "
                        f"(game {late[0]} first), so the games stepped one after another. Send step.remote(...) to "
                        "every game first, then ray.get the results.",
                        evidence=plots.compare(spans, _serial_sketch(len(games)),
                                               marked=tasks_of(steps[ids[late[0]]])))
    processes = {i: {s.pid for s in spans if s.actor == i and s.pid} for i in ids}
    if all(processes.values()) and len(set().union(*processes.values())) < len(games):  # judged when Ray reported all
        raise Incorrect(f"Ray ran the {len(games)} games' steps in {len(set().union(*processes.values()))} "
                        "process(es); one actor per game means one process per game.")
    return (f"{len(games)} games stepped at the same time, one actor (process) each; every game's states start from "
            f"its own seed's board and follow Conway's rules for {STEPS} generations.")
