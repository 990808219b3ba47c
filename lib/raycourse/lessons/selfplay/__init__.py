"""Self-play for the capstone: Gomoku, a heuristic policy served by actors, and Monte Carlo tree search.

The business logic is small on purpose; lesson 08 is about *running* it:
games of very different lengths are pulled by workers from a dispatcher
(:mod:`raycourse.dispatch`), while policy evaluations go round-robin to a
fixed number of policy actors that hold a scarce resource.
"""
from .gomoku import BLACK, EMPTY, WHITE, Board, Rules, random_opening
from .mcts import SelfPlayGame, Trajectory, search
from .policy import PolicyWorker, RoundRobin, evaluate, start_policy_workers

__all__ = [
    "BLACK", "WHITE", "EMPTY", "Board", "Rules", "random_opening", "search", "SelfPlayGame", "Trajectory",
    "evaluate", "PolicyWorker", "RoundRobin", "start_policy_workers",
]
