"""Interval arithmetic (pure) and intervals read back from a real Ray."""
from __future__ import annotations

import time

import pytest
import ray

from raycourse import plots, timing
from raycourse.timing import Interval


def iv(start, end, name="f", worker="w"):
    return Interval(name, f"{name}{start}", worker, start, end)


def test_max_concurrency_and_touching_ends():
    assert timing.max_concurrency([iv(0, 1), iv(1, 2), iv(2, 3)]) == 1
    assert timing.max_concurrency([iv(0, 2), iv(1, 3), iv(1.5, 1.6)]) == 3
    assert timing.max_concurrency([]) == 0


def test_overlap_span_and_order():
    a, b = iv(0, 2), iv(1, 4)
    assert timing.overlap(a, b) == 1 and timing.overlap(a, iv(3, 4)) == 0
    assert timing.span([a, b]) == 4
    assert timing.completion_order([b, a]) == [a.task_id, b.task_id]


def test_levels_of_chain_and_tree():
    chain = [iv(i, i + 1) for i in range(7)]
    tree = [iv(0, 1), iv(0, 1), iv(0, 1), iv(0, 1), iv(1, 2), iv(1, 2), iv(2, 3)]
    assert timing.levels(chain) == 7 and timing.levels(tree) == 3
    assert timing.levels([iv(0, 1.02), iv(1, 2)], slack=0.05) == 2


def test_short_names():
    assert timing._short_name("__main__.slow_function") == "slow_function"
    assert timing._short_name("pkg.mod.Counter.increment") == "Counter.increment"
    assert timing._short_name("pkg.mod.f") == "f"


@pytest.mark.usefixtures("ray_session")
def test_intervals_of_real_tasks_by_ref_and_name():
    @ray.remote(num_cpus=0)
    class Gate:
        """Opens once all three naps have started: they overlap however slowly Ray starts their workers."""

        def __init__(self):
            self.arrived = 0

        def arrive(self):
            self.arrived += 1

        def count(self):
            return self.arrived

    @ray.remote(num_cpus=0)  # other modules' kept actors may hold CPUs of the shared Ray: the gate needs all three
    def nap(seconds, gate):
        ray.get(gate.arrive.remote())
        deadline = time.monotonic() + 60
        while ray.get(gate.count.remote()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(seconds)
        return seconds

    gate = Gate.remote()
    since = time.time()
    refs = [nap.remote(0.5, gate) for _ in range(3)]
    ray.get(refs)
    by_ref = timing.intervals(refs)
    assert len(by_ref) == 3 and all(0.45 < i.duration < 65 for i in by_ref)
    assert {i.name for i in by_ref} == {"nap"}
    assert timing.max_concurrency(by_ref) == 3  # the gate made them overlap; Ray's records must show it
    assert all(i.submitted is not None and i.submitted <= i.start for i in by_ref)
    assert len(timing.intervals(name="nap", since=since, expect=3)) == 3
    started = time.monotonic()
    assert timing.intervals(name="never_ran", since=since, expect=1, grace=1) == []
    assert time.monotonic() - started < 5
    fig = plots.timeline(by_ref, show=False)
    assert len(fig.renderers) == 1


def test_empty_timeline_is_a_message_not_an_error():
    fig = plots.timeline([], show=False)
    assert "no Ray tasks found" in fig.title.text


def test_plots_reject_mismatched_lengths_clearly():
    with pytest.raises(ValueError, match="series 'a' has 1 values but there are 2 x values"):
        plots.lines([1, 2], {"a": [1]}, show=False)
    with pytest.raises(ValueError, match="2 labels but 1 values"):
        plots.bars(["a", "b"], [1], show=False)
    fig = plots.mean_std([1, 2], [3.1, 3.14], [0.1, 0.01], reference=3.14159, show=False)
    assert fig.title is not None


@pytest.mark.usefixtures("ray_session")
def test_tasks_finished_before_since_are_not_counted():
    @ray.remote
    def blip():
        return 1

    ray.get([blip.remote() for _ in range(4)])  # an earlier cell's short tasks, awaited
    since = time.time()  # taken within milliseconds of their start: inside the skew allowance
    ray.get([blip.remote() for _ in range(2)])
    assert len(timing.intervals(name="blip", since=since, expect=2)) == 2
    assert len(timing.intervals(name="blip", since=since, expect=3, timeout=4)) == 2
