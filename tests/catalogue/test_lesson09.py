"""Adversarial catalogue, lesson 09 (pull-based dispatch): answers learners write, each with the verdict it must get.

Every check runs the answer itself on a scenario it draws at check time, so these cases also show that a
correct answer passes whatever the scenario, and a wrong one fails whichever worker is slow or killed.
"""
from __future__ import annotations

import pytest

from harness import assert_verdict, ids, judge, right, starter, wrong

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")

SETUP = """
import random
import ray
from raycourse.lessons import dispatch
from raycourse.lessons.dispatch import DONE, Task
"""

# --- 09.worker_loop ----------------------------------------------------------------------------------------

HEAD = """
@ray.remote
class Worker:
    def __init__(self, worker_id):
        self.worker_id = worker_id

"""
SOLUTION_WORKER = HEAD + """
    def run(self, dispatcher, collector, work):
        while True:
            task = ray.get(dispatcher.next_task.remote(self.worker_id))
            if task is DONE:
                return
            ray.get(collector.add.remote(task.id, work(task.payload)))
"""
STARTER_WORKER = HEAD + """
    def run(self, dispatcher, collector, work):
        return  # your loop here: ask for a task, run it, hand the result on, until DONE
"""

WORKER_LOOP = [
    starter("the starter", STARTER_WORKER, "never asked"),
    right("the solution", SOLUTION_WORKER),
    right("walrus loop, == DONE, num_cpus in the decorator", """
        @ray.remote(num_cpus=1)
        class Worker:
            def __init__(self, worker_id):
                self.me = worker_id
                self.done = 0

            def run(self, dispatcher, collector, work):
                while (task := ray.get(dispatcher.next_task.remote(self.me))) != DONE:
                    result = work(task.payload)
                    stored = collector.add.remote(task.id, result)
                    ray.get(stored)
                    self.done += 1
                return self.done
    """),
    right("isinstance(task, Task) and a helper method", HEAD + """
    def one(self, dispatcher, collector, work):
        task = ray.get(dispatcher.next_task.remote(self.worker_id))
        if not isinstance(task, Task):
            return False
        ray.get(collector.add.remote(task.id, work(task.payload)))
        return True

    def run(self, dispatcher, collector, work):
        while self.one(dispatcher, collector, work):
            pass
    """),
    right("the solution right after a loop that did not wait for the collector", SOLUTION_WORKER, before=(HEAD + """
    def run(self, dispatcher, collector, work):
        while (task := ray.get(dispatcher.next_task.remote(self.worker_id))) is not DONE:
            collector.add.remote(task.id, work(task.payload))
    """,)),
    wrong("does not wait for the collector", HEAD + """
    def run(self, dispatcher, collector, work):
        while True:
            task = ray.get(dispatcher.next_task.remote(self.worker_id))
            if task is DONE:
                return
            collector.add.remote(task.id, work(task.payload))
    """, "before the collector had stored", "ray.get(collector.add"),
    wrong("takes two tasks at a time", HEAD + """
    def run(self, dispatcher, collector, work):
        while True:
            tasks = [ray.get(dispatcher.next_task.remote(self.worker_id)) for _ in range(2)]
            for task in tasks:
                if task is DONE:
                    return
                ray.get(collector.add.remote(task.id, work(task.payload)))
    """, "after the dispatcher answered DONE"),
    wrong("one task, then returns", HEAD + """
    def run(self, dispatcher, collector, work):
        task = ray.get(dispatcher.next_task.remote(self.worker_id))
        if task is not DONE:
            ray.get(collector.add.remote(task.id, work(task.payload)))
    """, "before the dispatcher said DONE", "keep asking"),
    wrong("a fixed number of tasks per worker", HEAD + """
    def run(self, dispatcher, collector, work):
        for _ in range(3):
            task = ray.get(dispatcher.next_task.remote(self.worker_id))
            ray.get(collector.add.remote(task.id, work(task.payload)))
    """, "before the dispatcher said DONE"),
    wrong("runs DONE as if it were a task", HEAD + """
    def run(self, dispatcher, collector, work):
        task = None
        while task is not DONE:
            task = ray.get(dispatcher.next_task.remote(self.worker_id))
            ray.get(collector.add.remote(task.id, work(task.payload)))
    """, "treated DONE as a task", "task is DONE"),
    wrong("does not stop on DONE", HEAD + """
    def run(self, dispatcher, collector, work):
        while True:
            task = ray.get(dispatcher.next_task.remote(self.worker_id))
            if task is DONE:
                continue
            ray.get(collector.add.remote(task.id, work(task.payload)))
    """, "after the dispatcher answered DONE", "return"),
    wrong("stores the payload instead of the result", HEAD + """
    def run(self, dispatcher, collector, work):
        while (task := ray.get(dispatcher.next_task.remote(self.worker_id))) is not DONE:
            work(task.payload)
            ray.get(collector.add.remote(task.id, task.payload))
    """, "payload", "work returns"),
    wrong("stores results under its own counter", HEAD + """
    def run(self, dispatcher, collector, work):
        count = 0
        while (task := ray.get(dispatcher.next_task.remote(self.worker_id))) is not DONE:
            ray.get(collector.add.remote(count, work(task.payload)))
            count += 1
    """, "task.id"),
    wrong("every worker asks as worker 0", HEAD + """
    def run(self, dispatcher, collector, work):
        while (task := ray.get(dispatcher.next_task.remote(0))) is not DONE:
            ray.get(collector.add.remote(task.id, work(task.payload)))
    """, "as worker 0", "self.worker_id"),
    wrong("keeps the results instead of handing them on", HEAD + """
    def run(self, dispatcher, collector, work):
        results = {}
        while (task := ray.get(dispatcher.next_task.remote(self.worker_id))) is not DONE:
            results[task.id] = work(task.payload)
        return results
    """, "collector received no results", "loops returned them"),
    wrong("a plain class", """
        class Worker:
            def __init__(self, worker_id):
                self.worker_id = worker_id

            def run(self, dispatcher, collector, work):
                while (task := ray.get(dispatcher.next_task.remote(self.worker_id))) is not DONE:
                    ray.get(collector.add.remote(task.id, work(task.payload)))
    """, "@ray.remote"),
    wrong("the loop method has another name", HEAD + """
    def loop(self, dispatcher, collector, work):
        while (task := ray.get(dispatcher.next_task.remote(self.worker_id))) is not DONE:
            ray.get(collector.add.remote(task.id, work(task.payload)))
    """, "no method `run`"),
    wrong("threads inside the worker", """
        import threading

        @ray.remote
        class Worker:
            def __init__(self, worker_id):
                self.worker_id = worker_id

            def one_thread(self, dispatcher, collector, work):
                while (task := ray.get(dispatcher.next_task.remote(self.worker_id))) is not DONE:
                    ray.get(collector.add.remote(task.id, work(task.payload)))

            def run(self, dispatcher, collector, work):
                threads = [threading.Thread(target=self.one_thread, args=(dispatcher, collector, work))
                           for _ in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
    """, "threads"),
    wrong("the course's own worker", "Worker = ray.remote(dispatch.PullWorker)", "course's own"),
]


