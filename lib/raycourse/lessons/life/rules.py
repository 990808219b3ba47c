"""Conway's rules, twice: a plain per-cell reference and a vectorized numpy version.

Why two: the per-cell loop reads like the rules themselves (so learners can
check their own ``next_state`` against it), and the numpy version is what you
would actually run: it does the same arithmetic on whole arrays, more than a
hundred times faster on a 100 x 100 board (see ``benchmarks/life.py``). Tests
assert that both give identical boards.

Edges: the board has a **fixed dead border**. Cells outside the grid count as
dead, so a glider that reaches an edge turns into a block-like debris instead
of re-entering on the other side (no torus). That keeps the reference loop
obvious and makes "what happened at the edge" easy to explain.

The rules, for a cell with ``n`` live neighbours among its eight:
a live cell survives with n in {2, 3}; a dead cell is born with n == 3.
Survivors age by one; newborns have age 1; everything else is 0.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .state import State

NextState = Callable[[bool, int], bool]


def conway(alive: bool, neighbours: int) -> bool:
    """Conway's rule for one cell: survive with 2 or 3 neighbours, be born with exactly 3."""
    return neighbours == 3 or (bool(alive) and neighbours == 2)


def count_neighbours(alive: np.ndarray, row: int, col: int) -> int:
    """Live cells among the (up to) eight neighbours of (row, col); outside the board counts as dead."""
    size_r, size_c = alive.shape
    total = 0
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            r, c = row + dr, col + dc
            if 0 <= r < size_r and 0 <= c < size_c and alive[r, c]:
                total += 1
    return total


def neighbour_counts(alive: np.ndarray) -> np.ndarray:
    """Live-neighbour count of every cell at once: sum of the eight shifted copies of a zero-padded board."""
    n, m = alive.shape
    padded = np.zeros((n + 2, m + 2), dtype=np.uint8)  # the dead border; uint8 is plenty for counts up to 8
    padded[1:-1, 1:-1] = alive
    return (padded[:-2, :-2] + padded[:-2, 1:-1] + padded[:-2, 2:] + padded[1:-1, :-2] + padded[1:-1, 2:]
            + padded[2:, :-2] + padded[2:, 1:-1] + padded[2:, 2:])


class ConwaysRules:
    """Steps a :class:`State` one generation; ``rule`` may replace Conway's per-cell rule.

    ``step`` uses numpy when the rule is Conway's own (and ``vectorized`` is
    True) and falls back to the per-cell loop for any other rule (a learner's
    function), so a custom rule is never silently ignored.
    """

    def __init__(self, rule: NextState | None = None, vectorized: bool = True) -> None:
        if rule is not None and not callable(rule):
            raise TypeError(f"rule must be a function (alive, neighbours) -> bool, got {type(rule).__name__}")
        self.rule: NextState = rule or conway
        self.vectorized = vectorized  # False: always the per-cell loop (slow on purpose, for demos)

    def step_reference(self, state: State) -> State:
        """The plain loop: for each cell, count its neighbours and apply the rule."""
        alive = state.alive
        new = np.zeros_like(state.grid)
        for row in range(state.size):
            for col in range(state.size):
                if self.rule(bool(alive[row, col]), count_neighbours(alive, row, col)):
                    new[row, col] = state.grid[row, col] + 1
        return State(new, state.generation + 1)

    def step_vectorized(self, state: State) -> State:
        """Conway's rule on whole arrays; identical to :meth:`step_reference` with the default rule."""
        if self.rule is not conway:
            raise ValueError("step_vectorized implements Conway's rule only; use step_reference for a custom rule")
        alive = state.alive
        counts = neighbour_counts(alive)
        lives = (counts == 3) | (alive & (counts == 2))
        return State.trusted(np.where(lives, state.grid + 1, 0).astype(np.int32), state.generation + 1)

    def step(self, state: State) -> State:
        """One generation, as fast as the rule allows."""
        if not isinstance(state, State):
            raise TypeError(f"step needs a State, got {type(state).__name__}")
        if self.vectorized and self.rule is conway:
            return self.step_vectorized(state)
        return self.step_reference(state)
