"""Checks for lesson 07 (actors): two counters, a shared logging actor, averaging model actors.

Evidence, never a wall-clock window:

* the journal (:mod:`raycourse.record`): which actor each method call went to,
  what the driver sent before it first waited, what ``ray.get`` returned for
  which call, and which handles each task was given;
* Ray's records (:mod:`raycourse.timing`): which process ran each call, and when;
* for ``average_weights``, a run of the learner's function on model actors the
  check creates itself, with a number of models and layer shapes chosen at
  check time, so no answer can be tuned to the lesson's three models.
"""
from __future__ import annotations

import inspect
import time
from typing import Any, Sequence

import numpy as np

from .. import plots, record, timing
from ..grading import Incorrect, NotAttempted, exercise
from ..record import JOURNAL, Submission
from .evidence import (actor_id, holds_ref, is_actor, is_actor_class, is_remote_function, parallel_without_ray,
                       plain_list, plural, run_of)

# --- actors in the journal (lesson 08 uses these too) --------------------------------------------------------------


def created_from(cls: Any) -> dict[str, Submission]:
    """actor id -> the journal's record of its creation, for every actor made from the class ``cls``."""
    return {r.actor_id: r for r in list(JOURNAL.records)
            if isinstance(r, Submission) and r.kind == "actor" and r.target is cls and r.actor_id}


def calls_on(records: Sequence[Any], actor: str, method: str | None = None) -> list[Submission]:
    """Method calls on ``actor`` (optionally only ``method``) among ``records``, in the order they were sent."""
    return [r for r in records if isinstance(r, Submission) and r.kind == "method" and r.actor_id == actor
            and (method is None or r.name.rsplit(".", 1)[-1] == method)]


def tasks_of(submissions: Sequence[Submission]) -> list[str]:
    return [t for s in submissions for t in s.task_ids]


def recorded(task_ids: Sequence[str]) -> list[timing.Interval]:
    with record.paused():
        return timing.wait_for(task_ids, timeout=20, grace=8)


def bound_arguments(function: Any, submission: Submission, method: bool = False) -> dict[str, Any] | None:
    """A submission's arguments by parameter name, defaults filled in; None if they do not fit ``function``.

    ``method``: ``function`` is an ``__init__`` or method, whose ``self`` the call did not pass.
    """
    positional = len(submission.args) - len(submission.kwargs)
    values = [record.plain(a) for a in submission.args]
    try:
        bound = inspect.signature(function).bind(*([None] if method else []), *values[:positional],
                                                 **dict(zip(submission.kwargs, values[positional:])))
    except (TypeError, ValueError):
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def _ints(value: Any) -> list[int] | None:
    items = plain_list(value)
    if items is None or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        return None
    return [int(v) for v in items]


# --- 07.counters --------------------------------------------------------------------------------

CALLS = 3


def _serial_sketch() -> list[timing.Interval]:
    return plots.sketch([[(k * 0.3, (k + 1) * 0.3) for k in range(CALLS)] for _ in range(2)], name="increment")