@pytest.mark.parametrize("answer", WORKER_LOOP, ids=ids(WORKER_LOOP))
def test_worker_loop(answer):
    assert_verdict(judge("09.worker_loop", SETUP, answer), answer)


# --- 09.dispatcher -----------------------------------------------------------------------------------------

D_HEAD = """
@ray.remote
class TaskDispatcher:
    def __init__(self, tasks):
        self.tasks = list(tasks)
        self.position = 0

"""
SOLUTION_DISPATCHER = D_HEAD + """
    def next_task(self, worker_id):
        if self.position == len(self.tasks):
            return DONE
        self.position += 1
        return self.tasks[self.position - 1]
"""

DISPATCHER = [
    starter("the starter", """
        @ray.remote
        class TaskDispatcher:
            def __init__(self, tasks):
                self.tasks = list(tasks)

            def next_task(self, worker_id):
                return DONE  # hand out the next task instead
    """, "handed out no task"),
    right("the solution", SOLUTION_DISPATCHER),
    right("a deque, num_cpus=0", """
        from collections import deque

        @ray.remote(num_cpus=0)
        class TaskDispatcher:
            def __init__(self, tasks):
                self.queue = deque(tasks)

            def next_task(self, worker_id):
                return self.queue.popleft() if self.queue else DONE
    """),
    right("an iterator with a default", """
        @ray.remote
        class TaskDispatcher:
            def __init__(self, tasks):
                self.pending = iter(tasks)

            def next_task(self, worker_id):
                return next(self.pending, DONE)
    """),
    right("last task first (pop from the end)", """
        @ray.remote
        class TaskDispatcher:
            def __init__(self, tasks):
                self.tasks = list(tasks)

            def next_task(self, worker_id):
                if not self.tasks:
                    return DONE
                return self.tasks.pop()
    """),
    right("the solution right after a rotation", SOLUTION_DISPATCHER, before=("""
        @ray.remote
        class TaskDispatcher:
            def __init__(self, tasks):
                self.tasks, self.shares = list(tasks), {}

            def next_task(self, worker_id):
                if worker_id not in self.shares:
                    k = len(self.shares)
                    self.shares[worker_id] = self.tasks[k::4]
                share = self.shares[worker_id]
                return share.pop(0) if share else DONE
    """,)),
    wrong("a fixed rotation, shares dealt to the workers as they first ask", """
        @ray.remote
        class TaskDispatcher:
            def __init__(self, tasks):
                self.tasks, self.shares = list(tasks), {}

            def next_task(self, worker_id):
                if worker_id not in self.shares:
                    k = len(self.shares)
                    self.shares[worker_id] = self.tasks[k::4]
                share = self.shares[worker_id]
                return share.pop(0) if share else DONE
    """, "told DONE while", "whichever worker asks"),
    wrong("contiguous chunks, one per worker", """
        @ray.remote
        class TaskDispatcher:
            def __init__(self, tasks):
                self.tasks, self.chunks = list(tasks), {}

            def next_task(self, worker_id):
                if worker_id not in self.chunks:
                    k, size = len(self.chunks), -(-len(self.tasks) // 4)
                    self.chunks[worker_id] = self.tasks[k * size:(k + 1) * size]
                chunk = self.chunks[worker_id]
                return chunk.pop(0) if chunk else DONE
    """, "told DONE while"),
    wrong("IndexError when the tasks run out", D_HEAD + """
    def next_task(self, worker_id):
        task = self.tasks[self.position]
        self.position += 1
        return task
    """, "IndexError", "return DONE"),
    wrong("None at the end", D_HEAD + """
    def next_task(self, worker_id):
        if self.position == len(self.tasks):
            return None
        self.position += 1
        return self.tasks[self.position - 1]
    """, "returned None", "DONE"),
    wrong("the string 'DONE' at the end", D_HEAD + """
    def next_task(self, worker_id):
        if self.position == len(self.tasks):
            return "DONE"
        self.position += 1
        return self.tasks[self.position - 1]
    """, "the string 'DONE'"),
    wrong("returns the payload", D_HEAD + """
    def next_task(self, worker_id):
        if self.position == len(self.tasks):
            return DONE
        self.position += 1
        return self.tasks[self.position - 1].payload
    """, "payload rather than a Task"),
    wrong("two tasks per call", D_HEAD + """
    def next_task(self, worker_id):
        if self.position >= len(self.tasks):
            return DONE
        self.position += 2
        return self.tasks[self.position - 2:self.position]
    """, "one Task per call"),
    wrong("DONE one task too early", D_HEAD + """
    def next_task(self, worker_id):
        if self.position >= len(self.tasks) - 1:
            return DONE
        self.position += 1
        return self.tasks[self.position - 1]
    """, "had not been handed out", "every task is out"),
    wrong("a position per worker: every worker gets every task", """
        @ray.remote
        class TaskDispatcher:
            def __init__(self, tasks):
                self.tasks, self.positions = list(tasks), {}

            def next_task(self, worker_id):
                k = self.positions.get(worker_id, 0)
                if k == len(self.tasks):
                    return DONE
                self.positions[worker_id] = k + 1
                return self.tasks[k]
    """, "handed out", "times", "one position"),
    wrong("its own tasks instead of the ones given", """
        @ray.remote
        class TaskDispatcher:
            def __init__(self, tasks):
                self.tasks = [Task(i, 2) for i in range(32)]

            def next_task(self, worker_id):
                return self.tasks.pop(0) if self.tasks else DONE
    """, "not given"),
    wrong("cycles through the tasks forever", D_HEAD + """
    def next_task(self, worker_id):
        self.position += 1
        return self.tasks[(self.position - 1) % len(self.tasks)]
    """, "handed out", "times"),
    wrong("a plain class", """
        class TaskDispatcher:
            def __init__(self, tasks):
                self.tasks = list(tasks)

            def next_task(self, worker_id):
                return self.tasks.pop(0) if self.tasks else DONE
    """, "@ray.remote"),
    wrong("the course's own dispatcher", "TaskDispatcher = ray.remote(dispatch.Dispatcher)", "course's own"),
]


