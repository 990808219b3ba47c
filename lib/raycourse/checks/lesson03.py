"""Checks for lesson 03 (ray.wait): the first three to finish, processing as results arrive, k tasks in flight.

* ``03.first_three`` reads the exercise cell's run: what ``ray.get`` returned
  (every task returns its own start and end stamps, so no value can be typed
  in), which refs ``ray.wait`` reported ready, when the driver had the first
  three (the journal), and when each task really finished (Ray's records).
* ``03.process_in_order`` and ``03.limit_in_flight`` call the learner's
  function with tasks of the check's own: durations, counts and ``k`` drawn
  now, values the learner cannot foresee. The first is judged on when each
  result was processed against when the tasks finished; the second on how
  many tasks were submitted but unfinished at every instant, and on whether a
  free slot was refilled at once.

Tolerances come from the tasks' durations (half the spacing the check put
between them), so a loaded machine, which delays a reaction by milliseconds,
passes a correct loop, while waiting in pairs, in submission order or in
batches delays it by a whole spacing and fails.
"""
from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from typing import Any, Sequence

from .. import plots, record, timing
from ..grading import Incorrect, NotAttempted, exercise
from ..record import JOURNAL
from .evidence import (Run, call, cpu_slots, holds_ref, is_ref, is_remote_function, parallel_without_ray,
                       plain_list, plural, run_of, short)
from .evidence import _equal as equal


def _spans(task_ids: Sequence[str], timeout: float = 20.0) -> dict[str, timing.Interval]:
    with record.paused():
        return {s.task_id: s for s in timing.wait_for(task_ids, timeout=timeout, grace=min(timeout, 8.0))}


def _source_of(name: str) -> str:
    cell = JOURNAL.last_cell_setting(name)
    return cell.source if cell is not None else ""


# --- 03.first_three -------------------------------------------------------------------------------


def _first_fetches(run: Run) -> dict[str, tuple[float, Any]]:
    """task id -> (when ray.get returned it, the plain value) at its first fetch in ``run``."""
    found: dict[str, tuple[float, Any]] = {}
    for fetch in run.fetches():
        if fetch.values is None:
            continue
        for task, summary in zip(fetch.task_ids, fetch.values):
            if task and task not in found:
                found[task] = (fetch.end, record.plain(summary))
    return found


def _tasks_holding(items: list[Any], fetched: dict[str, tuple[float, Any]], what: str) -> list[str]:
    """The task whose fetched value each item is; :class:`Incorrect` for an item no task of the cell returned."""
    found = []
    for item in items:
        task = next((t for t, (_, v) in fetched.items() if equal(plain_list(item) or item, plain_list(v) or v)), None)
        if task is None:
            values = plain_list(item) or [item]
            which = f"a result for task {values[0]}" if isinstance(values[0], int) else f"{short(item, 60)}"
            raise Incorrect(f"`{what}` holds {which} that none of this cell's timed_task tasks returned: its time "
                            "stamps come from another run (or were typed in). Keep the values ray.get gives you.")
        found.append(task)
    return found


