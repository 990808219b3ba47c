"""Where results go: a collector in memory, or a file written record by record (both store each task once).

A sink tells the dispatcher it stored a task's result *before* ``add`` returns, so a worker that
waited for ``add`` before asking again is known, from the dispatcher's books alone, to have handed
its result on; one that did not wait shows up there as asking early.
"""
from __future__ import annotations

import os
import pickle
import threading
import time
from typing import Any

from .actors import RunStopped


class _Sink:
    """What Collector and FilePickler share: dedup by task id, delivery counts, telling the dispatcher.

    ``delays`` (task id -> seconds) make storing some results slow, as a busy
    disk would: a worker that does not wait for ``add`` then asks for more
    before its result is stored, and the dispatcher's books show it.
    """

    def __init__(self, dispatcher: Any = None, delays: dict[Any, float] | None = None) -> None:
        self.dispatcher, self.delays = dispatcher, dict(delays or {})
        self.counts: dict[Any, int] = {}
        self.lock = threading.Lock()
        self.stopped = False
        self.underway = 0  # add() calls started and not yet returned

    def attach(self, dispatcher: Any, delays: dict[Any, float] | None = None) -> None:
        self.dispatcher, self.delays = dispatcher, dict(delays or {})

    def add(self, task_id: Any, result: Any) -> bool:
        """Store ``result`` unless this task's result is already stored; True if it was new."""
        import ray

        if self.stopped:
            raise RunStopped("the run was stopped by the driver")
        with self.lock:
            delay = self.delays.pop(task_id, 0.0)
            self.underway += 1
        try:
            if delay:
                time.sleep(delay)
            with self.lock:
                new = task_id not in self.counts
                self.counts[task_id] = self.counts.get(task_id, 0) + 1
                if new:
                    self._store(task_id, result)
            if new and self.dispatcher is not None:
                ray.get(self.dispatcher.completed.remote(task_id))
            return new
        finally:
            with self.lock:
                self.underway -= 1

    def busy(self) -> int:
        """How many ``add`` calls are storing right now (a worker that did not wait leaves some behind)."""
        with self.lock:
            return self.underway

    def _store(self, task_id: Any, result: Any) -> None:
        raise NotImplementedError

    def deliveries(self) -> dict[Any, int]:
        with self.lock:
            return dict(self.counts)

    def progress(self) -> tuple[int, int]:
        """(results stored, results delivered, repeats included)."""
        with self.lock:
            return len(self.counts), sum(self.counts.values())

    def stop(self) -> None:
        self.stopped = True


class Collector(_Sink):
    """Keeps results in memory: ``results()`` is ``{task id: result}``."""

    def __init__(self, dispatcher: Any = None, delays: dict[Any, float] | None = None) -> None:
        super().__init__(dispatcher, delays)
        self.stored: dict[Any, Any] = {}

    def _store(self, task_id: Any, result: Any) -> None:
        self.stored[task_id] = result

    def results(self) -> dict[Any, Any]:
        with self.lock:
            return dict(self.stored)

    def reset(self) -> None:
        """Forget every result (reusing the actor for another run)."""
        self.__init__()  # type: ignore[misc]


class FilePickler(_Sink):
    """Appends each record to a file with pickle, flushed at once: a crash loses nothing already written.

    ``write(record)`` for any record; as a sink, ``add(task_id, result)``
    writes ``(task_id, result)``. ``close()`` closes the file. Read it back
    with :func:`read_pickles`.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = str(path)
        self.file = open(self.path, "ab")
        self.written = 0

    def write(self, record: Any) -> int:
        pickle.dump(record, self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.file.flush()  # into the OS now: survives this process dying (os.fsync would survive power loss too)
        self.written += 1
        return self.written

    def _store(self, task_id: Any, result: Any) -> None:
        self.write((task_id, result))

    def results(self) -> dict[Any, Any]:
        return {r[0]: r[1] for r in read_pickles(self.path) if isinstance(r, tuple) and len(r) == 2}

    def close(self) -> int:
        """Close the file (nothing is written after this); returns how many records it holds."""
        self.file.close()
        return self.written


def read_pickles(path: str) -> list[Any]:
    """Every record in a file written by :class:`FilePickler` (a half-written last record is skipped)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no records file at {path!r}: was the FilePickler created with this path?")
    records = []
    with open(path, "rb") as file:
        while True:
            try:
                records.append(pickle.load(file))
            except EOFError:
                return records
            except (pickle.UnpicklingError, ValueError, AttributeError):
                return records  # a record cut short by a crash
