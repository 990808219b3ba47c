"""raycourse.lessons.dispatch: the pieces as plain Python objects, then runs on Ray (their books and reports)."""
from __future__ import annotations

import pickle
import time

import pytest

from raycourse.lessons import dispatch
from raycourse.lessons.dispatch import DONE, Collector, Dispatcher, FilePickler, Task


def test_done_survives_pickling():
    import ray.cloudpickle

    assert pickle.loads(pickle.dumps(DONE)) is DONE
    assert ray.cloudpickle.loads(ray.cloudpickle.dumps(DONE)) is DONE


def test_dispatcher_hands_out_each_input_once_then_done():
    d = Dispatcher(["a", "b", "c"])
    got = [d.next_task(w) for w in (0, 1, 0, 1)]
    assert got[:3] == [Task(0, "a"), Task(1, "b"), Task(2, "c")] and got[3] is DONE
    assert d.next_task(1) is DONE and d.status()["handed"] == 3
    assert d.told_done_twice() == [1]


def test_dispatcher_counts_keeps_given_tasks_and_rejects_bad_input():
    assert [Dispatcher(2).next_task(0).payload] == [0]
    assert Dispatcher([Task(7, "x")]).next_task(0) == Task(7, "x")
    with pytest.raises(TypeError, match="number of tasks or an iterable"):
        Dispatcher(2.5)


def test_dispatcher_leases_requeue_and_where():
    d = Dispatcher(3)
    assert d.next_task("w1").id == 0 and d.next_task("w2").id == 1
    assert d.leased() == {"w1": 0, "w2": 1} and d.where(0) == ("leased", "w1") and d.where(2) == ("queued", None)
    d.completed(0)
    assert d.next_task("w1").id == 2  # asking again ends w1's lease on task 0
    assert d.leased() == {"w1": 2, "w2": 1} and d.where(0) == ("stored", None)
    assert d.requeue("w2") == [1] and d.requeue("w2") == []
    assert d.next_task("w3").id == 1 and d.status()["requeued"] == 1
    assert [(e.kind, e.worker, e.task) for e in d.books() if e.kind == "requeue"] == [("requeue", "w2", 1),
                                                                                       ("requeue", "w2", None)]


def test_books_show_a_worker_asking_before_its_result_was_stored():
    d = Dispatcher(3)
    d.next_task("a")
    d.completed(0)
    d.next_task("a")  # fine: task 0 was stored first
    d.next_task("a")  # early: task 1 was never stored
    assert [(e.worker, e.task) for e in d.books() if e.kind == "early"] == [("a", 1)]


def test_dispatcher_stop_raises_for_late_workers():
    d = Dispatcher(1)
    d.stop()
    with pytest.raises(dispatch.RunStopped):
        d.next_task(0)


def test_collector_keeps_first_result_and_counts_repeats():
    c = Collector()
    assert c.add(1, "x") and not c.add(1, "y") and c.add(2, "z")
    assert c.results() == {1: "x", 2: "z"} and c.deliveries() == {1: 2, 2: 1} and c.progress() == (2, 3)
    c.reset()
    assert c.results() == {} and c.progress() == (0, 0)


def test_collector_delays_only_the_results_asked():
    c = Collector(delays={1: 0.2})
    began = time.monotonic()
    c.add(2, "fast")
    assert time.monotonic() - began < 0.15
    c.add(1, "slow")
    assert time.monotonic() - began >= 0.2


def test_file_pickler_writes_flushed_records_and_survives_a_cut(tmp_path):
    path = tmp_path / "records.pkl"
    writer = FilePickler(str(path))
    writer.write({"any": "record"})
    assert writer.add(7, [1, 2]) and not writer.add(7, "again")
    assert dispatch.read_pickles(str(path)) == [{"any": "record"}, (7, [1, 2])]  # readable before close: flushed
    assert writer.results() == {7: [1, 2]}
    writer.file.close()
    path.write_bytes(path.read_bytes() + pickle.dumps("half a record")[:5])
    assert len(dispatch.read_pickles(str(path))) == 2


def test_read_pickles_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="FilePickler"):
        dispatch.read_pickles(str(tmp_path / "nope.pkl"))


def test_timed_records_value_and_interval_and_wraps_once():
    work = dispatch.timed(lambda x: x * 2)
    t = work(21)
    assert t.value == 42 and t.end >= t.start and t.worker
    assert dispatch.timed(work) is work
    with pytest.raises(TypeError):
        dispatch.timed(3)


def test_slowed_takes_longer_and_returns_the_same():
    slow = dispatch.Slowed(lambda x: dispatch.sleep_units(x, unit=0.05), 3.0)
    began = time.monotonic()
    assert slow(1) == 1 and time.monotonic() - began >= 0.14


