"""Known patterns, as (row, col) offsets of their live cells: for tests, demos and checks.

Each has a property that is easy to assert: a **block** never changes, a
**blinker** alternates between a row and a column (period 2), a **glider**
reappears moved one cell down and right every 4 generations, and the **Gosper
glider gun** emits a new glider every 30 generations.
"""
from __future__ import annotations

from .state import State

BLOCK = [(0, 0), (0, 1), (1, 0), (1, 1)]
BLINKER = [(1, 0), (1, 1), (1, 2)]  # horizontal; vertical one generation later
GLIDER = [(0, 1), (1, 2), (2, 0), (2, 1), (2, 2)]  # travels down and to the right
GOSPER_GLIDER_GUN = [
    (5, 1), (5, 2), (6, 1), (6, 2),
    (5, 11), (6, 11), (7, 11), (4, 12), (8, 12), (3, 13), (9, 13), (3, 14), (9, 14), (6, 15),
    (4, 16), (8, 16), (5, 17), (6, 17), (7, 17), (6, 18),
    (3, 21), (4, 21), (5, 21), (3, 22), (4, 22), (5, 22), (2, 23), (6, 23), (1, 25), (2, 25), (6, 25), (7, 25),
    (3, 35), (4, 35), (3, 36), (4, 36),
]

PATTERNS = {"block": BLOCK, "blinker": BLINKER, "glider": GLIDER, "gun": GOSPER_GLIDER_GUN}


def place(name: str, size: int, at: tuple[int, int] = (1, 1)) -> State:
    """A ``size`` x ``size`` board holding pattern ``name`` with its corner at ``at``."""
    if name not in PATTERNS:
        raise ValueError(f"unknown pattern {name!r}; choose one of {sorted(PATTERNS)}")
    return State.from_cells(size, PATTERNS[name], at)