@exercise("07.counters", "Two counter actors: each one's calls in order, the two at the same time")
def counters(Counter: Any, counters: Any, results: Any) -> str:
    """Journal: six calls sent before the first wait, values from those calls; Ray: one process per counter."""
    run = run_of("results")
    elsewhere = parallel_without_ray(run.source)
    if not is_actor_class(Counter):
        if elsewhere:
            raise Incorrect(f"You ran the counters with {elsewhere} in the notebook's own process. This exercise is "
                            "about actors: decorate Counter with @ray.remote and call counter.increment.remote().")
        lists = [_ints(r) for r in plain_list(results) or []]
        if lists == [[1, 2, 3], [1, 2, 3]]:
            raise NotAttempted("`Counter` is still a plain class running in the notebook. Decorate it with @ray.remote, "
                               "create two with Counter.remote() and call increment.remote() on each.")
        raise Incorrect("`Counter` should be a class decorated with @ray.remote.")
    if is_actor(counters):
        raise Incorrect("`counters` is a single actor: make a list of two, [Counter.remote(), Counter.remote()].")
    handles = plain_list(counters) if not isinstance(counters, dict) else None
    if handles is None or not handles or not all(is_actor(h) for h in handles):
        raise Incorrect("`counters` should be a list of two actor handles, each made with Counter.remote().")
    if len(handles) != 2:
        raise Incorrect(f"`counters` holds {plural(len(handles), 'actor')}; the exercise asks for two counters.")
    ids = [actor_id(h) for h in handles]
    if ids[0] == ids[1]:
        raise Incorrect("Both entries of `counters` are the same actor: call Counter.remote() twice to get two actors.")
    if not all(i in created_from(Counter) for i in ids):
        raise Incorrect("`counters` were not made from this `Counter` class: run the cell that defines Counter and "
                        "creates the counters again.")
    if holds_ref(results):
        raise Incorrect("`results` holds ObjectRefs, not counts: ray.get the refs (after submitting all six calls).")
    lists = [_ints(r) for r in plain_list(results) or []]
    if len(lists) != 2 or any(v is None or len(v) != CALLS for v in lists):
        raise Incorrect(f"`results` should be two lists of {CALLS} counts, one list per counter.")
    calls = [calls_on(run.records, i, "increment") for i in ids]
    fetched = run.fetched()
    others = [s for s in run.submissions(Counter, kind="actor") if s.actor_id not in ids]
    if all(v == [1] * CALLS for v in lists) and others:
        raise Incorrect(f"Every call returned 1: the cell created {plural(len(others) + 2, 'counter')}, so each call "
                        "went to a brand-new actor and its count was lost. Create the two actors once and call "
                        "increment.remote() on those same handles.")
    if not any(t in fetched for t in tasks_of(calls[0] + calls[1])):
        if calls[0] or calls[1]:
            raise Incorrect("The cell called increment but never fetched what those calls returned: `results` was "
                            "typed or computed in the notebook. Set it from ray.get on the refs.")
        raise Incorrect("No increment call went to the two counters in the cell that set `results`: call "
                        "increment.remote() three times on each of `counters`.")
    if sorted(map(len, calls)) == [0, 2 * CALLS]:
        busy = 0 if calls[0] else 1
        raise Incorrect(f"All six calls went to ONE actor (counter {busy}): call increment.remote() three times on "
                        "each of the two counters.")
    for index, sent in enumerate(calls):
        if len(sent) != CALLS:
            raise Incorrect(f"Counter {index} received {plural(len(sent), 'increment call')} in the cell that set "
                            f"`results`; call it exactly {CALLS} times.")
    task_ids = tasks_of(calls[0] + calls[1])
    spans = recorded(task_ids)
    for index, sent in enumerate(calls):
        returned = [fetched.get(t) for t in tasks_of(sent)]
        if lists[index] != returned:
            raise Incorrect(f"`results[{index}]` is {lists[index]}, but counter {index}'s calls returned {returned}: "
                            "keep the lists ray.get gives you, in the order of the calls.")
        mine = [s for s in spans if s.actor == ids[index]]
        if timing.max_concurrency(mine) > 1:
            raise Incorrect(f"Calls to counter {index} overlapped: it ran several messages at once (max_concurrency?). "
                            "An actor runs its messages one at a time; leave max_concurrency at its default.",
                            evidence=plots.compare(spans, _serial_sketch(), marked=[s.task_id for s in mine]))
        if returned != [1, 2, 3]:
            if returned[0] > 1:
                raise Incorrect(f"Counter {index} started at {returned[0]}: it had been called before this cell. "
                                "Create the counters in the same cell as the calls, so each counts 1, 2, 3.")
            raise Incorrect(f"Counter {index} counted {returned}; each counter should return 1, 2, 3 in the order "
                            "of its calls.")
    if run.blocking_before(task_ids):
        raise Incorrect("The cell waited for a result (ray.get) before it had sent all six calls, so the two counters "
                        "could not work at the same time. Send all six increment.remote() calls first, then ray.get.",
                        evidence=plots.compare(spans, _serial_sketch(), marked=task_ids[-CALLS:]))
    processes = len({s.pid for s in spans if s.pid})
    return (f"Each counter handled its three calls in order, one at a time, in its own process ({processes} processes), "
            "and all six calls were sent before the first wait, so the two counters worked at the same time.")


