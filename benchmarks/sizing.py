"""Benchmark: the CPU and memory one learner's lesson needs on the workshop cluster (the README's sizing table).

    .venv/bin/python benchmarks/sizing.py [--lessons 00 01 03] [--samples 0.5]

Starts ``raycourse-workshop`` (head + worker node), measures the idle cluster for
a while, then runs each lesson's solution notebook as ONE learner at a time
(``raycourse-execute`` with ``RAY_ADDRESS``: a kernel joined to the cluster, Run
All once), sampling every process of the cluster and of the learner's kernel:

* CPU: the CPU-seconds they used beyond the idle cluster's own, per lesson, and
  that divided by the run's length (the cores a learner keeps busy on average)
  and its busiest 5-second window. CPU-seconds do not grow with the machine's
  load (the wall time does), so they size a cluster on any machine.
* memory: the peak proportional set size (PSS: shared pages split between the
  processes sharing them) of the learner's kernel, and of the cluster beyond its
  idle size (the learner's workers, actors and objects).
* the logical CPUs the lesson declares (``raycourse.start(num_cpus=...)``).

Then it prints per-learner figures and what a class needs: learners -> nodes and
CPUs. Not a timed test; the load average is printed with the numbers.
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from board import running_workshop  # noqa: E402  (the same workshop start as the board benchmark)

ROOT = Path(__file__).resolve().parents[1]
NODE_VCPUS, NODE_GB = 8, 32  # the deploy/ task nodes (m5.2xlarge, a KubeRay pod of 8 CPUs and 32 GiB)
LEARNERS_PER_NODE = 4  # what those nodes declare: 4 learners at the lessons' widest


@dataclass
class Sample:
    when: float
    cpu: dict[tuple[int, float], float]  # (pid, start time) -> CPU seconds so far
    cluster_pss: float
    kernel_pss: float


@dataclass
class Meter:
    """Samples two process trees (the cluster's and the learner's) on a thread until stopped."""

    cluster: int
    kernel: int | None = None
    every: float = 0.5
    samples: list[Sample] = field(default_factory=list)

    def _tree(self, pid: int | None) -> list[psutil.Process]:
        if pid is None:
            return []
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def sample(self) -> Sample:
        cpu, pss = {}, {"cluster": 0.0, "kernel": 0.0}
        for part, pid in (("cluster", self.cluster), ("kernel", self.kernel)):
            for process in self._tree(pid):
                try:
                    with process.oneshot():
                        times = process.cpu_times()
                        cpu[(process.pid, process.create_time())] = times.user + times.system
                        pss[part] += process.memory_full_info().pss
                except psutil.Error:
                    continue
        return Sample(time.monotonic(), cpu, pss["cluster"], pss["kernel"])

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.samples.append(self.sample())
            stop.wait(self.every)


def cpu_between(first: Sample, last: Sample) -> float:
    """CPU seconds used between two samples (a process born in between counts from zero)."""
    return sum(value - first.cpu.get(key, 0.0) for key, value in last.cpu.items())


def declared_cpus(notebook: Path) -> int:
    source = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "raycourse.start":
            return next((ast.literal_eval(k.value) for k in node.keywords if k.arg == "num_cpus"), 4)
    return 0


def measure_idle(info: dict, seconds: float, every: float) -> tuple[float, float]:
    """The idle cluster's CPU use (cores) and size (PSS bytes)."""
    meter, stop = Meter(info["pid"], every=every), threading.Event()
    thread = threading.Thread(target=meter.run, args=(stop,))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    first, last = meter.samples[0], meter.samples[-1]
    return cpu_between(first, last) / (last.when - first.when), max(s.cluster_pss for s in meter.samples)


