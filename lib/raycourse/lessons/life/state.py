"""The board of a Game of Life: an N x N grid whose cells remember their age.

Why ages instead of booleans: the rules only care whether a cell is alive, but
a picture in which long-lived cells (blocks, still lifes) look different from
newborn ones (the front of a glider) shows the dynamics at a glance. A cell
holds 0 when dead and 1, 2, ... for the number of generations it has lived.

A :class:`State` is immutable in spirit: the rules build a new one per
generation, so a game's history is just a list of states that can be shipped
between Ray processes (a small numpy array pickles cheaply).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class State:
    """One generation: ``grid[i, j]`` is the age of cell (row i, column j), 0 when dead."""

    grid: np.ndarray
    generation: int = 0

    def __post_init__(self) -> None:
        grid = np.asarray(self.grid)
        if grid.ndim != 2 or grid.shape[0] != grid.shape[1] or grid.shape[0] < 1:
            raise ValueError(f"a State needs a square N x N grid, got shape {grid.shape}")
        if grid.dtype == bool:
            grid = grid.astype(np.int32)
        if not np.issubdtype(grid.dtype, np.integer):
            if not np.all(np.equal(np.mod(grid, 1), 0)):
                raise ValueError("cell ages must be whole numbers (0 dead, 1.. alive)")
            grid = grid.astype(np.int32)
        if grid.size and grid.min() < 0:
            raise ValueError("cell ages cannot be negative (0 means dead)")
        if not isinstance(self.generation, (int, np.integer)) or self.generation < 0:
            raise ValueError(f"generation must be a whole number >= 0, got {self.generation!r}")
        object.__setattr__(self, "grid", grid.astype(np.int32, copy=False))

    @classmethod
    def trusted(cls, grid: np.ndarray, generation: int) -> "State":
        """Build a State from a grid the rules just computed, skipping validation (it is the hot path)."""
        state = object.__new__(cls)
        object.__setattr__(state, "grid", grid)
        object.__setattr__(state, "generation", generation)
        return state

    @classmethod
    def random(cls, size: int = 10, seed: int | None = None, density: float = 0.3) -> "State":
        """A random board: each cell alive (age 1) with probability ``density``; ``seed`` makes it repeatable."""
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"size must be a whole number >= 1, got {size!r}")
        if not 0.0 <= density <= 1.0:
            raise ValueError(f"density must be between 0 and 1, got {density!r}")
        rng = np.random.default_rng(seed)
        return cls((rng.random((size, size)) < density).astype(np.int32))

    @classmethod
    def from_cells(cls, size: int, cells: Any, at: tuple[int, int] = (0, 0)) -> "State":
        """An empty ``size`` x ``size`` board with the given live cells (row, col) placed at offset ``at``."""
        grid = np.zeros((size, size), dtype=np.int32)
        for row, col in cells:
            r, c = row + at[0], col + at[1]
            if not (0 <= r < size and 0 <= c < size):
                raise ValueError(f"cell ({r}, {c}) lies outside the {size} x {size} board; use a bigger size or offset")
            grid[r, c] = 1
        return cls(grid)

    @property
    def size(self) -> int:
        return int(self.grid.shape[0])

    @property
    def alive(self) -> np.ndarray:
        """A boolean grid: True where a cell is alive."""
        return self.grid > 0

    @property
    def population(self) -> int:
        return int(np.count_nonzero(self.grid))

    def same_cells(self, other: "State | np.ndarray") -> bool:
        """True when the same cells are alive (ages ignored)."""
        theirs = other.alive if isinstance(other, State) else np.asarray(other) > 0
        return bool(np.array_equal(self.alive, theirs))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return self.generation == other.generation and np.array_equal(self.grid, other.grid)

    __hash__ = None  # type: ignore[assignment]  # mutable numpy inside: not hashable

    def render(self, alive: str = "#", dead: str = ".") -> str:
        """A text picture, one line per row (for the command line and doctests)."""
        return "\n".join("".join(alive if cell else dead for cell in row) for row in self.grid)

    def __repr__(self) -> str:
        return f"State(size={self.size}, generation={self.generation}, population={self.population})"
