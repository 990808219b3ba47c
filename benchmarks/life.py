"""Game of Life benchmark (not a test): prints two speed-ups in one run.

1. The vectorized numpy step over the per-cell Python loop on a 100 x 100 board
   (goal: at least 100x).
2. Running as many games as there are CPUs as Ray actors, against running them
   one after another in this process (ideal: the number of CPUs; less on a busy
   machine). Actor start-up is excluded: it is paid once per game, not per step.

    .venv/bin/python benchmarks/life.py [--size 100] [--steps 40]
"""
from __future__ import annotations

import argparse
import os
import time

from raycourse.lessons.life import ConwaysRules, Game, State, game_actors, run_games
from raycourse.timing import best_time


def vectorized_speedup(size: int) -> tuple[float, float, float]:
    rules, board = ConwaysRules(), State.random(size, seed=0)
    assert rules.step_reference(board) == rules.step_vectorized(board), "the two steps disagree"
    per_cell = best_time(lambda: rules.step_reference(board), 3)
    vectorized = best_time(lambda: [rules.step_vectorized(board) for _ in range(100)], 5) / 100
    return per_cell, vectorized, per_cell / vectorized


def actor_speedup(num_games: int, size: int, steps: int) -> tuple[float, float, float]:
    import ray

    import raycourse

    def serial() -> None:
        games = [Game(State.random(size, seed), rules=ConwaysRules(vectorized=False)) for seed in range(num_games)]
        run_games(games, steps, batch_size=steps)

    serial_s = best_time(serial, 2)
    raycourse.start(num_cpus=num_games, dashboard=False)
    try:
        actors = game_actors(num_games, size=size, vectorized=False)
        ray.get([a.get_pid.remote() for a in actors])  # all started: time the stepping only
        ray.get([a.step.remote(1) for a in actors])  # first call warms each process

        def parallel() -> None:
            ray.get([a.step.remote(steps) for a in actors])

        actor_s = best_time(parallel, 2)
    finally:
        raycourse.stop()
    return serial_s, actor_s, serial_s / actor_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100, help="board size for the vectorized comparison")
    parser.add_argument("--game-size", type=int, default=60, help="board size of each game (per-cell rules)")
    parser.add_argument("--steps", type=int, default=40, help="generations per game")
    args = parser.parse_args()
    if min(args.size, args.game_size, args.steps) < 1:
        parser.error("sizes and steps must be at least 1")
    per_cell, vectorized, ratio = vectorized_speedup(args.size)
    print(f"{args.size}x{args.size} step: per-cell {1000 * per_cell:.1f} ms, vectorized {1000 * vectorized:.3f} ms "
          f"-> vectorized speed-up {ratio:.0f}x (goal >= 100x)")
    cpus = os.cpu_count() or 1
    serial_s, actor_s, speedup = actor_speedup(cpus, args.game_size, args.steps)
    print(f"{cpus} games x {args.steps} steps of {args.game_size}x{args.game_size} (per-cell rules): serial {serial_s:.2f} s, "
          f"{cpus} actors {actor_s:.2f} s -> actor speed-up {speedup:.2f}x (ideal {cpus}x)")


if __name__ == "__main__":
    main()
