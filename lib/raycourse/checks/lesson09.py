"""Checks for lesson 09 (capstone: pull-based dispatch): the worker actor, the dispatcher actor, the supervisor.

Each check runs the learner's class or function itself through the course's run harness, on a scenario
drawn at check time (how many workers and tasks, their ids and durations, which results the collector is
slow to store, which worker is slow, which worker is killed and when), so a hard-coded schedule fails.
Verdicts rest on the order of events, which a busy machine does not change: the dispatcher's books (who
got which task, who was told DONE while tasks waited, who asked again before its result was stored), the
results (each stored once, equal to a salted value the check's work returned for that payload) and, for
``supervise``, the driver journal (which loops it waited for, fetched, requeued, relaunched, and how).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Mapping

from .. import plots, record
from ..grading import Incorrect, NotAttempted, exercise
from ..lessons.dispatch import Dispatcher, PullWorker, RunError, RunReport, Timed, run_pull, schedule
from ..record import JOURNAL, Fetch, Wait
from .evidence import Run, cpu_slots, is_actor_class, learner_error, parallel_without_ray, plural, run_of

UNIT = 0.1  # seconds per unit of work in the checks' scenarios
SLOW_STORE = 0.3  # seconds the collector takes to store some results
SLOW_WORKER = 3.0  # how many times slower one worker is in the dispatcher check


@dataclass(frozen=True)
class Probe:
    """The checks' work function: sleeps ``units`` and returns a salted value the learner cannot make up."""

    salt: int

    def __call__(self, units: float) -> str:
        time.sleep(units * UNIT)
        return self.expected(units)

    def expected(self, units: float) -> str:
        return f"{self.salt}:{units}"


# --- shared -------------------------------------------------------------------------------------------------


def _original(actor_class: Any) -> type | None:
    meta = getattr(actor_class, "__ray_metadata__", None)
    return getattr(getattr(meta, "modified_class", None), "__ray_actor_class__", None)


def _actor_class(thing: Any, name: str, method: str, course: type, args: str) -> None:
    """``thing`` must be the learner's own ``@ray.remote`` class with ``method``."""
    if not is_actor_class(thing):
        if isinstance(thing, type):
            raise Incorrect(f"`{name}` is a plain Python class: decorate it with @ray.remote so it runs as an actor "
                            "(its own process, with its own state).")
        raise Incorrect(f"`{name}` should be a class decorated with @ray.remote, got {type(thing).__name__}.")
    original = _original(thing)
    if original is not None and issubclass(original, course):
        raise Incorrect(f"That is the course's own `{course.__name__}`: write `{name}` yourself.")
    methods = thing.__ray_metadata__.method_meta.methods
    if method not in methods:
        raise Incorrect(f"`{name}` has no method `{method}`: the check calls {name}({args}).{method}(...), "
                        "with the names the exercise gives.")


def _threads(name: str) -> None:
    try:
        source = run_of(name).source
    except NotAttempted:
        source = ""
    elsewhere = parallel_without_ray(source)
    if elsewhere:
        raise Incorrect(f"Your `{name}` uses {elsewhere} in one process. In this pattern each worker actor holds one "
                        "task at a time, and the parallelism comes from several workers pulling from the dispatcher: "
                        "drop the " + elsewhere + ".")


def _workers(rng: random.Random) -> int:
    return max(2, min(rng.randint(3, 4), cpu_slots()))


def _units(rng: random.Random, count: int, low: int, high: int) -> list[float]:
    """``count`` distinct durations between ``low`` and ``high`` units (two decimals)."""
    return [x / 100 for x in rng.sample(range(100 * low, 100 * high), count)]


def _run(what: str, payloads: list[float], probe: Probe, **options: Any) -> RunReport:
    timeout = 30 + 10 * UNIT * (sum(payloads) / max(1, options.get("workers", 1)) + max(payloads))
    try:
        return run_pull(payloads, probe, progress=False, timeout=timeout, **options)
    except RunError as error:
        raise Incorrect(f"The check could not start the run with your `{what}`: {error}.") from None
    except Exception as error:  # the learner's class broke the harness
        raise Incorrect(learner_error(what, error)) from None


