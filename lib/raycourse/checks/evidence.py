"""Evidence every lesson's checks share: the learner's run, their tasks, what their driver fetched.

Three sources, never a wall-clock window alone:

* **The run.** :func:`run_of` finds the latest cell run that (re)assigned an
  answer's name and returns a :class:`Run`: what the driver asked of Ray in
  that run (:mod:`raycourse.record`). :func:`call` runs the learner's own
  function on inputs the check chose, and returns the :class:`Run` of that call.
* **The tasks.** :meth:`Run.tasks` finds the tasks a remote function, actor
  class or actor handle made in that run: by the object the learner passed, not
  by a name, so ``ray.remote(lambda ...)``, a renamed function or
  ``.options(name=...)`` are all found, and a helper task is not counted.
  Their intervals, submission times and parents come from Ray's own records
  (:mod:`raycourse.timing`).
* **The values.** :meth:`Run.fetched` says what ``ray.get`` returned for
  which task, so a check can tell values that came from the tasks from values
  computed (or typed) in the driver next to decoy tasks.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from .. import record, timing
from ..grading import Incorrect, NotAttempted
from ..record import JOURNAL, CellRun, Fetch, Put, Submission, Wait

# --- what things are --------------------------------------------------------------------------


def is_ref(value: Any) -> bool:
    import ray

    return isinstance(value, ray.ObjectRef)


def is_remote_function(fn: Any) -> bool:
    import ray.remote_function

    return isinstance(fn, ray.remote_function.RemoteFunction)


def is_actor_class(cls: Any) -> bool:
    import ray.actor

    return isinstance(cls, ray.actor.ActorClass)


def is_actor(obj: Any) -> bool:
    import ray.actor

    return isinstance(obj, ray.actor.ActorHandle)


def actor_id(handle: Any) -> str:
    return handle._actor_id.hex()


def holds_ref(value: Any, depth: int = 0) -> bool:
    """True if ``value`` is an ObjectRef or holds one in a list/tuple/dict (a few levels deep)."""
    if is_ref(value):
        return True
    if depth > 3:
        return False
    if isinstance(value, dict):
        return any(holds_ref(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_ref(v, depth + 1) for v in value)
    return False


def require_remote(fn: Any, name: str, computed: bool = False) -> None:
    """Raise unless ``fn`` is a remote function.

    ``computed`` tells whether the learner's values are already right: then the
    starter code simply ran in the notebook, and the exercise is not attempted.
    """
    if is_remote_function(fn):
        return
    if callable(fn) and computed:
        raise NotAttempted(f"`{name}` still runs in the notebook. Decorate it with @ray.remote and call {name}.remote(...).")
    if callable(fn):
        raise Incorrect(f"`{name}` is a plain Python function: decorate it with @ray.remote so Ray can run it as a task.")
    raise Incorrect(f"`{name}` should be a function decorated with @ray.remote, got {type(fn).__name__}.")


def options(thing: Any) -> dict[str, Any]:
    """The options a remote function or actor class was declared with (``@ray.remote(...)``)."""
    return dict(getattr(thing, "_default_options", None) or {})


# --- plain values -----------------------------------------------------------------------------


def plain_list(value: Any) -> list[Any] | None:
    """``value`` as a list of plain Python values (a list, tuple, range or numpy array); None if it is not one."""
    if value is None or isinstance(value, (str, bytes, dict)) or is_ref(value):
        return None
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and hasattr(value, "shape"):
        value = tolist()
    try:
        items = list(value)
    except TypeError:
        return None
    return [item.item() if hasattr(item, "item") and hasattr(item, "dtype") and getattr(item, "shape", None) == ()
            else item for item in items]


def same_values(actual: Any, expected: Sequence[Any]) -> bool:
    """``actual`` holds exactly ``expected`` (as plain values; a numpy array or tuple is fine)."""
    items = plain_list(actual)
    return items is not None and _equal(items, list(expected))


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # an array compared with a list, say
        return False


def expect_values(actual: Any, expected: Sequence[Any], what: str = "results") -> list[Any]:
    """``actual`` as a list equal to ``expected``, or :class:`Incorrect` naming the usual slip.

    ObjectRefs instead of values (forgot ``ray.get``), a single ObjectRef for the
    whole list, the wrong length, the wrong values. A numpy array or tuple is fine.
    """
    if is_ref(actual):
        raise Incorrect(f"`{what}` is an ObjectRef (a future). Call ray.get(...) on it to fetch the values.")
    if actual is None or actual is Ellipsis:
        raise NotAttempted(f"`{what}` is not set yet.")
    values = plain_list(actual)
    if values is None:
        raise Incorrect(f"`{what}` should be a list of {len(expected)} values, got {type(actual).__name__}.")
    if any(is_ref(v) for v in values):
        raise Incorrect(f"`{what}` holds ObjectRefs, not values. Call ray.get(list_of_refs) once, on the whole list, "
                        "to fetch them.")
    if len(values) != len(expected):
        raise Incorrect(f"`{what}` has {len(values)} items; expected {len(expected)}.")
    if not _equal(values, list(expected)):
        raise Incorrect(f"`{what}` is {short(values)}; expected {short(list(expected))}.")
    return values


def short(value: Any, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters for a hint."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def number(x: float, digits: int = 0) -> str:
    """A number with thousands separators: ``number(2000000)`` -> ``"2,000,000"``."""
    return f"{x:,.{digits}f}"


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``plural(1, "task")`` -> ``"1 task"``, ``plural(3, "task")`` -> ``"3 tasks"``."""
    return f"{count:,} {noun if count == 1 else plural_form or noun + 's'}"


