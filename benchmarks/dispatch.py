"""Benchmark: how close each way of handing out work comes to ideal, for a heavy-tailed mix of durations.

    RAY_AUTH_MODE=token .venv/bin/python benchmarks/dispatch.py [--scale 1.5] [--workers 8]

128 sleeping tasks whose durations follow a capped Pareto law (most are short,
a few are 20x longer), run in ONE session by every strategy of lesson 09 on
the same 8 workers. For each: the predicted makespan (exact durations, no
overhead), the measured one, and efficiency = ideal / makespan, where ideal is
the recorded work / workers of that same run. Goals: pull-based >= 0.90, and
at least 1.25x faster than batched ray.get and Pool.map's rotation.
Not a timed test: run it by hand; the machine's load shows up as overhead.
"""
from __future__ import annotations

import argparse
import random
import time

import ray
from ray.util import ActorPool
from ray.util.multiprocessing import Pool

import raycourse
from raycourse.lessons import dispatch


def heavy_tailed(count: int = 128, seed: int = 108, scale: float = 1.0) -> list[float]:
    """Durations in seconds: 0.05 s * Pareto(1.2), capped at 1 s, times ``scale``."""
    rng = random.Random(seed)
    return [round(scale * min(1.0, 0.05 * rng.paretovariate(1.2)), 3) for _ in range(count)]


def sleep_seconds(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


class Runner:
    """An actor for ActorPool: runs the work function it is given."""

    def work(self, fn, payload):
        return fn(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--scale", type=float, default=1.5, help="multiply every duration (longer = less overhead)")
    args = parser.parse_args()
    w, durations = args.workers, heavy_tailed(scale=args.scale)
    print(f"{len(durations)} tasks, {sum(durations):.1f} s of work, longest {max(durations):.2f} s, "
          f"{w} workers: ideal {sum(durations) / w:.2f} s")
    raycourse.start(num_cpus=w, dashboard=False)
    work = dispatch.timed(sleep_seconds)
    task = ray.remote(num_cpus=1)(work)
    measured: dict[str, tuple[str, list]] = {}

    out: list = []
    for i in range(0, len(durations), w):
        out += ray.get([task.remote(d) for d in durations[i:i + w]])
    measured["batched ray.get"] = ("batched", out)
    measured["plain tasks"] = ("greedy", ray.get([task.remote(d) for d in durations]))
    pool = Pool(processes=w)
    measured["Pool.map (rotation)"] = ("rotation", pool.map(work, durations, chunksize=1))
    pool.terminate()
    runners = [ray.remote(num_cpus=1)(Runner).remote() for _ in range(w)]
    actor_pool = ActorPool(runners)
    measured["ActorPool.map"] = ("ordered", list(actor_pool.map(lambda a, d: a.work.remote(work, d), durations)))
    measured["ActorPool.map_unordered"] = ("greedy", list(actor_pool.map_unordered(lambda a, d: a.work.remote(work, d),
                                                                                    durations)))
    del actor_pool, runners
    report = dispatch.run_pull(durations, sleep_seconds, workers=w, progress=False)
    assert not report.missing() and not report.duplicates(), report

    print(f"\n{'strategy':<26}{'predicted s':>12}{'measured s':>12}{'ideal s':>9}{'makespan/ideal':>16}{'efficiency':>12}")
    rows = {name: (strategy, dispatch.spans(enumerate(out))) for name, (strategy, out) in measured.items()}
    rows["pull (dispatcher)"] = ("greedy", report.intervals())
    makespans = {}
    for name, (strategy, spans) in rows.items():
        e = dispatch.efficiency(spans, w)
        makespans[name] = e.makespan / e.ideal
        print(f"{name:<26}{dispatch.predict(durations, w, strategy):>12.2f}{e.makespan:>12.2f}{e.ideal:>9.2f}"
              f"{e.makespan / e.ideal:>16.2f}{e.ratio:>12.2f}")
    pull = makespans["pull (dispatcher)"]
    print(f"\npull efficiency {1 / pull:.2f} (goal >= 0.90); pull is {makespans['batched ray.get'] / pull:.2f}x faster "
          f"than batched and {makespans['Pool.map (rotation)'] / pull:.2f}x faster than Pool.map (goal >= 1.25x), "
          "comparing makespan / ideal of the same session")
    raycourse.stop()


if __name__ == "__main__":
    main()
