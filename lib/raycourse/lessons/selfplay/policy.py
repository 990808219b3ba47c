"""A heuristic "policy network" for Gomoku, served by a few policy actors behind a round-robin.

In AlphaZero-style self-play a neural network scores positions: prior
probabilities for the moves and a value for the player to move. Here a short
hand-written heuristic plays that role, so the lesson needs no GPU and no
training; what matters is *where* it runs.

Why actors, and why only a few: a real policy network sits on a scarce device
(a GPU), loaded once and shared. We declare that scarcity as a custom resource
(``resources={"policy_slot": 1}`` per actor, and ``policy_slot: 2`` on the
cluster), so Ray never starts more policy actors than there are slots.
Every evaluation is about equally cheap, so a plain round-robin over the
actors balances them well; it is the *games*, whose lengths vary, that need a
pull-based dispatcher.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from .gomoku import EMPTY, Board

_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
WIN_SCORE = 1e9


def _line_score(cells: tuple[int, ...], size: int, win: int, move: int, colour: int) -> float:
    """How strong a stone of ``colour`` on ``move`` would be: longer lines with open ends score higher."""
    row, col = divmod(move, size)
    total = 0.0
    for dr, dc in _DIRECTIONS:
        length, open_ends = 1, 0
        for sign in (1, -1):
            r, c = row + sign * dr, col + sign * dc
            while 0 <= r < size and 0 <= c < size and cells[r * size + c] == colour:
                length += 1
                r, c = r + sign * dr, c + sign * dc
            if 0 <= r < size and 0 <= c < size and cells[r * size + c] == EMPTY:
                open_ends += 1
        if length >= win:
            return WIN_SCORE
        if open_ends:
            total += 8.0 ** length * (3.0 if open_ends == 2 else 1.0)
    return total


def candidate_moves(board: Board, reach: int = 2) -> list[int]:
    """Empty cells within ``reach`` of a stone (the centre on an empty board): the moves worth considering."""
    n = board.rules.size
    if board.stones == 0:
        return [(n // 2) * n + n // 2]
    cells = board.cells
    found = []
    for move, value in enumerate(cells):
        if value != EMPTY:
            continue
        row, col = divmod(move, n)
        if any(cells[r * n + c] != EMPTY
               for r in range(max(0, row - reach), min(n, row + reach + 1))
               for c in range(max(0, col - reach), min(n, col + reach + 1))):
            found.append(move)
    return found or board.legal_moves()


def evaluate(board: Board) -> tuple[dict[int, float], float]:
    """Priors over candidate moves and a value in [-1, 1] for the player to move.

    A move scores by the line it makes for the player (attack) plus the line it
    takes from the opponent (defence). The value compares the best attack of
    each side: the player to move has the tempo, so its threats count first.
    """
    if board.terminal:
        raise ValueError("evaluate() needs a position where the game is not over")
    size, win, cells, me = board.rules.size, board.rules.win, board.cells, board.to_move
    moves = candidate_moves(board)
    attack = [_line_score(cells, size, win, m, me) for m in moves]
    defence = [_line_score(cells, size, win, m, -me) for m in moves]
    scores = [a + 0.9 * d for a, d in zip(attack, defence)]
    top = max(scores)
    weights = [math.exp(min(0.0, math.log(s + 1.0) - math.log(top + 1.0))) for s in scores]  # proportional, 0-safe
    total = sum(weights)
    priors = {m: w / total for m, w in zip(moves, weights)}
    best_attack, best_defence = max(attack), max(defence)
    if best_attack >= WIN_SCORE:
        value = 1.0
    else:
        value = math.tanh(0.5 * (math.log(best_attack + 1.0, 8) - 0.8 * math.log(best_defence + 1.0, 8)))
    return priors, value


class PolicyWorker:
    """Holds the (pretend) scarce policy and answers evaluation requests; use it as a Ray actor."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, board: Board) -> tuple[dict[int, float], float]:
        self.calls += 1
        return evaluate(board)

    def served(self) -> int:
        """How many positions this actor evaluated (to see that the round-robin spread the load)."""
        return self.calls


def start_policy_workers(count: int, resources: dict[str, float] | None = None) -> list[Any]:
    """Start ``count`` policy actors, each claiming one ``policy_slot`` (pass ``resources={}`` to claim none).

    They need ``num_cpus=0``: the scarce thing they hold is the policy slot,
    and our self-play workers already reserve the CPUs.
    """
    import ray

    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive whole number of policy actors, got {count!r}")
    needs = {"policy_slot": 1.0} if resources is None else dict(resources)
    available = ray.cluster_resources()
    for name, amount in needs.items():
        if available.get(name, 0) < amount * count:
            raise ValueError(f"{count} policy actors need {amount * count:g} {name!r} but the cluster has "
                             f"{available.get(name, 0):g}: start Ray with resources={{{name!r}: {count}}}")
    actor = ray.remote(num_cpus=0, resources=needs)(PolicyWorker)
    workers = [actor.remote() for _ in range(count)]
    ray.get([w.served.remote() for w in workers])
    return workers


class RoundRobin:
    """Call the policy actors in turn: ``evaluate(board)`` from any self-play worker.

    Each caller keeps its own rotation (no central hop), so evaluations spread
    evenly while requests are uniform in cost. A small cache skips positions
    this caller has already asked about.
    """

    def __init__(self, policies: Sequence[Any], cache_size: int = 20_000) -> None:
        if not policies:
            raise ValueError("RoundRobin needs at least one policy actor")
        self.policies = list(policies)
        self.turn = 0
        self.cache: dict[Any, tuple[dict[int, float], float]] = {}
        self.cache_size = cache_size

    def __call__(self, board: Board) -> tuple[dict[int, float], float]:
        import ray

        key = board.key()
        if key in self.cache:
            return self.cache[key]
        policy = self.policies[self.turn % len(self.policies)]
        self.turn += 1
        answer = ray.get(policy.evaluate.remote(board))
        if len(self.cache) < self.cache_size:
            self.cache[key] = answer
        return answer