@pytest.mark.parametrize("answer", DISPATCHER, ids=ids(DISPATCHER))
def test_dispatcher(answer):
    assert_verdict(judge("09.dispatcher", SETUP, answer), answer)


# --- 09.fault_tolerance ------------------------------------------------------------------------------------

SOLUTION_SUPERVISE = """
def supervise(loops, dispatcher, relaunch):
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
"""
STARTER_SUPERVISE = """
def supervise(loops, dispatcher, relaunch):
    # Waits for every loop to end, and ignores the ones that died (their tasks are lost).
    ray.wait(list(loops), num_returns=len(loops))
"""

FAULT_TOLERANCE = [
    starter("the starter", STARTER_SUPERVISE, "nothing noticed", "ActorDiedError"),
    right("the solution", SOLUTION_SUPERVISE),
    right("RayActorError, all ready loops of each wait, a separate pending list", """
        def supervise(loops, dispatcher, relaunch):
            owner = dict(loops)
            pending = list(owner)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayActorError:
                        dispatcher.requeue.remote(owner[ref])
                        new_ref, new_id = relaunch()
                        owner[new_ref] = new_id
                        pending.append(new_ref)
    """),
    right("polling with a timeout, except Exception", """
        def supervise(loops, dispatcher, relaunch):
            running = dict(loops)
            while running:
                done, _ = ray.wait(list(running), num_returns=len(running), timeout=0.2)
                for ref in done:
                    worker = running.pop(ref)
                    try:
                        ray.get(ref)
                    except Exception:
                        ray.get(dispatcher.requeue.remote(worker))
                        ref2, worker2 = relaunch()
                        running[ref2] = worker2
    """),
    right("the solution right after the starter", SOLUTION_SUPERVISE, before=(STARTER_SUPERVISE,)),
    wrong("ray.get on every loop at once", """
        def supervise(loops, dispatcher, relaunch):
            ray.get(list(loops))
    """, "raised ActorDiedError", "ray.wait"),
    wrong("catches the death, but neither requeues nor relaunches", """
        def supervise(loops, dispatcher, relaunch):
            loops = dict(loops)
            while loops:
                [ref], _ = ray.wait(list(loops), num_returns=1)
                loops.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.ActorDiedError:
                    print("a worker died")
    """, "not given back", "requeue"),
    wrong("requeues, but does not relaunch", """
        def supervise(loops, dispatcher, relaunch):
            loops = dict(loops)
            while loops:
                [ref], _ = ray.wait(list(loops), num_returns=1)
                worker_id = loops.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.ActorDiedError:
                    ray.get(dispatcher.requeue.remote(worker_id))
    """, "did not relaunch"),
    wrong("relaunches, but does not requeue", """
        def supervise(loops, dispatcher, relaunch):
            loops = dict(loops)
            while loops:
                [ref], _ = ray.wait(list(loops), num_returns=1)
                loops.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.ActorDiedError:
                    new_ref, new_id = relaunch()
                    loops[new_ref] = new_id
    """, "not given back", "requeue"),
    wrong("does not wait for the relaunched worker", """
        def supervise(loops, dispatcher, relaunch):
            loops = dict(loops)
            while loops:
                [ref], _ = ray.wait(list(loops), num_returns=1)
                worker_id = loops.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.ActorDiedError:
                    ray.get(dispatcher.requeue.remote(worker_id))
                    relaunch()
    """, "still running", "relaunch() returns"),
    wrong("only handles the last worker in `loops`", """
        def supervise(loops, dispatcher, relaunch):
            refs = list(loops)
            ray.wait(refs[:-1], num_returns=len(refs) - 1)
            try:
                ray.get(refs[-1])
            except ray.exceptions.ActorDiedError:
                ray.get(dispatcher.requeue.remote(loops[refs[-1]]))
                new_ref, _ = relaunch()
                ray.get(new_ref)
    """, "all loops at once"),
    wrong("requeues the position of the loop, not the worker's id", """
        def supervise(loops, dispatcher, relaunch):
            pending = list(loops)
            while pending:
                [ref], _ = ray.wait(pending, num_returns=1)
                position = list(loops).index(ref) if ref in loops else -1
                pending.remove(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.ActorDiedError:
                    ray.get(dispatcher.requeue.remote(position))
                    new_ref, _ = relaunch()
                    pending.append(new_ref)
    """, "you requeued worker", "died"),
    wrong("relaunches for every loop that ends", """
        def supervise(loops, dispatcher, relaunch):
            loops = dict(loops)
            while loops:
                [ref], _ = ray.wait(list(loops), num_returns=1)
                worker_id = loops.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.ActorDiedError:
                    ray.get(dispatcher.requeue.remote(worker_id))
                if len(loops) < 2:
                    continue
                new_ref, new_id = relaunch()
                loops[new_ref] = new_id
    """, "relaunched", "ended normally"),
    wrong("catches the wrong exception", """
        def supervise(loops, dispatcher, relaunch):
            loops = dict(loops)
            while loops:
                [ref], _ = ray.wait(list(loops), num_returns=1)
                worker_id = loops.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayTaskError:
                    ray.get(dispatcher.requeue.remote(worker_id))
                    new_ref, new_id = relaunch()
                    loops[new_ref] = new_id
    """, "raised ActorDiedError", "catch"),
    wrong("waits for all loops at once, then handles the dead", """
        def supervise(loops, dispatcher, relaunch):
            loops = dict(loops)
            while loops:
                ray.wait(list(loops), num_returns=len(loops))
                for ref in list(loops):
                    worker_id = loops.pop(ref)
                    try:
                        ray.get(ref)
                    except ray.exceptions.ActorDiedError:
                        ray.get(dispatcher.requeue.remote(worker_id))
                        new_ref, new_id = relaunch()
                        loops[new_ref] = new_id
    """, "all loops at once", "num_returns=1"),
    wrong("ray.get on the loops in a fixed order", """
        def supervise(loops, dispatcher, relaunch):
            order = list(loops.items())
            while order:
                ref, worker_id = order.pop(0)
                try:
                    ray.get(ref)
                except ray.exceptions.ActorDiedError:
                    ray.get(dispatcher.requeue.remote(worker_id))
                    order.append(relaunch())
    """, "blocked on one loop", "ray.wait"),
    wrong("changes the dict it loops over", """
        def supervise(loops, dispatcher, relaunch):
            for ref in loops:
                try:
                    ray.get(ref)
                except ray.exceptions.ActorDiedError:
                    ray.get(dispatcher.requeue.remote(loops[ref]))
                    new_ref, new_id = relaunch()
                    loops[new_ref] = new_id
    """, "changed `loops`"),
    wrong("threads, one per loop", """
        from concurrent.futures import ThreadPoolExecutor

        def supervise(loops, dispatcher, relaunch):
            def watch(ref):
                try:
                    ray.get(ref)
                except ray.exceptions.ActorDiedError:
                    ray.get(dispatcher.requeue.remote(loops[ref]))
                    ray.get(relaunch()[0])
            with ThreadPoolExecutor() as pool:
                list(pool.map(watch, list(loops)))
    """, "threads"),
]


@pytest.mark.parametrize("answer", FAULT_TOLERANCE, ids=ids(FAULT_TOLERANCE))
def test_fault_tolerance(answer):
    assert_verdict(judge("09.fault_tolerance", SETUP, answer), answer)
