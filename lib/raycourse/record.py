"""What the learner's kernel asked of Ray, and when each cell ran: the evidence checks read.

Why a journal: Ray records what its tasks did (when each ran, where, for whom;
see :mod:`raycourse.timing`), but not what the *driver* did with them: which
remote function object a task came from, which refs went into ``ray.get``
and what came back, what was submitted before the driver first waited. Those
facts decide whether an answer is right (did these values come from these
tasks? was everything submitted before the first wait?) and none of them
depends on how fast or busy the machine is.

:func:`raycourse.hooks.install` (called by :func:`raycourse.start`) wraps ``ray.get``,
``ray.wait``, ``ray.put`` and the ``_remote`` methods of remote functions,
actor classes and actor methods. Each wrapper calls Ray unchanged and then
appends a small record: ids, times, and summaries of small values. It never
keeps an ``ObjectRef``, an actor handle or a returned value alive, so object
lifetimes, actor lifetimes and the object store behave exactly as without it.

In IPython, :func:`raycourse.hooks.watch_cells` registers cell events: every record carries
the number of the cell run it happened in, and :class:`CellRun` remembers
which names each cell (re)assigned. A check then finds "the cell that last
set ``results``" and reads what that run did, however often or in whatever
order the learner ran the cells. Outside IPython (tests), :func:`cell` marks
a block of code as one cell run.

:func:`scope` collects the records made while a check calls the learner's own
functions; :func:`paused` hides a check's own Ray calls.
"""
from __future__ import annotations

import contextlib
import itertools
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

MAX_RECORDS = 50_000  # a long kernel session keeps the most recent records
MAX_ITEMS = 256  # items summarised per argument list or returned list
_SIMPLE = (bool, int, float, str, bytes, type(None))

# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """One ``.remote()`` call made by the driver: a task, an actor creation, or an actor method call."""

    seq: int
    cell: int  # the cell run (or scope, negative) it happened in; 0 = outside any
    time: float  # time.time() right after Ray accepted it
    kind: str  # "task" | "actor" | "method"
    target: Any  # the RemoteFunction or ActorClass object (kept: never a handle), None for methods
    name: str  # the function's, class's or "Class.method" name
    task_ids: tuple[str, ...]  # the tasks whose results the returned refs stand for
    object_ids: tuple[str, ...]
    actor_id: str = ""  # the actor created, or the actor called
    args: tuple[Any, ...] = ()  # summaries (see summarize), positional then keyword values
    kwargs: tuple[str, ...] = ()  # names of the keyword arguments, aligned with the end of args
    options: Mapping[str, Any] = field(default_factory=dict)  # .options()/decorator overrides given at the call
    main_thread: bool = True


@dataclass(frozen=True)
class Fetch:
    """One ``ray.get`` call: which refs, when it started and returned, and what came back."""

    seq: int
    cell: int
    start: float
    end: float
    task_ids: tuple[str, ...]  # one per ref, in the order given
    object_ids: tuple[str, ...]
    values: tuple[Any, ...] | None  # summaries, one per ref; None if it raised
    value_ids: tuple[int, ...]  # id() of each returned value (identity evidence while it is alive)
    result_id: int  # id() of the returned list (or single value)
    single: bool  # ray.get(ref) rather than ray.get([refs])
    error: str = ""
    timeout: float | None = None


@dataclass(frozen=True)
class Wait:
    """One ``ray.wait`` call."""

    seq: int
    cell: int
    start: float
    end: float
    task_ids: tuple[str, ...]
    ready: tuple[str, ...]  # task ids of the refs returned as ready
    num_returns: int
    timeout: float | None


@dataclass(frozen=True)
class Put:
    """One ``ray.put`` call."""

    seq: int
    cell: int
    time: float
    object_id: str
    type_name: str
    nbytes: int
    value_id: int


@dataclass
class CellRun:
    """One execution of a notebook cell (or of a :func:`cell` block in tests)."""

    number: int
    source: str
    start: float
    cell_id: str = ""
    end: float | None = None
    assigned: frozenset[str] = frozenset()  # names bound to a new object by this run
    first_seq: int = 0
    last_seq: int = 0
    failed: bool = False
    error: str = ""  # "TypeError: ..." when the cell stopped with an exception


# --- value summaries ---------------------------------------------------------------------------


def _is_ref(value: Any) -> bool:
    import ray

    return isinstance(value, ray.ObjectRef)