# --- a run: what the driver did ---------------------------------------------------------------


@dataclass
class Run:
    """What one cell run (or one call a check made) asked of Ray, with Ray's records of its tasks."""

    number: int
    records: list[Any]
    cell: CellRun | None = None

    # --- what the driver did
    def submissions(self, of: Any = None, kind: str | None = None) -> list[Submission]:
        """``.remote()`` calls made through ``of`` (a remote function, actor class, actor handle, or None for all)."""
        found = [r for r in self.records if isinstance(r, Submission) and (kind is None or r.kind == kind)]
        return [r for r in found if of is None or made_by(r, of, self.records)]

    def fetches(self) -> list[Fetch]:
        return [r for r in self.records if isinstance(r, Fetch)]

    def waits(self) -> list[Wait]:
        return [r for r in self.records if isinstance(r, Wait)]

    def puts(self) -> list[Put]:
        return [r for r in self.records if isinstance(r, Put)]

    def task_ids(self, of: Any = None, kind: str | None = None) -> list[str]:
        return [t for s in self.submissions(of, kind) for t in s.task_ids]

    def tasks(self, of: Any = None, timeout: float = 20.0) -> list[timing.Interval]:
        """Ray's records of the tasks (or actor method calls) submitted through ``of`` in this run."""
        with record.paused():
            return timing.wait_for(self.task_ids(of), timeout=timeout, grace=min(timeout, 6.0))

    def fetched(self, task_ids: Iterable[str] | None = None) -> dict[str, Any]:
        """task id -> the plain value ``ray.get`` returned for it in this run (the last fetch wins)."""
        wanted = set(task_ids) if task_ids is not None else None
        values: dict[str, Any] = {}
        for fetch in self.fetches():
            if fetch.values is None:
                continue
            for task, summary in zip(fetch.task_ids, fetch.values):
                if task and (wanted is None or task in wanted):
                    values[task] = record.plain(summary)
        return values

    def fetched_from(self, of: Any) -> list[tuple[Submission, Any]]:
        """(submission, value) for every task of ``of`` whose value ``ray.get`` returned in this run, in fetch order.

        The tasks may have been submitted in an earlier cell (refs kept in a variable);
        a task fetched twice counts once, at its first fetch.
        """
        made = {t: s for s in submissions_anywhere(of) for t in s.task_ids}
        seen: set[str] = set()
        found = []
        for fetch in self.fetches():
            if fetch.values is None:
                continue
            for task, summary in zip(fetch.task_ids, fetch.values):
                if task in made and task not in seen:
                    seen.add(task)
                    found.append((made[task], record.plain(summary)))
        return found

    @property
    def source(self) -> str:
        return self.cell.source if self.cell is not None else ""

    def blocking_before(self, task_ids: Iterable[str]) -> list[Fetch | Wait]:
        """``ray.get``/``ray.wait`` calls on some of ``task_ids`` made before the last of them was submitted.

        Empty when the driver submitted every task before it waited for any: the
        shape of "all at once", however slowly the machine ran them. A ``ray.get``
        inside the submitting loop (one task at a time) shows up here.
        """
        wanted = set(task_ids)
        seqs = [s.seq for s in self.submissions() if wanted & set(s.task_ids)]
        if not seqs:
            return []
        last = max(seqs)
        return [r for r in self.fetches() + self.waits()
                if r.seq < last and wanted & set(r.task_ids) and not (isinstance(r, Wait) and r.timeout == 0)]

    @property
    def start(self) -> float | None:
        return self.cell.start if self.cell is not None else None


def made_by(submission: Submission, thing: Any, records: Sequence[Any] = ()) -> bool:
    """Did ``submission`` come from ``thing``: a remote function, an actor class (its methods too), or a handle?"""
    import ray.actor

    if thing is None:
        return False
    if submission.target is thing:
        return True
    if isinstance(thing, ray.actor.ActorHandle):
        return submission.kind == "method" and submission.actor_id == actor_id(thing)
    if isinstance(thing, ray.actor.ActorClass) and submission.kind == "method":
        created = {r.actor_id for r in list(JOURNAL.records) if isinstance(r, Submission) and r.kind == "actor"
                   and r.target is thing}
        return submission.actor_id in created
    if isinstance(thing, str):
        return submission.name == thing or submission.name.endswith("." + thing)
    return False


