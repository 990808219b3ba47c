"""Lesson 08: each check passes the solution and fails each realistic wrong answer with its hint.

The answers are run for real by dispatch.run_pull on 8 pull workers (half a CPU each, so they fit the
shared 4-CPU test session), on the notebook's workload.
"""
from __future__ import annotations

import pytest
import ray

from raycourse import dispatch
from raycourse.grading import grade
from raycourse.checks.lesson08 import FT_WORKLOAD, WORKLOAD
from raycourse.dispatch import DONE

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")


@pytest.fixture(scope="module")
def workers(ray_session):
    group = dispatch.Workers(8, num_cpus=0.5)
    yield group
    for worker_id, _ in group.items():
        group.kill(worker_id)
    for actor in group.helpers.values():
        ray.kill(actor)


def run(workers, **kwargs):
    payloads = kwargs.pop("payloads", WORKLOAD)
    return dispatch.run_pull(payloads, dispatch.sleep_units, workers, progress=False, grace=2.0, timeout=60, **kwargs)


# --- 08.worker_loop ----------------------------------------------------------------


def loop_correct(worker_id, dispatcher, collector, work):
    while True:
        task = ray.get(dispatcher.next_task.remote(worker_id))
        if task is DONE:
            return
        ray.get(collector.add.remote(task.id, work(task.payload)))


def loop_starter(worker_id, dispatcher, collector, work):
    return 0


def loop_one_task(worker_id, dispatcher, collector, work):  # forgot the while loop
    task = ray.get(dispatcher.next_task.remote(worker_id))
    if task is not DONE:
        collector.add.remote(task.id, work(task.payload))


def loop_ignores_done(worker_id, dispatcher, collector, work):  # never stops asking
    while True:
        task = ray.get(dispatcher.next_task.remote(worker_id))
        if task is not DONE:
            collector.add.remote(task.id, work(task.payload))


def loop_keeps_results(worker_id, dispatcher, collector, work):  # results lost with the worker
    results = []
    while (task := ray.get(dispatcher.next_task.remote(worker_id))) is not DONE:
        results.append(work(task.payload))
    return results


def loop_hoards(worker_id, dispatcher, collector, work):  # takes every task first, then runs them
    tasks = []
    while (task := ray.get(dispatcher.next_task.remote(worker_id))) is not DONE:
        tasks.append(task)
    for task in tasks:
        collector.add.remote(task.id, work(task.payload))


def loop_runs_done(worker_id, dispatcher, collector, work):  # no end check at all
    while True:
        task = ray.get(dispatcher.next_task.remote(worker_id))
        collector.add.remote(task.id, work(task.payload))


def test_worker_loop_correct(workers):
    report = run(workers, loop=loop_correct)
    v = grade("08.worker_loop", report=report, worker_loop=loop_correct)
    assert v.status == "correct", (v, report)


def test_worker_loop_starter_is_not_attempted(workers):
    v = grade("08.worker_loop", report=run(workers, loop=loop_starter), worker_loop=loop_starter)
    assert v.status == "not attempted", v


@pytest.mark.parametrize("loop, hint", [
    (loop_one_task, "keep asking"),
    (loop_ignores_done, "never ended"),
    (loop_keeps_results, "received no results"),
    (loop_hoards, "only then ask for the next"),
    (loop_runs_done, "DONE is not a task"),
])
def test_worker_loop_wrong_answers(workers, loop, hint):
    report = run(workers, loop=loop)
    v = grade("08.worker_loop", report=report, worker_loop=loop)
    assert v.status == "incorrect" and hint in v.message, (v, report)


def test_worker_loop_report_from_another_run(workers):
    v = grade("08.worker_loop", report=run(workers, loop=loop_correct), worker_loop=loop_one_task)
    assert v.status == "incorrect" and "without your `worker_loop`" in v.message


def test_worker_loop_course_loop_is_not_an_answer(workers):
    v = grade("08.worker_loop", report=None, worker_loop=dispatch.pull_loop)
    assert v.status == "incorrect" and "write the loop yourself" in v.message


# --- 08.dispatcher -----------------------------------------------------------------


class Correct:
    def __init__(self, tasks):
        self.tasks, self.position = list(tasks), 0

    def next_task(self, worker_id):
        if self.position == len(self.tasks):
            return DONE
        self.position += 1
        return self.tasks[self.position - 1]


class Starter:
    def __init__(self, tasks):
        self.tasks = list(tasks)

    def next_task(self, worker_id):
        return DONE


class PerWorkerPosition:  # every worker walks the whole list: each task runs 8 times
    def __init__(self, tasks):
        self.tasks, self.position = list(tasks), {}

    def next_task(self, worker_id):
        i = self.position.get(worker_id, 0)
        self.position[worker_id] = i + 1
        return self.tasks[i] if i < len(self.tasks) else DONE