def summarize(value: Any, depth: int = 0) -> Any:
    """A small, plain description of ``value`` that keeps nothing alive.

    * ``("ref", object id, task id)`` for an ObjectRef;
    * ``("actor", actor id)`` for an actor handle;
    * ``("value", v)`` for numbers, short strings, None;
    * ``("list", [...])`` / ``("tuple", [...])`` / ``("dict", {...})`` for small containers (summarised inside);
    * ``("array", shape, dtype, id)`` for numpy arrays;
    * ``("object", type name, id)`` for anything else.
    """
    import ray.actor

    if _is_ref(value):
        return ("ref", value.hex(), value.task_id().hex())
    if isinstance(value, ray.actor.ActorHandle):
        return ("actor", value._actor_id.hex())
    if isinstance(value, _SIMPLE):
        if isinstance(value, (str, bytes)) and len(value) > 200:
            return ("object", type(value).__name__, witness(value))
        return ("value", value)
    if depth < 3 and isinstance(value, (list, tuple)) and len(value) <= MAX_ITEMS:
        return (type(value).__name__ if type(value) in (list, tuple) else "list",
                [summarize(v, depth + 1) for v in value])
    if depth < 3 and type(value) is dict and len(value) <= MAX_ITEMS:
        return ("dict", {str(k): summarize(v, depth + 1) for k, v in value.items()})
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        return ("array", tuple(shape), str(value.dtype), witness(value))
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return ("value", value.item())
    except ImportError:  # pragma: no cover - numpy ships with the course
        pass
    return ("object", type(value).__name__, witness(value))


# id() is identity evidence only while the object lives: a freed object's id is soon reused by a new
# one (a board the learner builds can land where a fetched board was). So every recorded id is also
# witnessed: a weak reference (it dies with its object) and the time the object was first recorded.
# A record names the object at its id only if that object was already witnessed when the record was made.
_WITNESSED: dict[int, tuple[Any, float]] = {}
_STAMP: list[float | None] = [None]  # the time of the record being made, while it is made (see :func:`stamped`)


@contextlib.contextmanager
def stamped(at: float) -> Iterator[None]:
    """Objects first witnessed inside this block count as recorded at ``at`` (the record's own time)."""
    _STAMP[0] = at
    try:
        yield
    finally:
        _STAMP[0] = None


def witness(value: Any) -> int:
    """``id(value)``, remembered with a weak reference where the type allows one (it keeps nothing alive)."""
    key = id(value)
    held = _WITNESSED.get(key)
    if held is None or held[0]() is not value:
        try:
            ref = weakref.ref(value, lambda dead, key=key: _WITNESSED.pop(key, None)
                              if _WITNESSED.get(key, (None,))[0] is dead else None)
        except TypeError:  # lists, tuples, ints... cannot be weakly referenced: their id alone is the evidence
            return key
        _WITNESSED[key] = (ref, _STAMP[0] or time.time())
    return key


def is_recorded(value: Any, value_id: int, at: float) -> bool:
    """Whether a record made at time ``at`` with ``value_id`` names ``value`` itself, not an older object that
    had the same id before it was freed."""
    if id(value) != value_id:
        return False
    held = _WITNESSED.get(value_id)
    if held is None:
        try:
            weakref.ref(value)
        except TypeError:
            return True  # no weak reference possible: the id is all there is
        return False
    return held[0]() is value and held[1] <= at


def plain(summary: Any) -> Any:
    """The plain value a summary stands for, where it holds one (``("value", 3)`` -> 3); else the summary."""
    if not isinstance(summary, tuple) or not summary:
        return summary
    kind = summary[0]
    if kind == "value":
        return summary[1]
    if kind == "list":
        return [plain(v) for v in summary[1]]
    if kind == "tuple":
        return tuple(plain(v) for v in summary[1])
    if kind == "dict":
        return {k: plain(v) for k, v in summary[1].items()}
    return summary


def refs_in(summary: Any) -> list[tuple[str, str]]:
    """(object id, task id) of every ref inside a summary, in order (refs nested in lists included)."""
    if not isinstance(summary, tuple) or not summary:
        return []
    if summary[0] == "ref":
        return [(summary[1], summary[2])]
    if summary[0] in ("list", "tuple"):
        return [r for v in summary[1] for r in refs_in(v)]
    if summary[0] == "dict":
        return [r for v in summary[1].values() for r in refs_in(v)]
    return []


