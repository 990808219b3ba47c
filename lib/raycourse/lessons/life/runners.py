"""Run several games serially or as Ray actors, feeding each new board to an optional view.

``run_games`` steps plain :class:`Game` objects one after another in this
process. ``run_ray_games`` drives actors (one process per game) and handles
each result **as it arrives** with ``ray.wait``: a fast game is drawn and asked
for its next step while a slow one is still computing, instead of everyone
waiting for the slowest as a ``ray.get`` on the whole list would.

An actor used here needs one method, ``step(num_steps) -> list[State]`` (the
new states, oldest first); :func:`game_actors` makes such actors from the
course's own :class:`GameActor`.
"""
from __future__ import annotations

import os
from typing import Any, Protocol, Sequence

from .game import Game
from .rules import ConwaysRules
from .state import State


class View(Protocol):
    def update(self, index: int, state: State) -> None: ...


class GameActor:
    """A :class:`Game` living in its own process. Wrapped with ``ray.remote`` by :func:`game_actors`.

    Attributes of an actor cannot be read through its handle, hence getters.
    """

    def __init__(self, size: int = 20, seed: int | None = None, initial: State | None = None,
                 vectorized: bool = True) -> None:
        self.game = Game(initial, size=size, seed=seed, rules=ConwaysRules(vectorized=vectorized))

    def step(self, num_steps: int = 1) -> list[State]:
        return self.game.step(num_steps)

    def get_state(self) -> State:
        return self.game.state

    def get_states(self) -> list[State]:
        return list(self.game.states)

    def get_pid(self) -> int:
        return os.getpid()


def _check_steps(steps: int, batch_size: int) -> None:
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")


def run_games(games: Sequence[Game], steps: int, view: View | None = None, batch_size: int = 1) -> list[list[State]]:
    """Step every game ``steps`` generations, round-robin in this process; return each game's new states."""
    _check_steps(steps, batch_size)
    if not all(isinstance(g, Game) for g in games):
        raise TypeError("run_games needs a list of Game objects; for actors use run_ray_games")
    received: list[list[State]] = [[] for _ in games]
    done = 0
    while done < steps:
        n = min(batch_size, steps - done)
        for index, game in enumerate(games):
            for state in game.step(n):
                received[index].append(state)
                if view is not None:
                    view.update(index, state)
        done += n
    return received


def game_actors(num_games: int, size: int = 20, seed: int = 0, vectorized: bool = True, **options: Any) -> list[Any]:
    """``num_games`` :class:`GameActor` actors with seeds ``seed, seed+1, ...`` (``options`` go to ``.options``).

    ``vectorized=False`` makes them use the per-cell rules: slow on purpose, so each step is real work.
    """
    import ray

    if num_games < 1:
        raise ValueError(f"num_games must be at least 1, got {num_games}")
    remote_class = ray.remote(GameActor)
    if options:
        remote_class = remote_class.options(**options)
    return [remote_class.remote(size=size, seed=seed + i, vectorized=vectorized) for i in range(num_games)]


def run_ray_games(actors: Sequence[Any], steps: int, view: View | None = None, batch_size: int = 1) -> list[list[State]]:
    """Step every actor's game ``steps`` generations; draw each batch of states as soon as it arrives.

    Each actor always has exactly one ``step`` call in flight: when ``ray.wait``
    reports that one finished, its states go to the view and that actor gets its
    next call. Actors never wait for each other.
    """
    import ray

    _check_steps(steps, batch_size)
    if not actors or not all(hasattr(a, "step") and hasattr(a.step, "remote") for a in actors):
        raise TypeError("run_ray_games needs actor handles with a step(num_steps) method (e.g. from game_actors)")
    received: list[list[State]] = [[] for _ in actors]
    left = [steps] * len(actors)
    pending: dict[Any, int] = {}

    def submit(index: int) -> None:
        n = min(batch_size, left[index])
        left[index] -= n
        pending[actors[index].step.remote(n)] = index

    for index in range(len(actors)):
        if left[index]:
            submit(index)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ready[0])
        states = ray.get(ready[0])
        if isinstance(states, State):
            states = [states]
        for state in states:
            received[index].append(state)
            if view is not None:
                view.update(index, state)
        if left[index]:
            submit(index)
    return received
