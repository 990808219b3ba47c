"""Report each verdict to the workshop's class board: who is on which exercise, nothing more.

In a workshop the instructor runs ``raycourse-workshop``, which creates one
detached, named actor on the cluster (:mod:`raycourse.tools.board`) and serves
it as a web page. A learner whose kernel has joined that cluster (``RAY_ADDRESS``
set, so ``raycourse.start()`` joined it) and who has chosen a display name::

    export RAYCOURSE_LEARNER="Ada L."      # before `make lab`; self-declared, shown to the instructor

then sends, after each ``raycourse.check(...)``, exactly ``(learner, exercise,
status, attempt, time)``: never code, outputs or messages. Without the name, or
without ``RAY_ADDRESS``, nothing is sent.

A check must never wait for, or break because of, the board. So the listener
only puts the record on a small queue (dropping it when the queue is full); one
daemon thread sends it with a fire-and-forget actor call (no ``ray.get``), hidden
from the driver journal (``record.paused``) and from Ray's task records
(``enable_task_events=False``), so no check ever counts it among the learner's
tasks. When there is no board the thread remembers that for half a minute and
drops reports silently. :func:`status` says what became of the latest report,
for a learner who wonders whether the instructor sees them.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

from .grading import Verdict, listen

NAME_VARIABLE = "RAYCOURSE_LEARNER"
BOARD_NAME = "class_board"
BOARD_NAMESPACE = "raycourse"
FIELDS = ("learner", "exercise", "status", "attempt", "time")
LOOKUP_AGAIN_S = 30.0  # after "no board here", ask the cluster again this much later
QUEUE_SIZE = 256

_queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
_attempts: dict[str, int] = {}
_link: dict[str, Any] = {"job": None, "handle": None, "absent_until": 0.0, "last": None, "note": ""}
_thread: threading.Thread | None = None
_lock = threading.Lock()


def learner_name() -> str:
    """The display name the learner chose (``RAYCOURSE_LEARNER``), stripped; empty when unset."""
    return os.environ.get(NAME_VARIABLE, "").strip()


def enabled() -> bool:
    """Reports go out only from a kernel that joined a cluster (``RAY_ADDRESS``) under a chosen name."""
    return bool(learner_name()) and bool(os.environ.get("RAY_ADDRESS", "").strip())


def record_of(verdict: Verdict, name: str, attempt: int, when: float) -> dict[str, Any]:
    """The one thing the board ever receives about a verdict."""
    return {"learner": name, "exercise": verdict.exercise, "status": verdict.status, "attempt": attempt,
            "time": when}


def report(verdict: Verdict) -> None:
    """The grading listener: queue this verdict's record for the board, never waiting."""
    if not enabled():
        return
    with _lock:
        _attempts[verdict.exercise] = _attempts.get(verdict.exercise, 0) + 1
        attempt = _attempts[verdict.exercise]
    try:
        _queue.put_nowait(record_of(verdict, learner_name(), attempt, time.time()))
    except queue.Full:  # the board is far behind (or gone): losing a report beats slowing a check
        return
    _ensure_sender()


def _ensure_sender() -> None:
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_send_forever, name="raycourse-classboard", daemon=True)
            _thread.start()


def _send_forever() -> None:
    while True:
        item = _queue.get()
        try:
            send(item)
        except Exception as error:  # a dying driver, a board that vanished: the learner's work goes on
            _link["note"] = f"the last report could not be sent ({type(error).__name__})"
            _link["handle"] = None


def _board() -> Any:
    """The board's actor handle for this driver's job, or None (remembered for a while) when there is none."""
    import ray

    job = ray.get_runtime_context().get_job_id()
    if _link["job"] != job:
        _link.update(job=job, handle=None, absent_until=0.0)
    if _link["handle"] is None and time.monotonic() >= _link["absent_until"]:
        try:
            _link["handle"] = ray.get_actor(BOARD_NAME, namespace=BOARD_NAMESPACE)
        except ValueError:  # no such actor: this cluster has no class board
            _link["absent_until"] = time.monotonic() + LOOKUP_AGAIN_S
            _link["note"] = "this cluster has no class board"
    return _link["handle"]


def send(item: dict[str, Any]) -> Any:
    """Send one record to the board, fire and forget; returns the reply's ObjectRef (or None: no board, no Ray)."""
    import ray

    from . import record

    if not ray.is_initialized():
        return None
    with record.paused():
        handle = _board()
        if handle is None:
            return None
        ref = handle.report.options(enable_task_events=False).remote(item)
    _link["last"], _link["note"] = ref, ""
    return ref


def status(timeout: float = 5.0) -> str:
    """One sentence on what became of this kernel's latest report (for a learner who wonders)."""
    if not learner_name():
        return f"Not reporting: set {NAME_VARIABLE} to your name before starting Jupyter (see the README's workshop section)."
    if not os.environ.get("RAY_ADDRESS", "").strip():
        return "Not reporting: this kernel runs its own Ray, not the workshop's cluster (RAY_ADDRESS is not set)."
    ref = _link["last"]
    if ref is None:
        return f"No report sent yet{': ' + _link['note'] if _link['note'] else ''}."
    import ray

    from . import record

    with record.paused():
        ready, _ = ray.wait([ref], timeout=timeout)
        if not ready:
            return "The latest report has not been answered yet: the board is busy or unreachable."
        reply = ray.get(ref)
    if reply.get("ok"):
        return f"The class board has your latest verdict, under the name {learner_name()!r}."
    return f"The class board refused your latest report: {reply.get('reason', 'no reason given')}."


listen(report)

__all__ = ["BOARD_NAME", "BOARD_NAMESPACE", "FIELDS", "NAME_VARIABLE", "enabled", "report", "send", "status"]