class NoDone:  # pops until the list is empty, then crashes
    def __init__(self, tasks):
        self.tasks = list(tasks)

    def next_task(self, worker_id):
        return self.tasks.pop(0)


class StaticRoundRobin:  # the k-th worker to show up gets tasks k, k+8, ... decided in advance
    def __init__(self, tasks):
        self.queues = [list(tasks)[k::8] for k in range(8)]
        self.mine = {}

    def next_task(self, worker_id):
        queue = self.mine.setdefault(worker_id, self.queues[len(self.mine) % 8])
        return queue.pop(0) if queue else DONE


class OffByOne:  # stops one task early
    def __init__(self, tasks):
        self.tasks, self.position = list(tasks), 0

    def next_task(self, worker_id):
        if self.position >= len(self.tasks) - 1:
            return DONE
        self.position += 1
        return self.tasks[self.position - 1]


def test_dispatcher_correct(workers):
    report = run(workers, dispatcher=Correct)
    v = grade("08.dispatcher", report=report, TaskDispatcher=Correct)
    assert v.status == "correct", (v, report)


def test_dispatcher_starter_is_not_attempted(workers):
    v = grade("08.dispatcher", report=run(workers, dispatcher=Starter), TaskDispatcher=Starter)
    assert v.status == "not attempted", v


@pytest.mark.parametrize("cls, hint", [
    (PerWorkerPosition, "was run"),
    (NoDone, "return dispatch.DONE"),
    (StaticRoundRobin, "in advance"),
    (OffByOne, "tasks [31]"),
])
def test_dispatcher_wrong_answers(workers, cls, hint):
    report = run(workers, dispatcher=cls)
    v = grade("08.dispatcher", report=report, TaskDispatcher=cls)
    assert v.status == "incorrect" and hint in v.message, (v, report)


# --- 08.fault_tolerance ------------------------------------------------------------


def supervise_correct(loops, dispatcher, relaunch):
    loops = dict(loops)
    while loops:
        [ref], _ = ray.wait(list(loops), num_returns=1)
        worker_id = loops.pop(ref)
        try:
            ray.get(ref)
        except ray.exceptions.ActorDiedError:
            ray.get(dispatcher.requeue.remote(worker_id))
            new_ref, new_id = relaunch()
            loops[new_ref] = new_id


def supervise_starter(loops, dispatcher, relaunch):
    ray.wait(list(loops), num_returns=len(loops))


def supervise_get_all(loops, dispatcher, relaunch):
    ray.get(list(loops))


def supervise_requeue_only(loops, dispatcher, relaunch):
    loops = dict(loops)
    while loops:
        [ref], _ = ray.wait(list(loops), num_returns=1)
        worker_id = loops.pop(ref)
        try:
            ray.get(ref)
        except ray.exceptions.ActorDiedError:
            ray.get(dispatcher.requeue.remote(worker_id))


def supervise_relaunch_only(loops, dispatcher, relaunch):
    loops = dict(loops)
    while loops:
        [ref], _ = ray.wait(list(loops), num_returns=1)
        loops.pop(ref)
        try:
            ray.get(ref)
        except ray.exceptions.ActorDiedError:
            new_ref, new_id = relaunch()
            loops[new_ref] = new_id


def supervise_forgets_new_worker(loops, dispatcher, relaunch):
    for ref, worker_id in loops.items():
        try:
            ray.get(ref)
        except ray.exceptions.ActorDiedError:
            dispatcher.requeue.remote(worker_id)
            relaunch()


def test_fault_tolerance_correct(workers):
    report = run(workers, payloads=FT_WORKLOAD, supervise=supervise_correct, kill="last")
    v = grade("08.fault_tolerance", report=report, supervise=supervise_correct)
    assert v.status == "correct", (v, report)


def test_fault_tolerance_starter_is_not_attempted(workers):
    report = run(workers, payloads=FT_WORKLOAD, supervise=supervise_starter, kill="last")
    v = grade("08.fault_tolerance", report=report, supervise=supervise_starter)
    assert v.status == "not attempted", (v, report)


@pytest.mark.parametrize("supervise, hint", [
    (supervise_get_all, "ActorDiedError"),
    (supervise_requeue_only, "Start a replacement"),
    (supervise_relaunch_only, "requeue"),
    (supervise_forgets_new_worker, "still running"),
])
def test_fault_tolerance_wrong_answers(workers, supervise, hint):
    report = run(workers, payloads=FT_WORKLOAD, supervise=supervise, kill="last")
    v = grade("08.fault_tolerance", report=report, supervise=supervise)
    assert v.status == "incorrect" and hint in v.message, (v, report)


def test_fault_tolerance_without_a_kill(workers):
    report = run(workers, payloads=FT_WORKLOAD, supervise=supervise_correct)
    v = grade("08.fault_tolerance", report=report, supervise=supervise_correct)
    assert v.status == "incorrect" and "No worker was killed" in v.message
