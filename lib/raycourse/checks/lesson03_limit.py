"""Checks for lesson 03, part two: ``03.limit_in_flight``, judged on tasks in flight at every instant.

See :mod:`raycourse.checks.lesson03` for the tolerances (half the spacing between the check's tasks).
"""
from __future__ import annotations
import random
import time
from collections import Counter
from typing import Any, Sequence
from .. import plots, record, timing
from ..grading import Incorrect, NotAttempted, exercise
from ..record import Fetch, Wait
from .evidence import call, holds_ref, is_ref, is_remote_function, parallel_without_ray, plain_list, plural, short
from .lesson03 import _source_of, _spans

SHORT, LONG = 0.5, 1.2  # task durations; the first task is long and the second short, the rest in between


class _Bar:
    """The progress bar the check hands the learner's function: counts updates and when they came."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.n = 0
        self.updates: list[tuple[float, float]] = []  # (time, count so far)

    def update(self, n: float = 1) -> None:
        if len(self.updates) > 4 * self.total + 10:
            raise RuntimeError("bar.update was called far more often than there are results")
        self.n += n
        self.updates.append((time.time(), self.n))

    def __enter__(self) -> "_Bar":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:  # refresh, close, set_postfix, ...: accepted, ignored
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def _in_flight_gaps(submitted: dict[str, float], end: dict[str, float], k: int) -> list[tuple[float, float, int]]:
    """Periods (from, to, lowest count) during which fewer than ``k`` tasks were in flight while more were to come.

    Starts once ``k`` were first in flight, stops at the last submission.
    """
    last = max(submitted.values())
    events = sorted([(t, 1) for t in submitted.values()] + [(e, -1) for e in end.values() if e < last],
                    key=lambda e: (e[0], -e[1]))
    count, reached, gaps, opened, lowest = 0, False, [], None, k
    for moment, delta in events:
        count += delta
        if count >= k:
            reached = True
            if opened is not None:
                gaps.append((opened, moment, lowest))
                opened, lowest = None, k
        elif reached and moment < last:
            if opened is None:
                opened = moment
            lowest = min(lowest, count)
    if opened is not None:
        gaps.append((opened, last, lowest))
    return gaps


def _limit_sketch(durations: Sequence[float], k: int) -> list[timing.Interval]:
    """The tasks on ``k`` slots, each new one started the moment any slot frees: the shape asked for."""
    free = [0.0] * k
    spans = []
    for n, seconds in enumerate(durations):
        slot = min(range(k), key=free.__getitem__)
        spans.append(timing.Interval("work", f"sketch-{n}", f"sketch-{slot:03d}", free[slot], free[slot] + seconds))
        free[slot] += seconds
    return spans


def _submitted_on_the_wait(run: Any, made: Sequence[Any], submitted: dict[str, float], closed: float, k: int,
                           tolerance: float) -> bool:
    """Whether the submission that ended a gap came straight after a ray.wait for any one of the k in flight.

    Then the code did what was asked, and the gap was the machine's: on loaded cores Ray tells the
    driver of a finished task late, and the driver runs late. What is judged is the order of the
    calls the notebook made (wait for any one, fetch only what it returned, submit), and the driver's
    own times between consecutive steps (the step before the wait, the wait, the submission).
    """
    closing = next((s for s in made if abs(submitted[s.task_ids[0]] - closed) < 1e-6), None)
    if closing is None:
        return False
    calls = sorted((c for c in run.fetches() + run.waits() if c.seq < closing.seq), key=lambda c: c.seq)
    waits = [c for c in calls if isinstance(c, Wait)]
    if not waits:
        return False
    last = waits[-1]
    fetched_after = [c for c in calls if c.seq > last.seq]
    # The driver's step just before that wait (a submission, a fetch or an earlier poll): the wait must follow it
    # at once, or the loop dawdled while a slot was free.
    previous = [s.time for s in made if s.seq < last.seq] + [c.end for c in calls if c.seq < last.seq]
    return (last.num_returns == 1 and len(set(last.task_ids)) >= k and bool(last.ready)
            and all(set(c.task_ids) <= set(last.ready) for c in fetched_after)
            and closing.time - last.end <= tolerance
            and bool(previous) and last.start - max(previous) <= tolerance)


@exercise("03.limit_in_flight", "Keep at most k tasks in flight, with a progress bar")
def limit_in_flight(run_with_limit: Any) -> str:
    """Calls the learner's function with the check's own work, items and k; reads in-flight counts at every instant."""
    if not callable(run_with_limit) or is_remote_function(run_with_limit):
        raise Incorrect("`run_with_limit` should be a plain Python function taking (work, items, k, bar); restore "
                        "its `def run_with_limit(work, items, k, bar):` line.")
    elsewhere = parallel_without_ray(_source_of("run_with_limit"))
    if elsewhere:
        raise Incorrect(f"Your function uses {elsewhere} in the notebook's process to limit the work. This exercise is "
                        "about Ray: keep a list of refs in flight and ray.wait for one to finish before submitting "
                        "the next.")
    k = random.choice([2, 4])
    count = random.randint(2 * k + 1, 2 * k + 3)
    durations = [LONG, SHORT] + [round(random.uniform(SHORT, LONG), 2) for _ in range(count - 2)]
    items = random.sample(range(100, 1000), count)
    scale, shift = random.randint(3, 97), random.randint(1_000, 9_999)
    seconds = dict(zip(items, durations))

    def work(item: int) -> int:
        time.sleep(seconds[item])
        return item * scale + shift

    import ray

    work_task = ray.remote(num_cpus=1)(work)
    bar = _Bar(count)
    value, run = call(run_with_limit, work_task, list(items), k, bar, what="run_with_limit(work, items, k, bar)",
                      timeout=60 + 4 * sum(durations))
    expected = sorted(item * scale + shift for item in items)
    if is_ref(value) or holds_ref(value):
        raise Incorrect("Your function returned ObjectRefs: ray.get the ready refs that ray.wait returns, and return "
                        "their values.")
    results = plain_list(value)
    if results is None:
        raise Incorrect(f"Your function returned {short(value)}: return the list of the {count} results (any order).")
    made = [s for s in run.submissions(work_task) if s.kind == "task"]
    if len(made) < count and Counter(results) == Counter(expected):
        ran = f"Only {len(made)} of the {count} items ran" if made else f"None of the {count} items ran"
        raise Incorrect(f"{ran} as Ray tasks: your function computed the others in the notebook. Submit every item "
                        "with work.remote(item).")
    if Counter(record.plain(s.args[0]) if s.args else None for s in made) != Counter(items):
        raise Incorrect(f"Your function submitted {plural(len(made), 'task')} for the {count} items: submit "
                        "work.remote(item) once for each item.")
    if Counter(results) != Counter(expected):
        if len(results) < count and not Counter(results) - Counter(expected):
            raise Incorrect(f"Your function returned {len(results)} of the {count} results. After the submitting "
                            "loop, keep calling ray.wait until the tasks still in flight have finished too.")
        raise Incorrect(f"Your function returned {short(results)}, which is not what the work tasks returned: "
                        "collect the values ray.get gives you for the ready refs.")

    ids = [s.task_ids[0] for s in made]
    spans = _spans(ids)
    if len(spans) < count:
        raise Incorrect("Ray did not report the check's tasks in time (a very busy machine?); run the check again.")
    submitted = {s.task_ids[0]: min(s.time, spans[s.task_ids[0]].submitted or s.time) for s in made}
    end = {t: spans[t].end for t in ids}
    flight = [timing.Interval(spans[t].name, t, spans[t].worker, spans[t].start, end[t], submitted=submitted[t])
              for t in ids]
    most = timing.in_flight(flight)

    def picture(marked: Sequence[str] = ()) -> Any:
        return plots.compare(list(spans.values()), _limit_sketch(durations, k), marked=marked)

    if most > k:
        all_at_once = max(submitted.values()) < min(end.values())
        cpus = [s.options.get("num_cpus") for s in made if s.options.get("num_cpus")]
        if all_at_once:
            raise Incorrect(
                f"All {count} tasks were submitted at once, so all {count} were in flight (k = {k})."
                + (" Reserving CPUs (num_cpus) limits how many run at a time, not how many are pending: each pending "
                   "task still holds its arguments and its place in the queue." if cpus else "")
                + " Keep a list of refs in flight and ray.wait for one to finish before each new submission.",
                evidence=picture())
        raise Incorrect(f"Up to {most} tasks were in flight at once, more than k = {k}. Before each new submission, "
                        "while len(in_flight) >= k, wait for one: ready, in_flight = ray.wait(in_flight, "
                        "num_returns=1).", evidence=picture())
    if most < k:
        if most <= 1 and not run.waits():
            raise NotAttempted(f"Your function still runs one task at a time (the starter). Keep k = {k} in flight.")
        raise Incorrect(f"At most {plural(most, 'task was', 'tasks were')} in flight at once, but the check asked for "
                        f"k = {k}: submit until k are in flight before waiting (use the parameter k, not a fixed "
                        "number).", evidence=picture())
    tolerance = SHORT / 2
    for opened, closed, _ in _in_flight_gaps(submitted, end, k):
        if closed - opened <= tolerance or _submitted_on_the_wait(run, made, submitted, closed, k, tolerance):
            continue
        freed = min((t for t in ids if abs(end[t] - opened) < 1e-6), key=end.get, default=None)
        evidence = picture([freed] if freed else [])
        blocking = [r for r in run.fetches() + run.waits() if r.start < max(submitted.values())
                    and not (isinstance(r, Wait) and r.timeout == 0)]
        if any(len(r.task_ids) >= 2 and (isinstance(r, Fetch) or r.num_returns >= 2) for r in blocking):
            raise Incorrect(
                f"The tasks ran in batches: after one finished, no new task was submitted until the whole batch was "
                f"done, so a slot stayed free for {closed - opened:.1f} s. Submit a new task as soon as any one "
                "finishes (ray.wait with num_returns=1).", evidence=evidence)
        if blocking and all(len(r.task_ids) == 1 for r in blocking):
            raise Incorrect(
                f"A task finished {closed - opened:.1f} s before the next one was submitted: your loop waits for one "
                "particular task (the oldest, ray.get(in_flight[0])) while another has already finished. Use "
                "ray.wait(in_flight, num_returns=1), which returns whichever finishes first.", evidence=evidence)
        raise Incorrect(f"A slot stayed free for {closed - opened:.1f} s while tasks were waiting to be submitted: "
                        "submit the next task as soon as ray.wait returns a finished one.", evidence=evidence)
    if bar.n == 0:
        raise Incorrect("The progress bar never moved: call bar.update(len(ready)) each time ray.wait returns "
                        "finished tasks.")
    if bar.n != count:
        raise Incorrect(f"The progress bar shows {bar.n:g} of {count}: advance it by the number of results that "
                        "arrived, bar.update(len(ready)), each time ray.wait returns.")
    finished = sorted(end.values())
    for moment, shown in bar.updates:
        if shown > sum(1 for e in finished if e <= moment):
            done = sum(1 for e in finished if e <= moment)
            raise Incorrect(f"The progress bar showed {shown:g} done when {'no task' if not done else f'only {done}'} "
                            "had finished: advance it when results arrive (after ray.wait), not when you submit.")
    if bar.updates[0][0] >= max(submitted.values()):
        raise Incorrect("The progress bar moved only after the last task was submitted: advance it each time ray.wait "
                        "returns a result, so it shows progress while the work runs.")
    return (f"The check ran your function with {count} tasks of its own and k = {k}: never more than {k} were in "
            "flight, and each finish let the next task in at once.")