# --- 07.logging_actor ---------------------------------------------------------------------------


def _steps_of(experiment: Any, submission: Submission) -> int | None:
    """How many steps one experiment task was asked to run: its ``steps`` argument or the default."""
    steps = (bound_arguments(getattr(experiment, "_function", None), submission) or {}).get("steps")
    return int(steps) if isinstance(steps, int) and not isinstance(steps, bool) else None


def _reading(value: Any) -> int | None:
    """The number of messages a reading of the logger shows (a list of messages, or a count)."""
    if isinstance(value, list):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _is_subsequence(values: list[int], of: list[int]) -> bool:
    remaining = iter(of)
    return all(any(v == w for w in remaining) for v in values)


def _read_logger(logger: Any, expected: int | None) -> list[Any]:
    """The logger's messages as the check reads them; log calls are fire-and-forget, so give the last ones time."""
    import ray

    method = getattr(logger, "get_messages", None)
    if method is None:
        raise Incorrect("The logger has no `get_messages` method: keep the Logger class the exercise gives.")
    deadline = time.monotonic() + 10
    while True:
        with record.paused():
            held = list(ray.get(method.remote(), timeout=30) or [])
        if expected is None or len(held) >= expected or time.monotonic() > deadline:
            return held
        time.sleep(0.2)