@exercise("03.first_three", "Take the first three tasks to finish, then the rest")
def first_three(first_three: Any, the_rest: Any, timed_task: Any) -> str:
    """Ray's recorded ends say which finished first; the journal says what the driver fetched, and when."""
    if first_three is None and the_rest is None:
        raise NotAttempted("Set `first_three` (results of the first three tasks to finish) and `the_rest`.")
    if not is_remote_function(timed_task):
        raise Incorrect("`timed_task` should be the remote function defined above the exercise; run that cell again.")
    for name, value in (("first_three", first_three), ("the_rest", the_rest)):
        if value is None:
            raise Incorrect(f"`{name}` is still None: set it to the list of results (ray.get of the refs).")
        if holds_ref(value):
            raise Incorrect(f"`{name}` holds ObjectRefs, not results. ray.wait gives you refs: fetch their values with "
                            "ray.get(ready).")
    run = run_of("first_three")
    fetched = {t: v for t, v in _first_fetches(run).items()
               if t in {task for s, _ in run.fetched_from(timed_task) for task in s.task_ids}}
    submitted = [t for s in run.submissions(timed_task) for t in s.task_ids]
    if not fetched:
        if submitted:
            raise Incorrect("The cell submitted the tasks but never fetched a result with ray.get: the values in "
                            "`first_three` came from somewhere else. Fetch them: first_three = ray.get(ready).")
        raise Incorrect("No timed_task task was fetched in the cell that set `first_three`: submit the six tasks "
                        "there (the line `refs = [...]`) and fetch the results with ray.get.")
    first_items, rest_items = plain_list(first_three), plain_list(the_rest)
    if first_items is None or rest_items is None:
        raise Incorrect("`first_three` and `the_rest` should be lists of results, as ray.get returns them.")
    first = _tasks_holding(first_items, fetched, "first_three")
    rest = _tasks_holding(rest_items, fetched, "the_rest")
    if len(first) != 3:
        hint = " ray.wait returns one ready ref unless you pass num_returns=3." if len(first) == 1 else ""
        raise Incorrect(f"`first_three` has {plural(len(first), 'result')}; expected 3.{hint}")
    six = submitted or sorted(fetched)
    if len(set(first + rest)) != len(first + rest) or set(first + rest) != set(six):
        raise Incorrect(f"`first_three` and `the_rest` together should hold each of the {len(six)} tasks once "
                        f"(they hold {len(set(first + rest))} different tasks in {len(first + rest)} items). Fetch "
                        "the rest from the not-ready list that ray.wait returned.")
    spans = _spans(six)
    if len(spans) < len(six):
        raise Incorrect("Ray has not reported every task of the cell yet; run the exercise cell again, then the check.")
    end = {t: spans[t].end for t in six}
    tolerance = 0.25 * statistics.median(spans[t].duration for t in six)
    finished_first = sorted(six, key=end.get)[:3]
    if max(end[t] for t in first) > min(end[t] for t in rest) + tolerance:
        order = {t: k for k, t in enumerate(six)}
        submitted_first = sorted(first, key=order.get) == six[:3]
        raise Incorrect(
            ("These are the first three tasks you *submitted*: ray.get(refs[:3]) waits for them in list order. "
             if submitted_first else "These are not the three tasks that finished first. ")
            + f"Tasks {sorted(order[t] for t in finished_first)} finished first: ray.wait(refs, num_returns=3) "
              "returns them as soon as they are done.",
            evidence=plots.timeline_figure(list(spans.values()), "Your six tasks (outlined: in `first_three`, but "
                                           "not among the first three to finish)",
                                           marked=[t for t in first if t not in finished_first]))
    had_at = max(fetched[t][0] for t in first)
    slowest = max(end.values())
    if had_at >= slowest:
        raise Incorrect("You had the first three only after all six tasks had finished: ray.get on all the refs waits "
                        "for the slowest. Wait for just three with ray.wait(refs, num_returns=3), then ray.get those.")
    ready = {t for w in run.waits() if w.end <= had_at for t in w.ready}
    if not set(first) <= ready:
        raise Incorrect("You fetched the first three by position, without asking ray.wait which tasks were done. "
                        "Let ray.wait(refs, num_returns=3) tell you: it returns whichever finish first, however "
                        "long each task takes.")
    return (f"You had the first three results {slowest - had_at:.1f} s before the slowest task finished, and "
            "collected the rest afterwards.")


# --- the check's own tasks ----------------------------------------------------------------------------


def check_task(seconds: float, value: Any) -> Any:
    """One of the check's tasks: sleeps ``seconds``, returns ``value`` (chosen by the check, unforeseeable)."""
    time.sleep(seconds)
    return value


_remote_task: Any = None


def _task() -> Any:
    """The check's remote function, made on first use (Ray may not be running when this module is imported)."""
    global _remote_task
    if _remote_task is None:
        import ray

        _remote_task = ray.remote(num_cpus=1)(check_task)
    return _remote_task


def _submit(pairs: Sequence[tuple[float, Any]]) -> list[Any]:
    """The check's own tasks, submitted without being journaled as the learner's."""
    with record.paused():
        return [_task().remote(seconds, value) for seconds, value in pairs]


def _task_id(ref: Any) -> str:
    return ref.task_id().hex()


# --- 03.process_in_order ---------------------------------------------------------------------------

SPACING = 0.5  # seconds between the check's task durations; the tolerance is half of it
PROCESS_SECONDS = 0.1


