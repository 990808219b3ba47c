"""``python -m raycourse.lessons.life``: watch a game as text in the terminal (no Ray, no browser)."""
from __future__ import annotations

import argparse
import sys

from . import patterns
from .game import Game
from .state import State


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m raycourse.lessons.life",
                                description="Print a Game of Life board for each generation (dead border, no wrap-around).")
    p.add_argument("--size", type=_positive, default=12, help="board is SIZE x SIZE cells (default 12)")
    p.add_argument("--steps", type=_non_negative, default=5, help="generations to run (default 5)")
    p.add_argument("--seed", type=_non_negative, default=0, help="seed of the random board (default 0)")
    p.add_argument("--pattern", choices=sorted(patterns.PATTERNS), help="start from a known pattern instead of random cells")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.pattern:
        try:
            initial = patterns.place(args.pattern, args.size)
        except ValueError as error:
            parser().error(str(error))
    else:
        initial = State.random(args.size, args.seed)
    game = Game(initial)
    print(f"generation 0, {game.state.population} alive\n{game.state.render()}")
    for state in game.step(args.steps) if args.steps else []:
        print(f"\ngeneration {state.generation}, {state.population} alive\n{state.render()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