@exercise("07.logging_actor", "One logging actor shared by parallel experiments, read while they run")
def logging_actor(Logger: Any, experiment: Any, logger: Any, progress: Any, messages: Any) -> str:
    """Journal: one logger handle in every task, tasks sent before waiting, readings fetched; Ray: when they ran."""
    run = run_of("progress")
    elsewhere = parallel_without_ray(run.source)
    if not is_actor_class(Logger) and not is_remote_function(experiment):
        if elsewhere:
            raise Incorrect(f"You ran the experiments with {elsewhere} in the notebook's own process. This exercise is "
                            "about Ray: make Logger an actor and experiment a task.")
        raise NotAttempted("`Logger` and `experiment` still run in the notebook: make Logger an actor and experiment "
                           "a task (both with @ray.remote).")
    if not is_actor_class(Logger):
        raise Incorrect("`Logger` should be a class decorated with @ray.remote, so that one logger is shared by all tasks.")
    if not is_remote_function(experiment):
        raise Incorrect("`experiment` should be a task (@ray.remote), so that the experiments run in parallel.")
    if not is_actor(logger):
        raise Incorrect("`logger` should be the actor handle from Logger.remote() that you pass to the experiments.")
    me = actor_id(logger)
    if me not in created_from(Logger):
        raise Incorrect("`logger` was not made from this `Logger` class: run the exercise's cell again.")
    started = run.submissions(experiment)
    if not started:
        raise Incorrect("No experiment task ran in the cell that set `progress`: start them with experiment.remote(logger, i).")
    if len(started) < 2:
        raise Incorrect("Only one experiment ran: start all three, so that several write to the logger at once.")
    given = [{a[1] for a in s.args if isinstance(a, tuple) and a and a[0] == "actor"} for s in started]
    if not any(given):
        raise Incorrect("The experiment tasks were given no logger. Pass the one `logger` handle to every task "
                        "(experiment.remote(logger, i)); a Logger created inside a task is a separate actor nobody reads.")
    if len(set().union(*given)) > 1:
        raise Incorrect(f"The {len(started)} experiments wrote to {len(set().union(*given))} different loggers: create "
                        "one Logger.remote() and pass that same handle to every task.")
    if set().union(*given) != {me} or not all(given):
        raise Incorrect("Every experiment task must get the same `logger` handle that the driver reads.")
    experiment_ids = tasks_of(started)
    waited = run.blocking_before(experiment_ids)
    if waited:
        raise Incorrect("The experiments ran one after another: the cell waited for one before starting the next. "
                        "Start them all with .remote() first, then read the logger while they run.",
                        evidence=plots.compare(recorded(experiment_ids), _logging_sketch(len(started))))
    steps = [_steps_of(experiment, s) for s in started]
    expected = sum(steps) if all(s is not None for s in steps) else None
    if holds_ref(messages):
        raise Incorrect("`messages` holds an ObjectRef: ray.get(logger.get_messages.remote()) returns the list itself.")
    held = _read_logger(logger, expected)
    if not held:
        raise Incorrect("The logger holds no messages. Call logger.log.remote(...) inside experiment, on the handle "
                        "the task was given.")
    if expected is not None and len(held) < expected:
        raise Incorrect(f"The logger holds {len(held)} of the {expected} messages the experiments should log "
                        "({} each): call logger.log.remote(...) once per step.".format(", ".join(map(str, steps))))
    reads = [s for s in calls_on(run.records, me) if s.name.rsplit(".", 1)[-1] != "log"]
    fetched = run.fetched(tasks_of(reads))
    mine = plain_list(messages)
    if mine is None or not any(fetched.get(t) == mine for t in tasks_of(reads)):
        raise Incorrect("`messages` is not what the logger returned: after the experiments finish, set "
                        "messages = ray.get(logger.get_messages.remote()).")
    if not set(map(str, mine)) <= set(map(str, held)):
        raise Incorrect("`messages` holds messages the logger never received: set "
                        "messages = ray.get(logger.get_messages.remote()).")
    if len(mine) < len(held) and not _read_after(experiment_ids, [t for t in tasks_of(reads) if fetched.get(t) == mine]):
        # log.remote() calls are still on their way when a task returns (on a busy machine, many of them):
        # a read after the last experiment ended is right, whatever it saw; only an earlier one is a mistake.
        raise Incorrect(f"`messages` holds {len(mine)} messages, but the experiments logged {len(held)}: read them "
                        "after every experiment has finished.")
    counts = [_reading(fetched.get(t)) for t in tasks_of(reads)]
    readings = _ints(progress)
    if readings is None or not readings:
        raise Incorrect("`progress` should be a list of message counts, read from the logger while the experiments ran.")
    if any(b < a for a, b in zip(readings, readings[1:])):
        raise Incorrect(f"`progress` goes down ({readings}): the number of messages logged can only grow.")
    if not _is_subsequence(readings, [c for c in counts if c is not None]):
        raise Incorrect(f"`progress` ({readings}) is not what the driver read from the logger: append the number of "
                        "messages of each reading, e.g. len(ray.get(logger.get_messages.remote())).")
    spans = recorded(experiment_ids)
    read_spans = {s.task_id: s for s in recorded(tasks_of(reads))}
    total = len(held)
    first = min((s.start for s in spans), default=float("-inf"))
    last = max((s.end for s in spans), default=float("inf"))
    during = [c for t, c in zip(tasks_of(reads), counts)  # readings Ray ran between the first start and the last end
              if c is not None and 0 < c < total
              and (t not in read_spans or (read_spans[t].start >= first and read_spans[t].end <= last))]
    if not during or not any(0 < r < total for r in readings):
        raise Incorrect("`progress` has no reading taken while the experiments were still running (every reading "
                        "saw none or all of the messages). Read the logger in a loop while you wait, e.g. with "
                        "ray.wait(pending, num_returns=len(pending), timeout=0.3).",
                        evidence=plots.compare(spans + list(read_spans.values()), _logging_sketch(len(started)),
                                               marked=list(read_spans)))
    return (f"{len(started)} experiments ran in parallel and wrote {len(held)} messages to one shared logger; the driver "
            f"saw the count grow while they ran: {readings}.")


def _read_after(experiment_ids: Sequence[str], read_ids: Sequence[str]) -> bool:
    """Whether Ray ran one of the reads ``read_ids`` after every experiment had ended (by Ray's records)."""
    spans = recorded(list(experiment_ids) + list(read_ids))
    ends = [s.end for s in spans if s.task_id in set(experiment_ids)]
    reads = [s.start for s in spans if s.task_id in set(read_ids)]
    return bool(ends) and len(ends) == len(experiment_ids) and any(r >= max(ends) for r in reads)


def _logging_sketch(experiments: int) -> list[timing.Interval]:
    rows = [[(0.0, 1.5)] for _ in range(experiments)]
    rows.append([(0.3 * k, 0.3 * k + 0.05) for k in range(1, 6)])
    return plots.sketch(rows, name="experiment / reading")


# --- 07.parameter_averaging ---------------------------------------------------------------------
