"""A game: an initial :class:`State` and the history of states the rules produced from it.

Keeping the whole history (rather than only the latest board) is what lets a
Ray actor answer "give me everything since generation k" and lets tests compare
generation by generation. Boards are small, so memory is not a concern for the
sizes the course uses; ``keep`` bounds it for long runs.
"""
from __future__ import annotations

from .rules import ConwaysRules
from .state import State


class Game:
    """Holds the states so far and steps them forward with ``rules``."""

    def __init__(self, initial: State | None = None, rules: ConwaysRules | None = None, size: int = 10,
                 seed: int | None = None, keep: int | None = None) -> None:
        if initial is not None and not isinstance(initial, State):
            raise TypeError(f"initial must be a State (e.g. State.random(size, seed)), got {type(initial).__name__}")
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.rules = rules or ConwaysRules()
        self.keep = keep
        self.states: list[State] = [initial if initial is not None else State.random(size, seed)]

    @property
    def state(self) -> State:
        """The latest generation."""
        return self.states[-1]

    @property
    def generation(self) -> int:
        return self.state.generation

    def step(self, num_steps: int = 1) -> list[State]:
        """Advance ``num_steps`` generations; return the new states (oldest first)."""
        if not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a whole number >= 1, got {num_steps!r}")
        new = []
        for _ in range(num_steps):
            new.append(self.rules.step(self.states[-1]))
            self.states.append(new[-1])
        if self.keep is not None and len(self.states) > self.keep:
            del self.states[: len(self.states) - self.keep]
        return new

    def __repr__(self) -> str:
        return f"Game(size={self.state.size}, generation={self.generation}, population={self.state.population})"
