"""Monte Carlo tree search guided by a policy, and one self-play game as a unit of work.

The search (PUCT, as in AlphaZero) grows a tree from the current position. Each
simulation walks down by the rule "value so far + exploration bonus", asks the
policy about the new leaf (priors for its moves, a value for the player to
move), and passes that value back up, flipping its sign at every level because
the players alternate. After ``simulations`` walks, the visit counts of the
root's moves are the search's answer: they are what self-play records to train
the next policy.

A game is the unit of work the workers pull: :class:`SelfPlayGame` turns a
seed into a :class:`Trajectory` (the opening, the moves, the visit counts and
the outcome). Games last from a few moves to a full board, so their durations
vary a lot.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable

from .gomoku import BLACK, EMPTY, Board, Rules, random_opening

Evaluate = Callable[[Board], tuple[dict[int, float], float]]


class Node:
    """A move in the tree: its prior, how often the search went through it, and the value it found."""

    __slots__ = ("prior", "visits", "value_sum", "children")

    def __init__(self, prior: float) -> None:
        self.prior = prior
        self.visits = 0
        self.value_sum = 0.0  # from the point of view of the player who made this move
        self.children: dict[int, Node] = {}

    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


def _select(node: Node, c_puct: float) -> tuple[int, Node]:
    scale = c_puct * math.sqrt(node.visits + 1)
    return max(node.children.items(), key=lambda item: item[1].q() + scale * item[1].prior / (1 + item[1].visits))


def search(board: Board, evaluate: Evaluate, simulations: int = 32, c_puct: float = 1.5) -> dict[int, int]:
    """Visit counts of the moves from ``board`` after ``simulations`` PUCT walks.

    ``c_puct`` trades exploitation (low: trust the values found so far) for
    exploration (high: follow the priors, try less-visited moves).
    """
    if board.terminal:
        raise ValueError("search() needs a position where the game is not over")
    if not isinstance(simulations, int) or simulations < 1:
        raise ValueError(f"simulations must be a positive whole number, got {simulations!r}")
    if not c_puct > 0:
        raise ValueError(f"c_puct (the exploration constant) must be positive, got {c_puct!r}")
    root = Node(1.0)
    for _ in range(simulations):
        node, state, path = root, board, [root]
        while node.children and not state.terminal:
            move, node = _select(node, c_puct)
            state = state.play(move)
            path.append(node)
        if state.terminal:
            value = -1.0 if state.winner != EMPTY else 0.0  # the player to move has just lost (or a draw)
        else:
            priors, value = evaluate(state)
            node.children = {m: Node(p) for m, p in priors.items()}
        for step in reversed(path):  # value is for the player to move at `state`; flip at each level up
            step.visits += 1
            step.value_sum -= value
            value = -value
    return {move: child.visits for move, child in root.children.items() if child.visits}


@dataclass(frozen=True)
class Trajectory:
    """One self-play game: enough to replay it and to train on it."""

    seed: int
    rules: Rules
    opening: tuple[int, ...]  # the cells of the random opening position
    first_to_move: int
    moves: tuple[int, ...]
    visits: tuple[tuple[tuple[int, int], ...], ...]  # per move: (move, visit count) pairs from the search
    winner: int  # 1 black, -1 white, 0 draw

    @property
    def length(self) -> int:
        return len(self.moves)

    def board(self, moves: int | None = None) -> Board:
        """The position after the opening and the first ``moves`` moves (all of them by default)."""
        board = Board(self.rules, self.opening, self.first_to_move)
        for move in self.moves[: self.length if moves is None else moves]:
            board = board.play(move)
        return board

    def outcome(self) -> str:
        return {BLACK: "X wins", -BLACK: "O wins", EMPTY: "draw"}[self.winner]


@dataclass(frozen=True)
class SelfPlayGame:
    """The work function of self-play: ``game(seed) -> Trajectory``.

    ``evaluate`` is where the policy lives: :func:`policy.evaluate` in this
    process, or a :class:`policy.RoundRobin` over policy actors. The opening
    has from ``min_stones`` to ``max_stones`` random stones; for the first
    ``explore_moves`` moves the move is drawn in proportion to the visit counts
    (variety), then the most visited move is played.
    """

    evaluate: Any
    rules: Rules = Rules(7, 4)
    simulations: int = 24
    c_puct: float = 1.5
    min_stones: int = 0
    max_stones: int = 2
    explore_moves: int = 4

    def __call__(self, seed: int) -> Trajectory:
        rng = random.Random(seed)
        board = random_opening(self.rules, rng.randint(self.min_stones, self.max_stones), rng)
        start = board
        moves, visits = [], []
        while not board.terminal:
            counts = search(board, self.evaluate, self.simulations, self.c_puct)
            options = sorted(counts.items())
            if len(moves) < self.explore_moves:
                move = rng.choices([m for m, _ in options], weights=[n for _, n in options])[0]
            else:
                move = max(options, key=lambda item: item[1])[0]
            moves.append(move)
            visits.append(tuple(options))
            board = board.play(move)
        return Trajectory(seed, self.rules, start.cells, start.to_move, tuple(moves), tuple(visits), board.winner)
