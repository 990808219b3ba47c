"""Checks for lesson 09 (capstone: pull-based dispatch and self-play).

Each check judges the :class:`~raycourse.pullrun.RunReport` of the learner's
run of the notebook's workload: which tasks produced a result and how often,
how every worker loop ended, and when each task ran. Efficiency is a ratio of
intervals of that same run (recorded work / workers, over first start to last
end), so a slow or busy machine stretches both sides and does not fail
correct work; the harness's timeouts mean a loop that never ends cannot hang
the check.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from ..lessons import dispatch
from ..grading import Incorrect, NotAttempted, exercise
from ..lessons.dispatch.run import RunReport

WORKLOAD = [4, 2, 3, 1, 2, 4, 4, 3, 4, 3, 3, 4, 3, 4, 1, 1, 4, 1, 1, 2, 2, 2, 2, 4, 3, 2, 3, 2, 1, 2, 1, 1]
FT_WORKLOAD = [1] * 15 + [10]
MIN_EFFICIENCY = 0.85


def _report(report: Any, role: str, given: Any, name: str, workload: list[int]) -> RunReport:
    """The report must come from dispatch.run_pull, with the learner's ``given`` object, on the lesson's workload."""
    if not isinstance(report, RunReport):
        raise Incorrect(f"`report` should be what dispatch.run_pull(...) returned, got {type(report).__name__}.")
    if report.used.get(role) is not given:
        raise Incorrect(f"`report` comes from a run without your `{name}`: run the cell above again "
                        f"(passing {role}={name}) before the check.")
    if list(report.used.get("payloads", [])) != list(workload):
        raise Incorrect("The run used a different workload: keep the notebook's durations so the check can compare.")
    return report


def _never_ended(report: RunReport) -> bool:
    return report.ended in {"stalled", "timeout", "runaway"} or any(
        state in {"running", "stopped"} for state in report.loops.values())


def _exactly_once(report: RunReport, allowed_twice: set[int] = frozenset()) -> None:
    """Every task's result is there, once, and is what work(payload) returned."""
    twice = {i: n for i, n in report.duplicates().items() if i not in allowed_twice}
    if twice:
        i, n = next(iter(twice.items()))
        raise Incorrect(f"Task {i} was run {n} times ({len(twice)} tasks ran more than once). Each task must be handed "
                        "out once: one shared queue (or position) for all workers, advanced on every hand-out.")
    missing = report.missing()
    if missing:
        raise Incorrect(f"{len(missing)} of {report.total} tasks have no result (tasks {missing[:8]}).")
    payloads = report.used["payloads"]
    wrong = [i for i, v in report.values().items() if v != payloads[i]]
    if wrong:
        raise Incorrect(f"The result stored for task {wrong[0]} is {report.values()[wrong[0]]!r}, not what "
                        "work(task.payload) returned: hand the result of work on to the collector unchanged.")


def _efficient(report: RunReport, hint: str) -> str:
    e = report.efficiency(steady=True)
    if e.ratio >= MIN_EFFICIENCY:
        return f"efficiency {e.ratio:.2f} (makespan {e.makespan:.2f} s for an ideal of {e.ideal:.2f} s)"
    busiest = max(Counter(s.worker for s in report.intervals()).values())
    raise Incorrect(f"Efficiency {e.ratio:.2f} is below {MIN_EFFICIENCY} (the busiest worker ran {busiest} of "
                    f"{report.total} tasks): workers sat idle while tasks waited for another worker. {hint}")


@exercise("09.worker_loop", "Write the worker's pull loop")
def worker_loop(report: Any, worker_loop: Any) -> str:
    if not callable(worker_loop):
        raise Incorrect("`worker_loop` should be a function worker_loop(worker_id, dispatcher, collector, work).")
    if worker_loop is dispatch.pull_loop:
        raise Incorrect("That is the course's own dispatch.pull_loop: write the loop yourself.")
    report = _report(report, "loop", worker_loop, "worker_loop", WORKLOAD)
    errors = report.errors()
    if errors:
        text = next(iter(errors.values()))
        if any(word in text for word in ("payload", "DONE", "_Done", "'id'")):
            raise Incorrect(f"A worker loop raised {text}: the dispatcher's DONE is not a task. "
                            "Check `if task is DONE: return` before running it.")
        raise Incorrect(f"A worker loop raised {text}.")
    delivered = sum(report.deliveries.values())
    if delivered == 0:
        returned = [s for s in report.loops.values() if s.startswith("returned") and s not in {"returned 0", "returned None"}]
        if returned:
            raise Incorrect("The collector received no results (the loops returned them instead). Hand each result "
                            "on as you go, with collector.add.remote(task.id, result): a worker that dies loses what it kept.")
        raise NotAttempted("No task was run: write the loop that asks the dispatcher for tasks until DONE.")
    if _never_ended(report):
        raise Incorrect("The worker loops never ended (the run was stopped for them). Return from the loop when "
                        "the dispatcher answers DONE.")
    if len(report.results) <= report.workers and len(report.results) < report.total:
        raise Incorrect(f"Only {len(report.results)} of {report.total} tasks ran, about one per worker: the loop must "
                        "keep asking for the next task until the dispatcher says DONE.")
    _exactly_once(report)
    efficient = _efficient(report, "Take one task, run it, hand the result on, and only then ask for the next: "
                                   "a worker holding several tasks keeps them from the workers that are free.")
    return f"All {report.total} tasks ran exactly once, the loops ended on DONE; {efficient}."