@pytest.mark.parametrize("strategy, expected", [("greedy", 8), ("rotation", 7), ("batched", 10), ("ordered", 10)])
def test_predict(strategy, expected):
    assert dispatch.predict([4, 1, 1, 4, 2, 2], 2, strategy) == expected


def test_predict_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy"):
        dispatch.predict([1], 1, "magic")


def test_efficiency_uses_recorded_work():
    spans = dispatch.spans([(0, dispatch.Timed(1, 0.0, 2.0, "a")), (1, dispatch.Timed(1, 0.0, 1.0, "b")),
                            (2, dispatch.Timed(1, 1.0, 2.0, "b"))])
    e = dispatch.efficiency(spans, 2)
    assert (e.makespan, e.ideal, e.ratio) == (2.0, 2.0, 1.0)
    assert dispatch.efficiency(spans, 4).ratio == 0.5 and dispatch.efficiency([], 2).ratio == 0.0


# --- on Ray ------------------------------------------------------------------------------------------------

WORK = dispatch.timed(lambda units: dispatch.sleep_units(units, unit=0.05))


def test_course_workers_with_a_file_sink(ray_session, tmp_path):
    import ray

    report = dispatch.run_pull([1, 2, 1], WORK, workers=2, progress=False)
    assert report.ended == "finished" and report.values() == {0: 1, 1: 2, 2: 1} and not report.duplicates()
    assert {e.kind for e in report.books} >= {"give", "stored", "done"} and not report.events("early")
    path = tmp_path / "out.pkl"
    pickler = ray.remote(num_cpus=0)(FilePickler).remote(str(path))
    report = dispatch.run_pull([1, 1], WORK, workers=2, sink=pickler, progress=False)
    assert ray.get(pickler.close.remote()) == 2
    assert sorted(i for i, _ in dispatch.read_pickles(str(path))) == [0, 1] and report.missing() == []


def test_your_worker_class_and_what_its_books_say(ray_session):
    import ray

    @ray.remote
    class Hasty:
        """Does not wait for the collector: asks again before its result is stored."""

        def __init__(self, worker_id):
            self.worker_id = worker_id

        def run(self, dispatcher, collector, work):
            while (task := ray.get(dispatcher.next_task.remote(self.worker_id))) is not DONE:
                collector.add.remote(task.id, work(task.payload))

    report = dispatch.run_pull([1] * 6, WORK, worker=Hasty, workers=2, worker_ids=[41, 42], delays={0: 0.4, 1: 0.4},
                               progress=False)
    assert report.ended == "finished" and report.worker_ids == [41, 42] and len(report.results) == 6
    assert report.events("early") and set(report.pids) == {41, 42}


def test_your_dispatcher_behind_the_proxy(ray_session):
    import ray

    @ray.remote
    class Early:
        def __init__(self, tasks):
            self.tasks = list(tasks)

        def next_task(self, worker_id):
            return self.tasks.pop(0) if len(self.tasks) > 1 else None

    report = dispatch.run_pull([1, 1, 1], WORK, dispatcher=Early, workers=2, task_ids=[7, 8, 9], progress=False)
    assert [e.task for e in report.events("give")] == [7, 8]
    assert report.events("bad")[0].note.startswith("NoneType") and report.missing() == [9]


def test_a_loop_that_ignores_done_is_stopped_at_once(ray_session):
    import ray

    @ray.remote
    class Deaf:
        def __init__(self, worker_id):
            self.worker_id = worker_id

        def run(self, dispatcher, collector, work):
            while True:
                task = ray.get(dispatcher.next_task.remote(self.worker_id))
                if task is not DONE:
                    ray.get(collector.add.remote(task.id, work(task.payload)))

    began = time.monotonic()
    report = dispatch.run_pull([1, 1], WORK, worker=Deaf, workers=2, progress=False)
    assert report.ended == "ignored DONE" and set(report.loops.values()) <= {"stopped", "running"}
    assert time.monotonic() - began < 60


def test_kill_and_supervise(ray_session):
    import ray

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

    report = dispatch.run_pull([1, 1, 20, 1, 1, 1], WORK, workers=3, supervise=supervise, kill=2, kill_delay=0.1,
                               progress=False)
    dead, task = report.killed
    assert task == 2 and report.loops[dead] == "killed" and report.supervisor == "returned"
    assert [e.worker for e in report.events("requeue")] == [dead] and len(report.relaunched) == 1
    assert report.missing() == [] and not report.running_at_return and "killed holding task 2" in repr(report)


def test_bad_arguments_say_what_is_wrong(ray_session):
    with pytest.raises(ValueError, match="positive whole number"):
        dispatch.run_pull([1], WORK, workers=0)
    with pytest.raises(ValueError, match="one distinct id per payload"):
        dispatch.run_pull([1, 2], WORK, task_ids=[3, 3])
    with pytest.raises(ValueError, match="kill needs the course's dispatcher"):
        dispatch.run_pull([1], WORK, dispatcher=object, kill=True)
