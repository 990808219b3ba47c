"""raycourse.lessons.dispatch: the pieces as plain Python objects, then one small run on Ray."""
from __future__ import annotations

import pickle

import pytest

from raycourse.lessons import dispatch
from raycourse.lessons.dispatch import DONE, Collector, Dispatcher, FilePickler, Task, TaskMonitor


def test_done_survives_pickling():
    import ray.cloudpickle

    assert pickle.loads(pickle.dumps(DONE)) is DONE
    assert ray.cloudpickle.loads(ray.cloudpickle.dumps(DONE)) is DONE


def test_dispatcher_hands_out_each_input_once_then_done():
    d = Dispatcher(["a", "b", "c"])
    got = [d.next_task(w) for w in (0, 1, 0, 1)]
    assert got[:3] == [Task(0, "a"), Task(1, "b"), Task(2, "c")] and got[3] is DONE
    assert d.next_task(0) is DONE and d.status()["handed"] == 3


def test_dispatcher_counts_and_rejects_bad_input():
    assert [Dispatcher(2).next_task(0).payload] == [0]
    with pytest.raises(TypeError, match="number of tasks or an iterable"):
        Dispatcher(2.5)


def test_dispatcher_leases_and_requeue():
    d = Dispatcher(3)
    assert d.next_task("w1").id == 0 and d.next_task("w2").id == 1
    assert d.leased() == {"w1": 0, "w2": 1}
    assert d.next_task("w1").id == 2  # asking again ends w1's lease on task 0
    assert d.leased() == {"w1": 2, "w2": 1}
    assert d.requeue("w2") == [1] and d.requeue("w2") == []
    assert d.next_task("w3").id == 1 and d.status()["requeued"] == 1


def test_dispatcher_stop_raises_for_late_workers():
    d = Dispatcher(1)
    d.stop()
    with pytest.raises(dispatch.RunStopped):
        d.next_task(0)


def test_collector_keeps_first_result_and_counts_repeats():
    c = Collector()
    assert c.add(1, "x") and not c.add(1, "y") and c.add(2, "z")
    assert c.results() == {1: "x", 2: "z"} and c.deliveries() == {1: 2, 2: 1}
    c.reset()
    assert c.results() == {}


def test_monitor_counts():
    m = TaskMonitor(3)
    m.advance(1, 1)
    m.advance(0, 1)
    assert m.progress() == dispatch.Progress(done=1, total=3, delivered=2)


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


def test_timed_records_value_and_interval():
    t = dispatch.timed(lambda x: x * 2)(21)
    assert t.value == 42 and t.end >= t.start and t.worker
    with pytest.raises(TypeError):
        dispatch.timed(3)


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
    assert dispatch.efficiency(spans, 4).ratio == 0.5


def test_pull_run_on_ray_with_file_sink(ray_session, tmp_path):
    import ray

    workers = dispatch.Workers(2, num_cpus=0.5)
    try:
        report = dispatch.run_pull([1, 2, 1], dispatch.sleep_units, workers, progress=False)
        assert report.ended == "finished" and report.values() == {0: 1, 1: 2, 2: 1} and not report.duplicates()
        path = tmp_path / "out.pkl"
        pickler = ray.remote(num_cpus=0)(FilePickler).remote(str(path))
        report = dispatch.run_pull([1, 1], dispatch.sleep_units, workers, sink=pickler, progress=False)
        dispatch.close_pickler(pickler)
        assert sorted(i for i, _ in dispatch.read_pickles(str(path))) == [0, 1] and report.missing() == []
    finally:
        for worker_id, _ in workers.items():
            workers.kill(worker_id)
        for actor in workers.helpers.values():
            ray.kill(actor)


def test_steady_efficiency_forgives_a_late_start_but_not_an_idle_end():
    late = dispatch.spans([(0, dispatch.Timed(1, 0.0, 2.0, "a")), (1, dispatch.Timed(1, 1.0, 2.0, "b"))])
    assert dispatch.efficiency(late, 2).ratio == 0.75 and dispatch.efficiency(late, 2, steady=True).ratio == 1.0
    idle_end = dispatch.spans([(0, dispatch.Timed(1, 0.0, 2.0, "a")), (1, dispatch.Timed(1, 0.0, 1.0, "b"))])
    assert dispatch.efficiency(idle_end, 2, steady=True).ratio == 0.75
    one_worker = dispatch.spans([(0, dispatch.Timed(1, 0.0, 1.0, "a")), (1, dispatch.Timed(1, 1.0, 2.0, "a"))])
    assert dispatch.efficiency(one_worker, 2, steady=True).ratio == 0.5
