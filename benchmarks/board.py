"""Benchmark: how many verdict reports per second the class board actor takes, on the two-node workshop cluster.

    .venv/bin/python benchmarks/board.py [--senders 4] [--reports 2000]

Starts ``raycourse-workshop`` (as an instructor would), then several sender
processes, each a driver joined like a learner's kernel, that send reports to the
board actor as fast as they can, exactly the way a check does (the learner-side
``classboard.send``: fire and forget), then fetch every reply. The rate is what
the actor took: reports accepted / (the last one's arrival - the moment all senders were told to go).
It is compared with the busiest a class of 100 learners gets: every learner
pressing Run All on the same lesson at once, its checks (up to 4 per lesson)
within 5 seconds, i.e. 80 reports/s. Also times the board's snapshot and page for
that class (100 learners by every exercise). Not a timed test: the machine's load
shows up in the numbers, so the line says the load.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
CLASS_PEAK = 100 * 4 / 5  # reports/s: 100 learners, 4 checks each within 5 s

SENDER = r"""
import json, os, sys, time
import ray
from raycourse import classboard
count, me = int(sys.argv[1]), int(sys.argv[2])
ray.init(address=os.environ["RAY_ADDRESS"], logging_level="ERROR", log_to_driver=False)
ray.get(classboard.send({"learner": f"warm{me}", "exercise": "00.first_task", "status": "correct", "attempt": 1, "time": 0.0}), timeout=300)
print("ready", flush=True)
sys.stdin.readline()  # start together
records = [{"learner": f"learner {me}-{i % 25}", "exercise": "00.first_task", "status": ("correct", "incorrect")[i % 2],
            "attempt": i + 1, "time": time.time()} for i in range(count)]
started = time.perf_counter()
refs = [classboard.send(r) for r in records]
replies = ray.get(refs, timeout=600)
print(json.dumps({"seconds": time.perf_counter() - started, "ok": sum(r["ok"] for r in replies)}), flush=True)
ray.shutdown()
"""


@contextlib.contextmanager
def running_workshop(*flags: str) -> Iterator[dict]:
    """``raycourse-workshop --json`` in its own session, stopped (SIGTERM) at the end; yields its JSON line."""
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen([sys.executable, "-m", "raycourse.tools.workshop", "--json", "--board-port", "0", *flags],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"the workshop did not start (exit code {process.wait()})")
        yield json.loads(line)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(300)


def senders(address: str, count: int, reports: int) -> tuple[float, list[dict]]:
    """Start ``count`` senders, let them go together; returns when they went (time.time()) and what each saw."""
    env = {**os.environ, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}
    procs = [subprocess.Popen([sys.executable, "-c", SENDER, str(reports), str(i)], cwd=ROOT, env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) for i in range(count)]
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"a sender could not join the cluster (exit code {p.wait()})")
    went = time.time()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs:
        p.wait(120)
    return went, results


def class_page_seconds(exercises: list[str]) -> tuple[float, float]:
    """Seconds for one snapshot and one page of a class of 100 learners with a verdict on every exercise."""
    from raycourse.tools.board import Board, fragment

    board = Board(exercises)
    for learner in range(100):
        for exercise in exercises:
            board.report({"learner": f"learner {learner}", "exercise": exercise, "status": "correct", "attempt": 1,
                          "time": 0.0})
    started = time.perf_counter()
    snapshot = board.snapshot()
    middle = time.perf_counter()
    fragment(snapshot)
    return middle - started, time.perf_counter() - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=4, help="driver processes sending at once")
    parser.add_argument("--reports", type=int, default=2000, help="reports per sender")
    args = parser.parse_args()
    import ray

    with running_workshop() as info:
        load = os.getloadavg()[0]
        went, results = senders(info["address"], args.senders, args.reports)
        ray.init(address=info["address"], logging_level="ERROR", log_to_driver=False)
        handle = ray.get_actor(info["board"]["name"], namespace=info["board"]["namespace"])
        stats = ray.get(handle.stats.remote(), timeout=120)
        exercises = ray.get(handle.snapshot.remote(), timeout=120)["exercises"]
        ray.shutdown()
    sent = args.senders * args.reports
    accepted = sum(r["ok"] for r in results)
    rate = (stats["accepted"] - args.senders) / (stats["last"] - went)  # from "go" to the last one the actor took
    client = sent / max(r["seconds"] for r in results)
    snapshot_s, page_s = class_page_seconds(exercises)
    print(f"board actor: {rate:,.0f} verdict reports/s accepted ({accepted:,} of {sent:,} from {args.senders} "
          f"senders; the senders saw {client:,.0f}/s end to end; load average {load:.1f} on "
          f"{os.cpu_count()} cores)")
    print(f"a class of 100 learners sends at most {CLASS_PEAK:.0f} reports/s (everyone's Run All at once): "
          f"{rate / CLASS_PEAK:,.0f}x headroom")
    print(f"100 learners x {len(exercises)} exercises: snapshot {snapshot_s * 1000:.1f} ms, page "
          f"{page_s * 1000:.1f} ms (the page polls once a second)")


if __name__ == "__main__":
    main()
