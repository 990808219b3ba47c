"""Find the Ray processes on this machine, so tests can prove they leaked none.

Ray's command-line stop kills every Ray process on the machine, other people's
included,
so the course never uses it. Instead the test suite snapshots the Ray
processes before it starts and, at the end, reports any that appeared since
and are still alive: those are the suite's own leaks.

    raycourse-procs snapshot FILE   # record the Ray processes now
    raycourse-procs leaked FILE     # list new ones; exit 1 if any
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil

# Ray's long-lived processes; workers ("ray::IDLE", "ray::f") die with their raylet.
RAY_MARKERS = ("gcs_server", "raylet", "ray::", "dashboard/agent.py", "dashboard/dashboard.py", "log_monitor.py", "monitor.py --logs-dir", "runtime_env/agent")


def ray_processes() -> dict[int, str]:
    """pid -> command line of every running process that looks like part of Ray."""
    found = {}
    for process in psutil.process_iter(["pid", "cmdline", "name"]):
        try:
            command = " ".join(process.info["cmdline"] or [process.info["name"] or ""])
        except (psutil.Error, TypeError):
            continue
        if any(marker in command for marker in RAY_MARKERS) and "raycourse.procs" not in command and "raycourse-procs" not in command:
            found[process.info["pid"]] = command[:200]
    return found


def leaked(snapshot: dict[int, str]) -> dict[int, str]:
    """Ray processes alive now that were not in ``snapshot``."""
    return {pid: cmd for pid, cmd in ray_processes().items() if pid not in snapshot}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"snapshot", "leaked"}:
        print("usage: raycourse-procs snapshot|leaked FILE", file=sys.stderr)
        return 2
    command, path = argv[0], Path(argv[1])
    if command == "snapshot":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({str(k): v for k, v in ray_processes().items()}))
        return 0
    before = {int(k): v for k, v in json.loads(path.read_text()).items()}
    extra = leaked(before)
    for pid, cmd in sorted(extra.items()):
        print(f"{pid}: {cmd}")
    return 1 if extra else 0


def cli() -> int:
    """The ``raycourse-procs`` console command."""
    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(cli())