@exercise("09.dispatcher", "Write the dispatcher's hand-out")
def dispatcher(report: Any, TaskDispatcher: Any) -> str:  # noqa: N803 - the learner's class name
    if TaskDispatcher is dispatch.Dispatcher:
        raise Incorrect("That is the course's own dispatch.Dispatcher: write the hand-out yourself.")
    report = _report(report, "dispatcher", TaskDispatcher, "TaskDispatcher", WORKLOAD)
    errors = report.errors()
    delivered = sum(report.deliveries.values())
    if delivered == 0 and not errors:
        raise NotAttempted("The dispatcher handed out no task: return the next Task from next_task, then DONE.")
    if errors:
        text = next(iter(errors.values()))
        if any(word in text for word in ("IndexError", "StopIteration", "empty")):
            raise Incorrect(f"next_task raised {text} when the tasks ran out: return dispatch.DONE when nothing "
                            "is left, so the workers know to stop.")
        raise Incorrect(f"The dispatcher raised {text}.")
    if report.duplicates():
        _exactly_once(report)
    if _never_ended(report):
        raise Incorrect("The workers never stopped: once every task is handed out, next_task must return dispatch.DONE.")
    _exactly_once(report)
    efficient = _efficient(report, "Give the next task to whichever worker asks, instead of deciding in advance "
                                   "which worker runs which task.")
    return f"Every task was handed out once and the workers stopped on DONE; {efficient}."


@exercise("09.fault_tolerance", "Survive a worker killed in the middle of a task")
def fault_tolerance(report: Any, supervise: Any) -> str:
    if not callable(supervise):
        raise Incorrect("`supervise` should be a function supervise(loops, dispatcher, relaunch).")
    report = _report(report, "supervise", supervise, "supervise", FT_WORKLOAD)
    if report.killed is None:
        raise Incorrect("No worker was killed in this run: keep kill='last' in dispatch.run_pull. (If you did, the last "
                        "task finished before the kill; run the cell again.)")
    worker, task = report.killed
    if report.supervisor and report.supervisor.startswith("raised"):
        raise Incorrect(f"supervise {report.supervisor}. ray.get on a dead worker's loop raises ActorDiedError: "
                        "take finished loops one at a time with ray.wait, and catch ray.exceptions.ActorDiedError "
                        "for the one that died.")
    if report.supervisor != "returned":
        raise Incorrect("supervise never returned: return once every loop (the relaunched ones too) has ended.")
    if not report.requeued and not report.relaunched:
        raise NotAttempted(f"Worker {worker} died holding task {task} and its task was lost: notice the dead worker "
                           "and give its task back.")
    if report.running_at_return:
        raise Incorrect(f"supervise returned while worker(s) {report.running_at_return} were still running: keep "
                        "waiting on the loops of the workers you relaunched, too.")
    if task in report.missing():
        if not report.requeued:
            raise Incorrect(f"Task {task} was lost: worker {worker} still held its lease. Tell the dispatcher with "
                            "dispatcher.requeue.remote(worker_id) for the dead worker's id.")
        if not report.relaunched:
            raise Incorrect(f"You gave task {task} back, but every other worker had already been told DONE: nobody "
                            "ran it. Start a replacement with relaunch() and wait for its loop too.")
    _exactly_once(report, allowed_twice={task})
    new = ", ".join(str(w) for w in report.relaunched)
    return (f"Worker {worker} was killed holding task {task}; you gave the task back and worker {new} ran it: "
            f"all {report.total} results are there exactly once.")