def submissions_anywhere(of: Any) -> list[Submission]:
    """Every submission through ``of`` the journal holds, whatever cell made it."""
    records = list(JOURNAL.records)
    return [r for r in records if isinstance(r, Submission) and made_by(r, of, records)]


def args_of(submission: Submission) -> list[Any]:
    """The plain values of a submission's arguments (refs and handles stay summaries)."""
    return [record.plain(a) for a in submission.args]


_ELSEWHERE = {
    "threads": ("threading", "ThreadPool", "Thread(", "concurrent.futures", "ThreadPoolExecutor"),
    "processes": ("multiprocessing", "ProcessPool", "Pool(", "os.fork", "subprocess"),
    "asyncio": ("asyncio", "await "),
}


def parallel_without_ray(source: str) -> str | None:
    """Which non-Ray parallelism a cell's code uses ("threads", "processes", "asyncio"), if any."""
    if "ray.util.multiprocessing" in source:
        return None
    for kind, words in _ELSEWHERE.items():
        if any(word in source for word in words):
            return kind
    return None


def run_of(name: str, namespace: Any = None) -> Run:
    """The :class:`Run` of the latest finished cell run that (re)assigned ``name``.

    Outside IPython, with no cell recorded, everything recorded outside any cell.
    """
    run = JOURNAL.last_cell_setting(name)
    if run is None:
        if not JOURNAL.cells:
            return Run(0, JOURNAL.in_cell(0))
        raise NotAttempted(f"`{name}` was not set by any cell run since Ray started: run the exercise's cell first.")
    return Run(run.number, JOURNAL.in_cell(run.number), run)


def call(fn: Callable[..., Any], *args: Any, what: str, timeout: float | None = None, **kwargs: Any) -> tuple[Any, Run]:
    """Call the learner's ``fn(*args, **kwargs)`` as the check's experiment; return its value and its :class:`Run`.

    What it raises becomes :class:`Incorrect` naming the call (``what``, e.g.
    ``"estimate_pi_parallel(2,000,000, 250,000)"``). With ``timeout``, a call
    that has not returned by then is reported as never returning.
    """
    value, error, run = call_keeping_run(fn, *args, what=what, timeout=timeout, **kwargs)
    if error is not None:
        raise Incorrect(learner_error(what, error)) from None
    return value, run


def call_keeping_run(fn: Callable[..., Any], *args: Any, what: str, timeout: float | None = None,
                     **kwargs: Any) -> tuple[Any, BaseException | None, Run]:
    """Like :func:`call`, but an error is returned with the run: what the code did before it raised (a tree
    half built, weights half sent) often names the mistake better than the error does."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as error:  # the learner's code: anything can happen
            outcome["error"] = error

    with record.scope() as number:
        if timeout is None:
            target()
        else:
            thread = threading.Thread(target=target, daemon=True, name="raycourse-check-call")
            thread.start()
            thread.join(timeout)
            if thread.is_alive():
                raise Incorrect(f"`{what}` did not return within {timeout:g} s: does a loop never end, or wait for "
                                "something that never comes?")
    return outcome.get("value"), outcome.get("error"), Run(number, JOURNAL.in_cell(number))


def learner_error(what: str, error: BaseException) -> str:
    """A hint for an exception the learner's code raised: its type and first line, and the usual causes."""
    cause = getattr(error, "cause", None)
    shown = cause if isinstance(cause, BaseException) else error
    first = (str(shown).strip().splitlines() or [""])[0]
    if len(first) > 200:
        first = first[:197] + "..."
    text = f"`{what}` raised {type(shown).__name__}" + (f": {first}" if first else "")
    if "cannot be called directly" in str(shown):
        text += ". Call remote functions and actor methods with .remote(...)."
    elif "ObjectRef" in str(shown) and isinstance(shown, TypeError):
        text += ". A value was still an ObjectRef: ray.get it first (or pass it to a task, which resolves it)."
    return text


# --- judging shapes -----------------------------------------------------------------------------


def cpu_slots() -> int:
    """Logical CPUs the cluster has (what "as parallel as possible" is judged against)."""
    import ray

    with record.paused():
        return int(ray.cluster_resources().get("CPU", 1))


def concurrency_allowed(count: int, per_task: float = 1.0) -> int:
    """How many of ``count`` tasks reserving ``per_task`` CPUs each could run at once here."""
    slots = cpu_slots()
    fits = int(slots // per_task) if per_task > 0 else count
    return max(1, min(count, fits))
