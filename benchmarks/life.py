"""Game of Life benchmark (not a test): prints two speed-ups in one run.

1. The vectorized numpy step over the per-cell Python loop on a 100 x 100 board
   (goal: at least 100x).
2. One actor per game against stepping the games one after another in this
   process, for 1, 2, ... up to as many games as Ray has CPUs (the lesson's
   headline experiment, ``raycourse.lessons.life.experiment``). The ideal is
   one game per core; past the number of cores the speed-up stops growing.

    .venv/bin/python benchmarks/life.py [--size 100] [--game-size 60] [--steps 40] [--cpus N]
"""
from __future__ import annotations

import argparse

from raycourse.lessons.life import ConwaysRules, State, experiment
from raycourse.timing import best_time


def vectorized_speedup(size: int) -> tuple[float, float, float]:
    rules, board = ConwaysRules(), State.random(size, seed=0)
    assert rules.step_reference(board) == rules.step_vectorized(board), "the two steps disagree"
    per_cell = best_time(lambda: rules.step_reference(board), 3)
    vectorized = best_time(lambda: [rules.step_vectorized(board) for _ in range(100)], 5) / 100
    return per_cell, vectorized, per_cell / vectorized


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="board size for the vectorized comparison")
    parser.add_argument("--game-size", type=int, default=60, help="board size of each game (per-cell rules)")
    parser.add_argument("--steps", type=int, default=40, help="generations per game")
    parser.add_argument("--cpus", type=int, default=experiment.cores(), help="Ray's logical CPUs (default: the cores)")
    args = parser.parse_args()
    if min(args.size, args.game_size, args.steps, args.cpus) < 1:
        parser.error("sizes, steps and cpus must be at least 1")
    per_cell, vectorized, ratio = vectorized_speedup(args.size)
    print(f"{args.size}x{args.size} step: per-cell {1000 * per_cell:.1f} ms, vectorized {1000 * vectorized:.3f} ms "
          f"-> vectorized speed-up {ratio:.0f}x (goal >= 100x)")
    import raycourse

    raycourse.start(num_cpus=args.cpus, dashboard=False)
    try:
        print(experiment.serial_vs_actors(size=args.game_size, steps=args.steps))
    finally:
        raycourse.stop()


if __name__ == "__main__":
    main()