def _known_ids(report: RunReport) -> None:
    """Incorrect if results were stored under ids that no task has (a counter instead of ``task.id``)."""
    given = {t.id for t in report.tasks}
    strangers = [i for i in report.results if i not in given]
    if strangers:
        raise Incorrect(f"The collector received results under {plural(len(strangers), 'id')} that no task has (e.g. "
                        f"{strangers[0]!r}): store each result under its task's id, "
                        "collector.add.remote(task.id, result).")


def _exactly_once(report: RunReport, probe: Probe, allowed_twice: set[Any] = frozenset()) -> None:
    """Every task's result is there, once, and is what the check's work function returned for its payload."""
    _known_ids(report)
    given = {t.id: t.payload for t in report.tasks}
    twice = {i: n for i, n in report.duplicates().items() if i not in allowed_twice}
    if twice:
        i, n = next(iter(twice.items()))
        raise Incorrect(f"The result of task {i} was delivered {n} times ({plural(len(twice), 'task')} more than "
                        "once): each task must run once.")
    missing = report.missing()
    if missing:
        raise Incorrect(f"{len(missing)} of {report.total} tasks have no result (e.g. task {missing[0]}).")
    for task_id, result in sorted(report.results.items()):
        value = result.value if isinstance(result, Timed) else result
        if not isinstance(result, Timed) or value != probe.expected(given[task_id]):
            shown = "the task's payload" if value == given[task_id] else repr(value)[:60]
            raise Incorrect(f"The result stored for task {task_id} is {shown}, not what work(task.payload) returned: "
                            "hand the value work returns to the collector unchanged.")


def _gives(report: RunReport) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for event in report.events("give"):
        counts[event.worker] = counts.get(event.worker, 0) + 1
    return counts


# --- 09.worker_loop -----------------------------------------------------------------------------------------


