"""Gomoku (k in a row on an n x n board): the rules, and random opening positions.

Why Gomoku: its rules fit in a screen, yet games last from a handful of moves
to a full board. That spread of durations is exactly what makes fixed work
assignment wasteful and a pull-based dispatcher worth having.

A :class:`Board` is immutable: :meth:`Board.play` returns a new board, so a
tree search can keep many positions without copying by hand. Cells are
numbered ``row * size + column``; black (``1``) moves first, white is ``-1``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

BLACK, WHITE, EMPTY = 1, -1, 0
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class Rules:
    """Board size and how many stones in a row win: 15x15 five-in-a-row, or 7x7 four for quick runs."""

    size: int = 15
    win: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 3 <= self.size <= 25:
            raise ValueError(f"Rules.size must be a whole number from 3 to 25, got {self.size!r}")
        if not isinstance(self.win, int) or not 3 <= self.win <= self.size:
            raise ValueError(f"Rules.win must be from 3 to the board size ({self.size}), got {self.win!r}")


class Board:
    """A position: whose turn it is, the stones, and the winner once the game is over."""

    __slots__ = ("rules", "cells", "to_move", "winner", "last_move", "stones")

    def __init__(self, rules: Rules = Rules(), cells: tuple[int, ...] | None = None, to_move: int = BLACK,
                 winner: int = EMPTY, last_move: int | None = None) -> None:
        area = rules.size * rules.size
        self.rules = rules
        self.cells = cells if cells is not None else (EMPTY,) * area
        if len(self.cells) != area:
            raise ValueError(f"a {rules.size}x{rules.size} board has {area} cells, got {len(self.cells)}")
        self.to_move = to_move
        self.winner = winner
        self.last_move = last_move
        self.stones = sum(1 for c in self.cells if c != EMPTY)

    @property
    def terminal(self) -> bool:
        """The game is over: someone has a line, or the board is full (a draw)."""
        return self.winner != EMPTY or self.stones == len(self.cells)

    def legal_moves(self) -> list[int]:
        return [] if self.terminal else [i for i, c in enumerate(self.cells) if c == EMPTY]

    def play(self, move: int) -> "Board":
        """The board after the player to move puts a stone on ``move``."""
        if self.terminal:
            raise ValueError("the game is over: no more moves")
        if not (isinstance(move, int) and 0 <= move < len(self.cells)) or self.cells[move] != EMPTY:
            raise ValueError(f"move {move!r} is not an empty cell of this {self.rules.size}x{self.rules.size} board")
        cells = list(self.cells)
        cells[move] = self.to_move
        winner = self.to_move if line_length(cells, self.rules.size, move) >= self.rules.win else EMPTY
        return Board(self.rules, tuple(cells), -self.to_move, winner, move)

    def key(self) -> tuple[tuple[int, ...], int]:
        """A hashable identity of the position (for caches)."""
        return self.cells, self.to_move

    def __str__(self) -> str:
        marks = {BLACK: "X", WHITE: "O", EMPTY: "."}
        n = self.rules.size
        rows = [" ".join(marks[c] for c in self.cells[r * n:(r + 1) * n]) for r in range(n)]
        return "\n".join(rows)

    def __repr__(self) -> str:
        turn = "X" if self.to_move == BLACK else "O"
        return f"Board({self.rules.size}x{self.rules.size}, {self.rules.win} to win, {self.stones} stones, {turn} to move)"


def line_length(cells: list[int] | tuple[int, ...], size: int, move: int) -> int:
    """The longest line of the stone on ``move`` (counting itself), over the four directions."""
    colour = cells[move]
    row, col = divmod(move, size)
    best = 0
    for dr, dc in _DIRECTIONS:
        length = 1
        for sign in (1, -1):
            r, c = row + sign * dr, col + sign * dc
            while 0 <= r < size and 0 <= c < size and cells[r * size + c] == colour:
                length += 1
                r, c = r + sign * dr, c + sign * dc
        best = max(best, length)
    return best


def random_opening(rules: Rules, stones: int, rng: random.Random | int) -> Board:
    """A position with ``stones`` stones placed at random (alternating colours) and no winner yet.

    Self-play from the empty board repeats the same games; random openings
    make each game different and vary how long it lasts.
    """
    if not isinstance(stones, int) or not 0 <= stones < rules.size * rules.size:
        raise ValueError(f"stones must be from 0 to {rules.size * rules.size - 1}, got {stones!r}")
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    for _ in range(100):
        board = Board(rules)
        for move in rng.sample(range(rules.size * rules.size), stones):
            board = board.play(move)
            if board.terminal:
                break
        else:
            return board
    raise ValueError(f"could not place {stones} random stones without someone winning; use fewer stones")
