"""What a pull run did, as evidence: results, deliveries, the dispatcher's books, how each loop ended.

:func:`~.run.run_pull` fills a :class:`RunReport`; lessons print it and draw its intervals, and the
checks of lesson 09 judge it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...timing import Interval
from .actors import Event, Task
from .measure import Efficiency, Timed, efficiency, spans


@dataclass
class RunReport:
    """What a pull run did: results, deliveries, the dispatcher's books, how each loop ended, when tasks ran."""

    total: int
    workers: int
    ended: str = ""
    seconds: float = 0.0
    tasks: list[Task] = field(default_factory=list, repr=False)
    results: dict[Any, Any] = field(default_factory=dict, repr=False)
    deliveries: dict[Any, int] = field(default_factory=dict, repr=False)
    loops: dict[Any, str] = field(default_factory=dict)  # worker id -> "returned 4", "error: ...", "killed", ...
    worker_ids: list[Any] = field(default_factory=list)  # the first workers' ids, in the order they started
    pids: dict[Any, int] = field(default_factory=dict, repr=False)  # worker id -> process id
    books: list[Event] = field(default_factory=list, repr=False)  # the dispatcher's log
    loop_tasks: dict[str, Any] = field(default_factory=dict, repr=False)  # task id of each loop's ref -> worker id
    born: dict[str, float] = field(default_factory=dict, repr=False)  # task id of each loop's ref -> when it started
    killed: tuple[Any, Any] | None = None  # (worker id, task id) killed on purpose
    kill_time: float | None = None
    relaunched: list[Any] = field(default_factory=list)
    supervisor: str | None = None  # "returned", "raised ...", "still running"
    running_at_return: list[Any] = field(default_factory=list)
    used: dict[str, Any] = field(default_factory=dict, repr=False)

    def values(self) -> dict[Any, Any]:
        return {i: r.value if isinstance(r, Timed) else r for i, r in sorted(self.results.items(), key=_order)}

    def missing(self) -> list[Any]:
        return [t.id for t in self.tasks if t.id not in self.results]

    def duplicates(self) -> dict[Any, int]:
        return {i: n for i, n in sorted(self.deliveries.items(), key=_order) if n > 1}

    def errors(self) -> dict[Any, str]:
        return {w: text[len("error: "):] for w, text in self.loops.items() if text.startswith("error: ")}

    def events(self, *kinds: str) -> list[Event]:
        return [e for e in self.books if not kinds or e.kind in kinds]

    def intervals(self, name: str = "task") -> list[Interval]:
        return spans(sorted(self.results.items(), key=_order), name)

    def efficiency(self) -> Efficiency:
        return efficiency(self.intervals(), self.workers)

    def __repr__(self) -> str:
        e = self.efficiency()
        deliveries = sum(self.deliveries.values())
        text = (f"{len(self.results)} of {self.total} results ({deliveries} deliveries) from {self.workers} workers; "
                f"ended: {self.ended}")
        if self.results:
            text += f"; makespan {e.makespan:.2f} s, ideal {e.ideal:.2f} s, efficiency {e.ratio:.2f}"
        if self.killed:
            text += f"\nworker {self.killed[0]} was killed holding task {self.killed[1]}; relaunched: {self.relaunched}"
        problems = sorted({text for text in self.loops.values() if text.startswith("error")})
        return text + "".join(f"\na loop ended with {p}" for p in problems[:3])


def _order(item: tuple[Any, Any]) -> tuple[str, Any]:
    return (type(item[0]).__name__, item[0])