@exercise("09.worker_loop", "Write the worker actor's pull loop")
def worker_loop(Worker: Any) -> str:  # noqa: N803 - the learner's class name
    """Runs the learner's Worker actors with the course's dispatcher and a collector slow to store some results."""
    _actor_class(Worker, "Worker", "run", PullWorker, "worker_id")
    _threads("Worker")
    rng = random.Random()
    n = _workers(rng)
    ids, m = rng.sample(range(10, 100), n), rng.randint(3 * n, 4 * n)
    task_ids, payloads = rng.sample(range(100, 1000), m), _units(rng, m, 1, 4)
    probe = Probe(rng.randrange(1, 10**6))
    delays = {t: SLOW_STORE for t in rng.sample(task_ids, m // 2)}
    report = _run("Worker", payloads, probe, worker=Worker, workers=n, worker_ids=ids, task_ids=task_ids,
                  delays=delays)
    errors = report.errors()
    if errors:
        wid, text = next(iter(errors.items()))
        kind = text.split(":")[0]
        if any(word in text for word in ("payload", "_Done", "DONE")):
            raise Incorrect(f"Worker {wid}'s loop raised {kind} on DONE: it treated DONE as a task. Check `if task is "
                            "DONE: return` before running it.")
        raise Incorrect(f"Worker {wid}'s `run` raised {text}.")
    asked = {e.worker for e in report.events("give", "done", "early")}
    if not asked:
        raise NotAttempted("Your workers never asked the dispatcher for a task: in `run`, ask with "
                           "ray.get(dispatcher.next_task.remote(self.worker_id)) until the answer is DONE.")
    strangers = sorted(asked - set(ids), key=repr)
    if strangers:
        raise Incorrect(f"Your workers asked the dispatcher as worker {strangers[0]!r}, not with the id each was "
                        "created with: keep `worker_id` from __init__ (self.worker_id) and pass that to next_task.")
    if not report.results:
        returned = [s for s in report.loops.values() if s.startswith("returned") and s not in ("returned None",
                                                                                            "returned 0")]
        raise Incorrect("The collector received no results" + (" (the loops returned them instead)" if returned else "")
                        + ": hand each result on as you go, with collector.add.remote(task.id, result), and wait "
                        "for it with ray.get before asking again.")
    if report.ended == "ignored DONE":
        raise Incorrect("A worker asked for more after the dispatcher answered DONE: return from `run` when the "
                        "answer is DONE (`if task is DONE: return`).")
    if report.ended in ("stalled", "timeout") or "running" in report.loops.values():
        raise Incorrect("Your workers' loops never ended (the check stopped them): return from `run` when the "
                        "dispatcher answers DONE.")
    _known_ids(report)
    early = report.events("early")
    if early:
        first, held = early[0], report.results.get(early[0].task)
        times = f" ({plural(len(early), 'time')} in this run)"
        if not isinstance(held, Timed) or held.end > first.time:
            raise Incorrect(f"Worker {first.worker} asked for another task while it still held task {first.task}, "
                            f"before it had run it{times}. A worker holding several tasks keeps them from the workers "
                            "that are free, and loses them all if it dies: take one task, run it, hand the result on, "
                            "and only then ask again.", evidence=_evidence(report, [e.task for e in early]))
        raise Incorrect(f"Worker {first.worker} asked for its next task before the collector had stored the result of "
                        f"task {first.task}{times}: wait for it, ray.get(collector.add.remote(...)), before asking "
                        "again. Asking ends the worker's lease, so a worker that died in between would lose a result "
                        "nobody recomputes.")
    told = {e.worker for e in report.events("done")}
    quit_early = [w for w in ids if w not in told and report.loops.get(w, "").startswith("returned")]
    if quit_early:
        w = quit_early[0]
        raise Incorrect(f"Worker {w}'s loop returned after {plural(_gives(report).get(w, 0), 'task')}, before the "
                        "dispatcher said DONE: keep asking for the next task until the answer is DONE.")
    _exactly_once(report, probe)
    pids = {str(p) for p in report.pids.values()}
    elsewhere = {r.worker for r in report.results.values()} - pids
    if elsewhere:
        raise Incorrect("Some tasks' work ran outside your worker actors (in other Ray tasks): call "
                        "work(task.payload) in the worker itself, the process that holds the worker's state.")
    counts = sorted(_gives(report).values())
    return (f"All {m} tasks ran exactly once on your {n} workers ({counts[0]} to {counts[-1]} each): each worker held "
            "one task at a time, asked for the next only once the collector had stored its result, and returned on "
            "DONE.")


def _evidence(report: RunReport, marked: list[Any], slow: Mapping[Any, float] | None = None) -> Any:
    """The learner's run (``marked`` task ids outlined) above the pull schedule: next task to the first free worker."""
    factors = [(slow or {}).get(w, 1.0) for w in report.worker_ids]
    rows = schedule([t.payload * UNIT for t in report.tasks], factors)
    return plots.compare(report.intervals("your run"), plots.sketch(rows, "pull"), marked=[str(t) for t in marked],
                         expected_title="Each task to whichever worker is free (the pull pattern)")


# --- 09.dispatcher ------------------------------------------------------------------------------------------


@exercise("09.dispatcher", "Write the dispatcher actor")
def dispatcher(TaskDispatcher: Any) -> str:  # noqa: N803 - the learner's class name
    """Runs the learner's dispatcher behind a recording proxy, with the course's workers, one of them slow."""
    _actor_class(TaskDispatcher, "TaskDispatcher", "next_task", Dispatcher, "tasks")
    _threads("TaskDispatcher")
    rng = random.Random()
    # Never the lesson's four workers: a dispatcher that splits the tasks into a fixed number of chunks
    # (which only a hard-coded worker count allows) then leaves a chunk to nobody.
    n = 3 if cpu_slots() >= 3 else 2
    ids, m = rng.sample(range(10, 100), n), rng.randint(4 * n, 5 * n)
    task_ids, payloads = rng.sample(range(100, 1000), m), _units(rng, m, 1, 3)
    probe, slow = Probe(rng.randrange(1, 10**6)), rng.randrange(n)
    report = _run("TaskDispatcher", payloads, probe, dispatcher=TaskDispatcher, workers=n, worker_ids=ids,
                  task_ids=task_ids, slow={slow: SLOW_WORKER})
    gives, errors, bad = report.events("give"), report.events("error"), report.events("bad")
    if errors:
        note = errors[0].note
        if gives and note.split(":")[0] in ("IndexError", "StopIteration", "KeyError"):
            raise Incorrect(f"next_task raised {note.split(':')[0]} when the tasks ran out: return DONE when nothing "
                            "is left, so the workers know to stop.")
        if note.startswith("TimeoutError"):
            raise Incorrect("next_task did not answer within 30 s: does it wait for something? Answer at once with "
                            "the next task, or DONE.")
        raise Incorrect(f"next_task raised {note}.")
    if bad:
        raise Incorrect(_bad_answer(bad[0].note))
    if not gives:
        raise NotAttempted("Your dispatcher handed out no task: return the next Task from next_task, and DONE only "
                           "when none is left.")
    handed: dict[Any, list[Any]] = {}
    for event in gives:
        handed.setdefault(event.task, []).append(event.worker)
    again = {t: w for t, w in handed.items() if len(w) > 1}
    if again:
        t, who = next(iter(again.items()))
        raise Incorrect(f"Task {t} was handed out {len(who)} times ({plural(len(again), 'task')} more than once): keep "
                        "one position (or queue) for all workers, advanced on every hand-out.")
    _sent_home(report, ids[slow])
    if report.ended in ("stalled", "timeout"):
        raise Incorrect("The workers never stopped: once every task is handed out, next_task must return DONE.")
    _exactly_once(report, probe)
    counts = _gives(report)
    others = sorted(c for w, c in counts.items() if w != ids[slow])
    return (f"Your dispatcher handed each of the {m} tasks out once, to whichever of the {n} workers asked, and said "
            f"DONE only when none was left: the slow worker ran {plural(counts.get(ids[slow], 0), 'task')}, the others "
            f"{others[0]} to {others[-1]} each, and nobody sat idle while work waited.")


def _bad_answer(note: str) -> str:
    """The hint for an answer of next_task that is neither a Task it was given nor DONE (``note`` describes it)."""
    done = "return DONE, the signal the workers stop on (`from raycourse.lessons.dispatch import DONE`)"
    if note.startswith("NoneType"):
        return f"next_task returned None: when the tasks run out, {done}."
    if note.startswith("str") and "DONE" in note:
        return f"next_task returned the string 'DONE': {done}; workers recognise it with `task is DONE`."
    if note.startswith(("list", "tuple")):
        return (f"next_task returned a {note}: hand out one Task per call. A worker holding several tasks keeps them "
                "from the workers that are free.")
    if note == "Task not given":
        return ("next_task returned a Task it was not given: hand out the Task objects your __init__ received (the "
                "check gives its own, different from the lesson's).")
    if note.startswith(("int", "float")):
        return (f"next_task returned {note.split(' ', 1)[1]}, a payload rather than a Task: return the Task itself "
                "(the worker needs task.id and task.payload).")
    return f"next_task returned {note}, which is neither a Task nor DONE."


def _sent_home(report: RunReport, slow_worker: Any) -> None:
    """Incorrect if a worker was told DONE while tasks were still to be handed out (idle while work waited)."""
    given: set[Any] = set()
    for k, event in enumerate(report.books):
        if event.kind == "give":
            given.add(event.task)
        elif event.kind == "done" and len(given) < report.total:
            later = {e.task for e in report.books[k:] if e.kind == "give"}
            waiting = report.total - len(given)
            if not later:
                raise Incorrect(f"next_task said DONE while {plural(waiting, 'task')} had not been handed out, and "
                                "nobody ever ran them: return DONE only once every task is out.")
            who = [e.worker for e in report.books[k:] if e.kind == "give"]
            slowest = "the slow worker" if slow_worker in who else f"worker {who[0]}"
            raise Incorrect(f"Worker {event.worker} was told DONE while {plural(waiting, 'task')} were still waiting, "
                            f"then sat idle while {slowest} worked through them: deciding in advance which worker runs "
                            "which task brings back the rotation's idle time. Give the next task to whichever worker "
                            "asks.", evidence=_evidence(report, sorted(later), {slow_worker: SLOW_WORKER}))


# --- 09.fault_tolerance -------------------------------------------------------------------------------------


@exercise("09.fault_tolerance", "Survive a worker killed in the middle of a task")
def fault_tolerance(supervise: Any) -> str:
    """Kills a randomly chosen worker at a random time while it holds a task, and reads what supervise did."""
    if not callable(supervise) or isinstance(supervise, type):
        raise Incorrect("`supervise` should be a function supervise(loops, dispatcher, relaunch).")
    _threads("supervise")
    for _ in range(2):  # a second scenario only if the machine was too slow to kill the worker in time
        report, run, probe = _killed_run(supervise)
        if report.killed is not None:
            break
    else:
        raise Incorrect("The check could not kill a worker while it held its task (is the machine very busy?): run "
                        "the check again.")
    dead, task = report.killed
    said = report.supervisor or ""
    over = ("`supervise` relaunched workers for loops that ended normally too (relaunch() was called {} times for "
            "one worker that died): relaunch only when ray.get raised ActorDiedError.")
    if len(report.relaunched) > 1 or "relaunch() was called" in said:
        raise Incorrect(over.format(len(report.relaunched) + ("relaunch() was called" in said)))
    if said.startswith("raised"):
        text = said[len("raised "):]
        if "ActorDied" in text or "RayActorError" in text:
            raise Incorrect(f"`supervise` raised {text.split(':')[0]}: ray.get on the loop of a worker that died "
                            "raises it. Take the loops one at a time with ray.wait and catch "
                            "`ray.exceptions.ActorDiedError` around ray.get.")
        if "changed size during iteration" in text:
            raise Incorrect("`supervise` changed `loops` while looping over it: loop over a copy, "
                            "`while loops: ... ray.wait(list(loops), num_returns=1)`.")
        raise Incorrect(f"`supervise` raised {text}.")
    if said == "still running":
        raise Incorrect("`supervise` did not return once every loop had ended (the check stopped it): remove each loop "
                        "you handled from the ones you wait on, and return when none is left.")
    dead_loop = next(t for t, w in report.loop_tasks.items() if w == dead)
    requeues = report.events("requeue")
    looked_at = {t for r in run.fetches() + run.waits() for t in r.task_ids}
    fetched = {t for f in run.fetches() for t in f.task_ids}
    if not requeues and not report.relaunched and dead_loop not in fetched:
        if not looked_at & set(report.loop_tasks) or _only_waited_for_all(run, report, fetched):
            raise NotAttempted(f"Worker {dead} was killed while it held task {task}, and nothing noticed: the task "
                               "was lost. Take loops as they end with ray.wait; when ray.get raises ActorDiedError, "
                               "give the worker's task back and relaunch a worker.")
        _responsive(run, report)  # the usual cause: it waited for the loops in a way that could not notice
        raise Incorrect(f"Worker {dead} was killed while it held task {task}, and `supervise` never looked at its "
                        "loop: the task was lost. Take every loop as it ends with ray.wait(list(loops), "
                        "num_returns=1); when ray.get raises ActorDiedError, give the task back and relaunch.")
    _responsive(run, report)
    if not any(e.worker == dead for e in requeues):
        if requeues:
            raise Incorrect(f"You requeued worker {requeues[0].worker!r}, but worker {dead} died: requeue the id that "
                            "`loops` maps the dead loop's ref to.")
        raise Incorrect(f"Worker {dead} died holding task {task}, and its task was not given back: call "
                        "dispatcher.requeue.remote(worker_id) with the dead worker's id.")
    alive = [e for e in requeues if e.worker != dead]
    if alive:
        raise Incorrect(f"You also requeued worker {alive[0].worker!r}, whose loop ended normally"
                        + (f" (its task {alive[0].task} ran twice)" if alive[0].task is not None else "")
                        + ": requeue only the worker whose loop raised ActorDiedError.")
    if not report.relaunched:
        lost = f", and task {task} was never run" if task in report.missing() else ""
        raise Incorrect(f"You gave task {task} back but did not relaunch a worker: the run went on with one worker "
                        f"fewer{lost}. Call relaunch() and wait for the new loop too.")
    new_loop = next(t for t, w in report.loop_tasks.items() if w == report.relaunched[0])
    if report.running_at_return or new_loop not in looked_at:
        raise Incorrect(f"`supervise` did not wait for worker {report.relaunched[0]}, the one relaunch() started "
                        "(it was still running when supervise returned, or could have been): add the loop relaunch() "
                        "returns to the loops you wait for.")
    _exactly_once(report, probe, allowed_twice={task})
    return (f"Worker {dead} was killed while it held task {task}; `supervise` noticed through ray.wait, gave the task "
            f"back, relaunched worker {report.relaunched[0]} and waited for it too: all {report.total} results are "
            "there exactly once.")


def _killed_run(supervise: Any) -> tuple[RunReport, Run, Probe]:
    rng = random.Random()
    n = _workers(rng)
    ids, m = rng.sample(range(10, 100), n), rng.randint(3 * n, 4 * n)
    task_ids, payloads = rng.sample(range(100, 1000), m + 1), _units(rng, m + 1, 1, 2)
    victim = rng.randrange(1, max(2, m // 2))
    payloads[victim] = round(rng.uniform(20, 28), 2)  # 2 to 2.8 s: long enough to be killed while held
    probe = Probe(rng.randrange(1, 10**6))
    with record.scope() as number:
        report = _run("supervise", payloads, probe, supervise=supervise, workers=n, worker_ids=ids,
                      task_ids=task_ids, kill=task_ids[victim], kill_delay=rng.uniform(0.1, 0.4))
    return report, Run(number, JOURNAL.in_cell(number)), probe


def _only_waited_for_all(run: Run, report: RunReport, fetched: set[str]) -> bool:
    """The starter's shape: one wait for every loop at once, no ray.get on any loop, nothing handled."""
    loops = set(report.loop_tasks)
    waits = [w for w in run.waits() if loops & set(w.task_ids)]
    return not fetched & loops and bool(waits) and all(
        w.timeout is None and w.num_returns >= len(loops & set(w.task_ids)) for w in waits)


def _responsive(run: Run, report: RunReport) -> None:
    """Incorrect if supervise waited for all loops at once, or blocked on one loop while others still ran."""
    seen = {t for item in run.records if isinstance(item, (Wait, Fetch)) for t in item.task_ids}
    # A relaunched loop supervise never looks at is judged on its own ("did not wait for worker ..."), not here.
    unseen_new = {t for t, w in report.loop_tasks.items() if w in report.relaunched and t not in seen}
    loops = set(report.loop_tasks) - unseen_new
    ready: set[str] = set()
    consumed: set[str] = set()
    for item in run.records:
        if not isinstance(item, (Wait, Fetch)) or not loops & set(item.task_ids):
            continue
        alive = {t for t in loops if report.born.get(t, 0.0) <= item.start} - consumed  # loops not yet handled
        given = [t for t in item.task_ids if t in loops]
        if isinstance(item, Wait):
            if item.timeout is None and len(given) > 1 and item.num_returns >= len(given):
                raise Incorrect("`supervise` waited for all loops at once (ray.wait with num_returns=len(...)), so a "
                                "worker that dies is noticed only when every other loop has ended. Take them one at a "
                                "time: ray.wait(list(loops), num_returns=1).")
            if item.timeout is None and len(given) == 1 and alive - set(given) - set(item.ready) - ready:
                _blocked()
            ready |= set(item.ready) & loops
            continue
        for task in given:
            if task not in ready and item.timeout is None and alive - {task} - ready:
                _blocked()
            consumed.add(task)


def _blocked() -> None:
    raise Incorrect("`supervise` blocked on one loop with ray.get while other loops were still running, so it could "
                    "not notice another loop ending (or its worker dying) meanwhile. Take whichever loop ends first: "
                    "ray.wait(list(loops), num_returns=1), then ray.get that one.")
