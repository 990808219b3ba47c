"""The Game of Life's headline experiment: many games serially in the notebook, or one actor per game.

Why a helper: the lesson is about what the numbers say (the speed-up grows
with the number of games until it reaches the number of cores, then stays
there), not about stopwatch code. :func:`serial_vs_actors` steps 1, 2, ... up
to ``max_games`` games of the same size with the per-cell rules (so each step
is real Python work), once one after another in this process and once as one
actor per game, and keeps the best of ``repeats`` timings of each (other
programs only ever add time). Actor start-up is excluded: it is paid once per
game, not per step. :class:`Speedups` prints a table and draws the curve.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ...timing import best_time
from .game import Game
from .rules import ConwaysRules
from .runners import game_actors, run_games
from .state import State


def cores() -> int:
    """The cores this process may run on (what really computes in parallel), whatever Ray's logical CPU count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass
class Speedups:
    """Seconds to step ``games[i]`` games ``steps`` generations each, serially and as actors."""

    games: list[int]
    serial_s: list[float]
    actors_s: list[float]
    size: int
    steps: int
    cpus: int  # Ray's logical CPUs
    cores: int = field(default_factory=cores)

    @property
    def speedups(self) -> list[float]:
        return [s / a if a > 0 else float("nan") for s, a in zip(self.serial_s, self.actors_s)]

    def table(self) -> str:
        lines = [f"{self.steps} generations of {self.size} x {self.size} boards, per-cell rules "
                 f"(Ray has {self.cpus} logical CPUs; this machine has {self.cores} cores)"]
        for n, s, a, x in zip(self.games, self.serial_s, self.actors_s, self.speedups):
            lines.append(f"{n:3d} game{'s' if n != 1 else ' '}: serial {s:6.2f} s, one actor per game {a:6.2f} s, "
                         f"speed-up {x:4.1f}x")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.table()

    def plot(self, show: bool = True) -> Any:
        """Speed-up against the number of games, with the ideal line and the number of cores."""
        from ... import plots

        top = max(self.games)
        fig = plots.lines(self.games, {"measured speed-up": self.speedups,
                                       "ideal (one core per game)": [float(n) for n in self.games],
                                       f"this machine's {self.cores} cores": [float(min(n, self.cores)) for n in self.games]},
                          title="One actor per game: speed-up over stepping the games one after another",
                          x_label="games (one actor each)", y_label="speed-up (serial time / actor time)", show=False)
        fig.y_range.start, fig.y_range.end = 0, top + 0.5
        return plots.show(fig) if show else fig


def _serial(num_games: int, size: int, steps: int) -> None:
    games = [Game(State.random(size, seed), rules=ConwaysRules(vectorized=False)) for seed in range(num_games)]
    run_games(games, steps, batch_size=steps)


def serial_vs_actors(max_games: int | None = None, size: int = 40, steps: int = 20, repeats: int = 2) -> Speedups:
    """Time 1..``max_games`` games (default: Ray's logical CPUs) serially and as one actor per game."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    max_games = max_games or cpus
    if max_games < 1 or size < 3 or steps < 1 or repeats < 1:
        raise ValueError(f"need at least one game of size 3 or more, one step and one repeat; got {max_games}, "
                         f"{size}, {steps}, {repeats}")
    actors = game_actors(max_games, size=size, vectorized=False)
    try:
        ray.get([a.step.remote(1) for a in actors])  # every actor is up and warm: time the stepping only
        counts, serial_s, actors_s = list(range(1, max_games + 1)), [], []
        for n in counts:
            serial_s.append(best_time(lambda: _serial(n, size, steps), repeats))
            actors_s.append(best_time(lambda: ray.get([a.step.remote(steps) for a in actors[:n]]), repeats))
    finally:
        for actor in actors:
            ray.kill(actor)
    return Speedups(counts, serial_s, actors_s, size, steps, cpus)
