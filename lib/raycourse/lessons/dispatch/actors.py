"""Pull-based work distribution: workers ask a dispatcher for the next task, results go to a sink.

Why: when task durations vary a lot, handing work out in fixed batches or a
fixed rotation leaves workers idle while the slowest task of their share
finishes. If instead each worker *pulls* the next task the moment it is free,
the run takes little more than total work / number of workers.

The pieces, each a small Ray actor (bookkeeping actors take ``num_cpus=0``:
they must not take a CPU slot from the workers):

* :class:`Dispatcher` hands out :class:`Task` s, then :data:`DONE`. It *leases*
  each task to the worker that took it, so the driver can give a dead worker's
  task back (:meth:`Dispatcher.requeue`). It keeps books (:class:`Event`): what
  it gave to whom, when it said DONE, and whether a worker asked again before
  its last result was stored. :class:`DispatcherProxy` keeps the same books in
  front of a dispatcher someone else wrote.
* The sinks (:mod:`.sinks`) receive results and tell the dispatcher before
  ``add`` returns, so a worker that waited for ``add`` is known to have handed
  its result on.
* :class:`PullWorker` is the course's own worker loop (the harness's default).

The books are what the checks judge: who held how many tasks, who was sent
home while work waited. Those are facts about the order of events, so a busy
machine, which only makes everything slower, does not change them.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence


class _Done:
    """The end-of-work signal. Pickles by name, so ``task is DONE`` holds in every process."""

    def __reduce__(self) -> str:
        return "DONE"

    def __repr__(self) -> str:
        return "DONE"


DONE = _Done()


class RunStopped(RuntimeError):
    """Raised to workers still calling a dispatcher or sink after the driver stopped the run."""


class DispatcherFailed(RuntimeError):
    """Raised to a worker when the dispatcher behind a :class:`DispatcherProxy` failed or answered nonsense."""


@dataclass(frozen=True)
class Task:
    id: int
    payload: Any


@dataclass(frozen=True)
class Event:
    """One line of a dispatcher's books.

    ``kind``: "give" (task to worker), "done" (DONE to worker), "early" (worker
    asked again before the task it held was stored), "stored" (the sink stored
    task), "requeue" (task given back for worker; task None if it held none),
    "bad" / "error" (the dispatcher behind a proxy answered nonsense or raised).
    """

    kind: str
    worker: Any = None
    task: Any = None
    time: float = 0.0
    note: str = ""


def _tasks(inputs: int | Iterable[Any]) -> list[Task]:
    if isinstance(inputs, bool) or not isinstance(inputs, int) and not hasattr(inputs, "__iter__"):
        raise TypeError(f"Dispatcher needs a number of tasks or an iterable of inputs, got {type(inputs).__name__}")
    items = list(range(inputs)) if isinstance(inputs, int) else list(inputs)
    return [x if isinstance(x, Task) else Task(i, x) for i, x in enumerate(items)]


class _Books:
    """The log a dispatcher keeps, and the answers the driver polls while a run goes on."""

    def _open_books(self) -> None:
        self.events: list[Event] = []
        self.told_done: dict[Any, int] = {}
        self.stopped = False

    def _log(self, kind: str, worker: Any = None, task: Any = None, note: str = "") -> None:
        self.events.append(Event(kind, worker, task, time.time(), note))
        if kind == "done":
            self.told_done[worker] = self.told_done.get(worker, 0) + 1

    def books(self) -> list[Event]:
        return list(self.events)

    def told_done_twice(self) -> list[Any]:
        """Workers that asked again after being told DONE (their loop did not end on DONE)."""
        return [w for w, n in self.told_done.items() if n > 1]

    def completed(self, task_id: Any) -> None:
        """Called by the sink once it stored ``task_id``'s result (before the worker's ``add`` returns)."""
        self._log("stored", task=task_id)

    def stop(self) -> None:
        self.stopped = True

    def ping(self) -> float:
        return time.time()


class Dispatcher(_Books):
    """Hands out tasks (``range(n)`` for a count, or an enumeration of inputs) with leases.

    ``next_task(worker_id)`` returns a :class:`Task` or :data:`DONE`. A worker
    asks only after it handed its previous result on, so asking also ends its
    previous lease. ``requeue(worker_id)`` puts a dead worker's task back.
    """

    def __init__(self, inputs: int | Iterable[Any]) -> None:
        self.queue = deque(_tasks(inputs))
        self.total = len(self.queue)
        self.leases: dict[Any, Task] = {}
        self.stored: set[Any] = set()
        self.handed = self.requeued = 0
        self._open_books()

    def next_task(self, worker_id: Any) -> Task | _Done:
        if self.stopped:
            raise RunStopped("the run was stopped by the driver")
        held = self.leases.pop(worker_id, None)
        if held is not None and held.id not in self.stored:
            self._log("early", worker_id, held.id)
        if not self.queue:
            self._log("done", worker_id)
            return DONE
        task = self.queue.popleft()
        self.leases[worker_id] = task
        self.handed += 1
        self._log("give", worker_id, task.id)
        return task

    def completed(self, task_id: Any) -> None:
        self.stored.add(task_id)
        super().completed(task_id)

    def requeue(self, worker_id: Any) -> list[Any]:
        """Give the task leased to ``worker_id`` (found dead) to the next worker who asks."""
        task = self.leases.pop(worker_id, None)
        self._log("requeue", worker_id, task.id if task is not None else None)
        if task is None:
            return []
        self.queue.appendleft(task)
        self.requeued += 1
        return [task.id]

    def leased(self) -> dict[Any, Any]:
        return {w: t.id for w, t in self.leases.items()}

    def where(self, task_id: Any) -> tuple[str, Any]:
        """("stored" | "leased" | "queued" | "gone", worker or None): where one task is now."""
        if task_id in self.stored:
            return "stored", None
        for worker, task in self.leases.items():
            if task.id == task_id:
                return "leased", worker
        return ("queued", None) if any(t.id == task_id for t in self.queue) else ("gone", None)

    def status(self) -> dict[str, int]:
        return dict(total=self.total, queued=len(self.queue), leased=len(self.leases), handed=self.handed,
                    requeued=self.requeued)

    def reset(self, inputs: int | Iterable[Any]) -> None:
        """Start over with new inputs (reusing the actor saves starting a process)."""
        self.__init__(inputs)  # type: ignore[misc]


def _describe(answer: Any) -> str:
    if isinstance(answer, (list, tuple)):
        return f"{type(answer).__name__} of {len(answer)}"
    if isinstance(answer, Task):
        return "Task not given"
    text = repr(answer)
    return f"{type(answer).__name__} {text[:60]}"


class DispatcherProxy(_Books):
    """Stands in front of a dispatcher actor someone else wrote, passing questions on and keeping the books.

    Workers and the sink talk to the proxy; it asks the real dispatcher
    (``inner``) and checks each answer is one of the tasks it was given, or DONE.
    """

    def __init__(self, inner: Any = None, tasks: Sequence[Task] = (), timeout: float = 30.0) -> None:
        self.inner, self.timeout = inner, timeout
        self.given = {t.id: t for t in tasks}
        self._open_books()

    def next_task(self, worker_id: Any) -> Task | _Done:
        import ray

        if self.stopped:
            raise RunStopped("the run was stopped by the driver")
        try:
            answer = ray.get(self.inner.next_task.remote(worker_id), timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            self._log("error", worker_id, note=f"TimeoutError: next_task did not answer within {self.timeout:g} s")
            raise DispatcherFailed("the dispatcher did not answer") from None
        except Exception as error:  # the dispatcher's own code raised
            cause = getattr(error, "cause", None)
            shown = cause if isinstance(cause, BaseException) else error
            first = (str(shown).strip().splitlines() or [""])[0][:160]
            self._log("error", worker_id, note=f"{type(shown).__name__}: {first}")
            raise DispatcherFailed("the dispatcher raised") from None
        if answer is DONE:
            self._log("done", worker_id)
            return DONE
        if isinstance(answer, Task) and self.given.get(answer.id) == answer:
            self._log("give", worker_id, answer.id)
            return answer
        self._log("bad", worker_id, note=_describe(answer))
        raise DispatcherFailed(f"next_task answered {_describe(answer)}, not a Task or DONE")

    def reset(self, inner: Any, tasks: Sequence[Task], timeout: float = 30.0) -> None:
        self.__init__(inner, tasks, timeout)  # type: ignore[misc]


class PullWorker:
    """The course's worker: get a task, run it, hand the result on and wait for it to be stored, until DONE.

    It waits for the sink *before* asking for more: asking ends the lease, so
    a worker that died in between would otherwise lose a result nobody will
    recompute. ``worker_id`` in :meth:`run` overrides the id it was made with.
    """

    def __init__(self, worker_id: Any) -> None:
        self.worker_id = worker_id

    def run(self, dispatcher: Any, collector: Any, work: Callable[[Any], Any], worker_id: Any = None) -> int:
        import ray

        me = self.worker_id if worker_id is None else worker_id
        done = 0
        while True:
            task = ray.get(dispatcher.next_task.remote(me))
            if task is DONE:
                return done
            ray.get(collector.add.remote(task.id, work(task.payload)))
            done += 1
