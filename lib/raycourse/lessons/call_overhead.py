"""What one actor call costs: a plain object against the same class as a Ray actor (lesson 07).

Why a helper: the lesson's point is the shape of the two curves (parallel
lines, shifted by a constant round trip), not the stopwatch code. The class is
the lesson's own: any class whose ``__init__(pause)`` stores a pause, with
``set_pause(pause)`` and a ``next()`` that sleeps that long. Each pause is
timed over ``calls`` calls that each wait for their result (as code that needs
every value before the next call does), keeping the best of ``repeats`` rounds,
since other programs on the machine only ever add time.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class CallCost:
    """Milliseconds per call, for each pause, as a plain object and as an actor."""

    pauses_ms: list[float]
    plain_ms: list[float]
    actor_ms: list[float]

    @property
    def overhead_ms(self) -> float:
        """The typical extra time an actor call takes (the median gap between the two curves)."""
        return statistics.median(a - p for a, p in zip(self.actor_ms, self.plain_ms))

    def table(self) -> str:
        rows = [f"pause {p:5.1f} ms: plain {a:6.2f} ms/call, actor {b:6.2f} ms/call, overhead {b - a:5.2f} ms"
                for p, a, b in zip(self.pauses_ms, self.plain_ms, self.actor_ms)]
        return "\n".join(rows + [f"typical overhead of one actor call: {self.overhead_ms:.2f} ms"])

    def __repr__(self) -> str:
        return self.table()

    def plot(self, show: bool = True) -> Any:
        from .. import plots

        return plots.lines(self.pauses_ms, {"plain object": self.plain_ms, "Ray actor": self.actor_ms},
                           title="Time per call against the work each call does", x_label="pause per call (ms)",
                           y_label="ms per call", show=show)


def _per_call_ms(call: Any, calls: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, time.perf_counter() - started)
    return 1000 * best / calls


def measure(counter_class: type, pauses_ms: Sequence[float] = (0, 1, 2, 5, 10, 20), calls: int = 20,
            repeats: int = 2) -> CallCost:
    """Time ``counter_class(pause).next()`` in the notebook and through an actor of the same class."""
    import ray

    if not isinstance(counter_class, type) or not all(hasattr(counter_class, m) for m in ("next", "set_pause")):
        raise TypeError("measure needs a plain class with next() and set_pause(pause) methods, like PausingCounter")
    if calls < 1 or repeats < 1 or not pauses_ms or min(pauses_ms) < 0:
        raise ValueError("need at least one call, one repeat and pauses of 0 ms or more")
    actor = ray.remote(counter_class).remote(0.0)
    try:
        ray.get(actor.next.remote())  # the actor is up: its start is not a call's cost
        plain_ms, actor_ms = [], []
        for pause in pauses_ms:
            plain = counter_class(pause / 1000)
            plain_ms.append(_per_call_ms(plain.next, calls, repeats))
            ray.get(actor.set_pause.remote(pause / 1000))
            actor_ms.append(_per_call_ms(lambda: ray.get(actor.next.remote()), calls, repeats))
    finally:
        ray.kill(actor)
    return CallCost([float(p) for p in pauses_ms], plain_ms, actor_ms)