# --- the journal -------------------------------------------------------------------------------


class Journal:
    """The records of one process; see the module docstring."""

    def __init__(self) -> None:
        self.records: deque[Any] = deque(maxlen=MAX_RECORDS)
        self.cells: list[CellRun] = []
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._current_cell = 0
        self._scopes = itertools.count(-1, -1)
        self._scope: int | None = None  # while a check runs the learner's code, every thread records here
        self._before: dict[str, int] = {}
        self.ever_assigned: set[str] = set()

    # where a record belongs
    def _where(self) -> int | None:
        """The cell or scope number for a new record, or None when recording is paused."""
        if getattr(self._local, "paused", 0):
            return None
        return self._scope if self._scope is not None else self._current_cell

    def next_seq(self) -> int:
        return next(self._seq)

    def add(self, record: Any) -> None:
        with self._lock:
            self.records.append(record)

    # cell runs
    def begin_cell(self, source: str, namespace: Mapping[str, Any] | None, cell_id: str = "") -> CellRun:
        number = len(self.cells) + 1
        run = CellRun(number, source, time.time(), cell_id=cell_id, first_seq=next(self._seq))
        self._before = _identities(namespace) if namespace is not None else {}
        with self._lock:
            self.cells.append(run)
            self._current_cell = number
        return run

    def end_cell(self, namespace: Mapping[str, Any] | None, failed: bool = False, error: str = "") -> CellRun | None:
        if not self.cells or self.cells[-1].end is not None:
            return None
        run = self.cells[-1]
        after = _identities(namespace) if namespace is not None else {}
        run.assigned = frozenset(n for n, i in after.items() if self._before.get(n) != i)
        self.ever_assigned |= run.assigned
        run.end, run.last_seq, run.failed, run.error = time.time(), next(self._seq), failed, error
        with self._lock:
            self._current_cell = 0
        return run

    def last_cell_setting(self, name: str, before: int | None = None) -> CellRun | None:
        """The most recent finished cell run that (re)assigned ``name`` (before cell run ``before``)."""
        for run in reversed(self.cells):
            if before is not None and run.number >= before:
                continue
            if run.end is not None and name in run.assigned:
                return run
        return None

    def in_cell(self, number: int) -> list[Any]:
        """Every record made during cell run (or scope) ``number``, in order."""
        return [r for r in list(self.records) if r.cell == number]

    def new_scope(self) -> int:
        return next(self._scopes)


def _identities(namespace: Mapping[str, Any]) -> dict[str, int]:
    return {name: id(value) for name, value in list(namespace.items()) if not name.startswith("_")}


JOURNAL = Journal()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Hide the Ray calls made inside from the journal (a check's own probing)."""
    local = JOURNAL._local
    local.paused = getattr(local, "paused", 0) + 1
    try:
        yield
    finally:
        local.paused -= 1


@contextlib.contextmanager
def scope() -> Iterator[int]:
    """Record what runs inside (in every thread) under a fresh negative number, yielded, even within :func:`paused`.

    A check calls the learner's function inside a scope, then reads that scope's records.
    """
    local = JOURNAL._local
    previous, paused_before = JOURNAL._scope, getattr(local, "paused", 0)
    JOURNAL._scope, local.paused = JOURNAL.new_scope(), 0  # the learner's code runs here: record it
    try:
        yield JOURNAL._scope
    finally:
        JOURNAL._scope, local.paused = previous, paused_before


@contextlib.contextmanager
def cell(namespace: Mapping[str, Any] | None = None, source: str = "") -> Iterator[CellRun]:
    """Mark the code inside as one cell run (for tests and scripts; IPython cells are recorded by themselves)."""
    run = JOURNAL.begin_cell(source, namespace)
    failed, error = True, ""
    try:
        yield run
        failed = False
    except Exception as problem:
        error = describe_error(problem)
        raise
    finally:
        JOURNAL.end_cell(namespace, failed=failed, error=error)


def describe_error(error: BaseException) -> str:
    """``"TypeError: ..."`` in one short line; for a task's failure, the learner's own exception inside it."""
    cause = getattr(error, "cause", None)  # ray.exceptions.RayTaskError carries the task's exception
    shown = cause if isinstance(cause, BaseException) else error
    text = str(shown).strip().splitlines()
    line = text[-1] if text else ""
    return f"{type(shown).__name__}: {line}"[:200]