def measure_lesson(info: dict, notebook: Path, idle_cores: float, idle_pss: float, every: float) -> dict:
    env = {**os.environ, "RAY_ADDRESS": info["address"], "RAY_AUTH_MODE": "token", "RAYCOURSE_KEEP_ADDRESS": "1",
           "COURSE_DASHBOARD": "0", "RAYCOURSE_PROGRESS_DIR": "off"}
    env.pop("RAYCOURSE_LEARNER", None)
    started = time.monotonic()
    runner = subprocess.Popen([sys.executable, "-m", "raycourse.tools.execute", str(notebook.relative_to(ROOT)),
                               "--runs", "1", "--jobs", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    meter, stop = Meter(info["pid"], runner.pid, every), threading.Event()
    thread = threading.Thread(target=meter.run, args=(stop,))
    thread.start()
    output = runner.communicate()[0]
    stop.set()
    thread.join()
    wall = time.monotonic() - started
    samples = meter.samples
    used = max(0.0, cpu_between(samples[0], samples[-1]) - idle_cores * (samples[-1].when - samples[0].when))
    windows = [cpu_between(a, b) / (b.when - a.when) - idle_cores
               for i, a in enumerate(samples) for b in samples[i + 1:i + 2 + int(5 / every)][-1:] if b.when > a.when]
    return {"lesson": notebook.stem, "ok": runner.returncode == 0, "wall_s": wall, "cpu_s": used,
            "mean_cores": used / wall, "peak_cores": max(windows, default=0.0), "declared_cpus": declared_cpus(notebook),
            "kernel_mb": max(s.kernel_pss for s in samples) / 2**20,
            "cluster_mb": max(0.0, max(s.cluster_pss for s in samples) - idle_pss) / 2**20,
            "output": output.strip().splitlines()[-1:] if output else []}


def class_table(per_learner_cores: float, per_learner_gb: float, kernel_gb: float, declared: int) -> list[str]:
    rows = ["| learners | task nodes (8 vCPU, 32 GB) | logical CPUs | vCPUs busy at peak | memory (tasks + kernels) |",
            "|---:|---:|---:|---:|---:|"]
    for learners in (10, 30, 100):
        by_logical = math.ceil(learners / LEARNERS_PER_NODE)
        by_cores = math.ceil(learners * per_learner_cores / NODE_VCPUS)
        by_memory = math.ceil(learners * per_learner_gb / NODE_GB)
        nodes = max(by_logical, by_cores, by_memory)
        rows.append(f"| {learners} | {nodes} | {learners * declared} | {learners * per_learner_cores:.0f} | "
                    f"{learners * per_learner_gb:.0f} GB + {learners * kernel_gb:.0f} GB |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", nargs="*", default=None, help="two-digit lesson numbers (default: every lesson)")
    parser.add_argument("--samples", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds to measure the idle cluster")
    args = parser.parse_args()
    notebooks = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if args.lessons:
        notebooks = [n for n in notebooks if n.name[:2] in set(args.lessons)]
    with running_workshop() as info:
        idle_cores, idle_pss = measure_idle(info, args.idle, args.samples)
        print(f"idle cluster: {idle_cores:.2f} cores, {idle_pss / 2**20:,.0f} MB (2 nodes, the board)", flush=True)
        results = []
        for notebook in notebooks:
            result = measure_lesson(info, notebook, idle_cores, idle_pss, args.samples)
            results.append(result)
            print(f"{result['lesson']:<28} {'ok' if result['ok'] else 'FAILED':6} {result['wall_s']:6.0f} s wall "
                  f"{result['cpu_s']:7.1f} CPU-s  mean {result['mean_cores']:.2f} / peak {result['peak_cores']:.2f} "
                  f"cores  kernel {result['kernel_mb']:5.0f} MB  cluster +{result['cluster_mb']:5.0f} MB  "
                  f"declares {result['declared_cpus']} CPUs", flush=True)
    load = os.getloadavg()[0]
    good = [r for r in results if r["ok"]] or results
    cores = max(r["peak_cores"] for r in good)
    memory_gb = max(r["cluster_mb"] for r in good) / 1024
    kernel_gb = max(r["kernel_mb"] for r in good) / 1024
    declared = max(r["declared_cpus"] for r in good)
    print(f"\nper learner (the heaviest lesson; load average {load:.1f} on {os.cpu_count()} cores): "
          f"{cores:.2f} cores at peak, {max(r['mean_cores'] for r in good):.2f} on average; "
          f"{memory_gb * 1024:,.0f} MB on the cluster and {kernel_gb * 1024:,.0f} MB for the kernel; "
          f"{declared} logical CPUs declared")
    print("\n".join(class_table(cores, memory_gb, kernel_gb, declared)))


if __name__ == "__main__":
    main()