class _Process:
    """The ``process`` the check hands the learner's function: records what it got and when."""

    def __init__(self, limit: int) -> None:
        self.log: list[tuple[Any, float, float]] = []
        self.refs = 0
        self.limit = limit
        self.runaway = False

    def __call__(self, result: Any) -> None:
        if is_ref(result):
            self.refs += 1
            return
        if len(self.log) >= self.limit:
            self.runaway = True
            raise RuntimeError("process was called far more often than there are results")
        started = time.time()
        time.sleep(PROCESS_SECONDS)
        self.log.append((result, started, time.time()))


def _durations(count: int) -> list[float]:
    """``count`` durations SPACING apart, shuffled, never with the shortest first (so submission order shows)."""
    durations = [0.3 + SPACING * k for k in range(count)]
    while durations[0] == min(durations):
        random.shuffle(durations)
    return durations


def _process_evidence(spans: dict[str, timing.Interval], ids: list[str], log: list[tuple[int, float, float]],
                      marked: Sequence[str]) -> Any:
    tasks = [spans[t] for t in ids if t in spans]
    driver = [timing.Interval("process (driver)", f"process-{k}", "~driver", s, e) for k, (_, s, e) in enumerate(log)]
    ideal, free = [], 0.0
    ordered = sorted(tasks, key=lambda s: s.end)
    origin = min(s.start for s in tasks) if tasks else 0.0
    for k, span in enumerate(ordered):
        ideal.append(timing.Interval("task", f"ideal-{k}", f"ideal-{k:03d}", span.start - origin, span.end - origin))
        begin = max(free, span.end - origin)
        ideal.append(timing.Interval("process (driver)", f"ideal-p{k}", "~driver", begin, begin + PROCESS_SECONDS))
        free = begin + PROCESS_SECONDS
    return plots.compare(tasks + driver, ideal, marked=marked)


def _processed_on_the_wait(run: Run, remaining: list[str], task: str, start: float, previous: float,
                           tolerance: float) -> bool:
    """Whether ``task``'s result was processed straight after a ray.wait for any one of the remaining refs
    returned it, and that wait began straight after the previous result's processing (or the call).

    On loaded cores Ray tells the driver of a finish late and the driver runs late, so a correct loop can
    process a result well after Ray recorded its end. What is judged then is what the loop did, timed only
    by the driver's own clock between consecutive steps: wait (num_returns=1) on every remaining ref, fetch
    only what it returned, process it, wait again.
    """
    waits = [w for w in run.waits() if w.end <= start + 1e-6]
    if not any(w.start >= previous - 1e-6 for w in waits):
        return False
    last = max(waits, key=lambda w: w.seq)
    fetched = [f for f in run.fetches() if f.seq > last.seq and f.end <= start + 1e-6]
    return (last.num_returns == 1 and tuple(last.ready) == (task,) and set(remaining) <= set(last.task_ids)
            and all(set(f.task_ids) <= {task} for f in fetched) and start - last.end <= tolerance
            and min(w.start for w in waits if w.start >= previous - 1e-6) - previous <= tolerance)


@exercise("03.process_in_order", "Process results in the order they finish")
def process_in_order(process_as_ready: Any) -> str:
    """Calls the learner's function on the check's own shuffled tasks; each result must be processed once ready."""
    if not callable(process_as_ready) or is_remote_function(process_as_ready):
        raise Incorrect("`process_as_ready` should be a plain Python function taking (refs, process); restore its "
                        "`def process_as_ready(refs, process):` line.")
    elsewhere = parallel_without_ray(_source_of("process_as_ready"))
    if elsewhere:
        raise Incorrect(f"Your function uses {elsewhere} in the notebook's process to wait for the results. This "
                        "exercise is about Ray: let ray.wait(remaining, num_returns=1) tell you which result is ready.")
    count = max(2, min(4, cpu_slots()))
    durations = _durations(count)
    values = [(i, round(random.random(), 9)) for i in range(count)]
    refs = _submit(list(zip(durations, values)))
    ids = [_task_id(r) for r in refs]
    process = _Process(limit=4 * count)
    ready_at = time.time()
    try:
        _, run = call(process_as_ready, refs, process, what="process_as_ready(refs, process)",
                      timeout=30 + 4 * sum(durations))
    except Incorrect:
        if process.runaway:
            raise Incorrect(f"Your function called process far more than {count} times for {count} results: it "
                            "processes the same ready result again and again. Wait on the not-ready list next time "
                            "(ready, remaining = ray.wait(remaining)).") from None
        raise
    if process.refs:
        raise Incorrect("process was given an ObjectRef: pass it the value, process(ray.get(ref)).")
    if not process.log:
        raise Incorrect("Your function never called process: call process(result) once for each ref's result.")
    index = []
    for result, _, _ in process.log:
        match = next((i for i, v in enumerate(values) if equal(plain_list(result) or result, list(v))), None)
        if match is None:
            raise Incorrect(f"process was given {short(result)}, which none of the tasks returned: pass it the value "
                            "ray.get returns for each ref.")
        index.append(match)
    repeated = sorted(i for i, c in Counter(index).items() if c > 1)
    if repeated:
        raise Incorrect(f"{plural(len(repeated), 'result')} {'was' if len(repeated) == 1 else 'were'} processed more "
                        "than once. ray.wait returns (ready, not_ready): wait on the not-ready list next time, so a "
                        "processed ref is not returned again.")
    if len(index) != count:
        raise Incorrect(f"Only {len(index)} of the {count} results {'was' if len(index) == 1 else 'were'} processed: "
                        "call process on every one of them.")
    spans = _spans(ids)
    if len(spans) < count:
        raise Incorrect("Ray did not report the check's tasks in time (a very busy machine?); run the check again.")
    end = [spans[t].end for t in ids]
    log = [(i, start, stop) for i, (_, start, stop) in zip(index, process.log)]
    if not run.waits() and index == list(range(count)) and len(run.fetches()) == 1:
        raise NotAttempted("Your function still waits for all the results, then processes them in submission order "
                           "(the starter). Loop on ray.wait(remaining, num_returns=1) and process each result at once.")
    tolerance = SPACING / 2
    free, done = ready_at, set()
    for position, (i, start, stop) in enumerate(log):
        waiting = min((k for k in range(count) if k not in done), key=lambda k: end[k])
        due = max(free, end[waiting])
        late = start > due + tolerance
        if late and (i == waiting or end[i] <= end[waiting] + tolerance) and \
                _processed_on_the_wait(run, [ids[k] for k in range(count) if k not in done], ids[i], start, free,
                                       tolerance):
            late = False  # the loop did what was asked; the machine (or Ray's notice of the finish) was slow
        if late:
            evidence = _process_evidence(spans, ids, log, [ids[waiting]])
            batch = max((w.num_returns for w in run.waits()), default=1)
            if batch > 1:
                raise Incorrect(
                    f"You waited for {batch} results at a time (num_returns={batch}): the first to finish then "
                    f"waits for the {'second' if batch == 2 else 'others'}. Use ray.wait(remaining, num_returns=1) "
                    "and process each result alone.", evidence=evidence)
            if i != waiting and end[i] > end[waiting] + tolerance and not run.waits():
                raise Incorrect(
                    f"You waited for task {i} while task {waiting}, which finished {end[i] - end[waiting]:.1f} s "
                    "earlier, was already done (ray.get(ref) in submission order does this). Ask ray.wait for "
                    "whichever result is ready first.", evidence=evidence)
            if position == 0 and start >= max(end):
                whole = any(len(f.task_ids) > 1 for f in run.fetches() if f.start < start)
                raise Incorrect(
                    f"Nothing was processed until all {count} tasks had finished: "
                    + ("a ray.get on the whole list waits for the slowest. " if whole else
                       "your loop collects every result first and processes them afterwards. ")
                    + "Process each result as soon as ray.wait returns it.", evidence=evidence)
            raise Incorrect(f"Task {i}'s result was ready {start - due:.1f} s before it was processed: process each "
                            "result right after ray.wait returns it.", evidence=evidence)
        free = stop
        done.add(i)
    return (f"The check ran your function on {count} tasks of its own with shuffled durations: every result was "
            "processed as soon as it was ready, in the order the tasks finished.")


# --- 03.limit_in_flight -------------------------------------------------------------------------------
