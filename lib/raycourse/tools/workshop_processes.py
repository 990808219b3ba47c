"""A workshop cluster's processes: precedence while they start, finding exactly them, stopping them, the watchdog.

A workshop shares the machine with other people's Ray (and the course's own tests'), so its
processes are found by ``RAYCOURSE_WORKSHOP=<random id>`` in their environment, by the process
tree and by their session folder: never by name, never with Ray's command-line stop. The
watchdog is a separate process that sweeps them if the workshop is killed outright.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

MARK = "RAYCOURSE_WORKSHOP"  # in the environment of every process of the cluster
STARTING_NICE = -10  # the session's scheduling priority while the cluster starts (Linux autogroup)


@contextlib.contextmanager
def priority_while_starting(nice: int = STARTING_NICE, path: Path = Path("/proc/self/autogroup")) -> Iterator[bool]:
    """Give this session's processes (the cluster being started) precedence, then restore it; yields whether it could.

    On Linux a session is one scheduling group sharing the CPU fairly with every other: on a loaded
    machine a node's Python agents then miss Ray's fixed 15 s and the raylet exits. Raising the
    group's priority (where allowed, e.g. root) for the start only lets them meet it.
    """
    try:
        before = int(path.read_text().split()[-1])
        path.write_text(str(nice))
        changed = True
    except (OSError, ValueError, IndexError):
        changed = False
    try:
        yield changed
    finally:
        if changed:
            with contextlib.suppress(OSError):
                path.write_text(str(before))


def set_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so the agents a dead raylet leaves are ours to reap; False elsewhere."""
    try:
        return sys.platform.startswith("linux") and ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(process: Any) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def cluster_processes(mark: str, folders: list[Path] = ()) -> list[Any]:
    """Live processes (not this one) carrying ``MARK=mark`` in their environment, or holding a file under ``folders``.

    Ray's agents rename themselves (setproctitle), which blanks their environment for
    others to read; they still hold their logs open in the cluster's session folder.
    """
    import psutil

    roots = tuple(str(f) + os.sep for f in folders)
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if process.pid != os.getpid() and _alive(process) and (process.environ().get(MARK) == mark or (
                    roots and any(f.path.startswith(roots) for f in process.open_files()))):
                found.append(process)
    return found


def descendants(pid: int, skip: frozenset[int] = frozenset()) -> list[Any]:
    """The live descendants of ``pid`` (psutil processes know their start time: a reused pid is never hit)."""
    import psutil

    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.pid not in skip and _alive(p)]
    except psutil.Error:
        return []


def sweep(mark: str, also: Any = (), folders: list[Path] = (), grace: float = 3.0) -> int:
    """Stop :func:`cluster_processes` and ``also``: SIGTERM, ``grace`` seconds, then SIGKILL; returns how many."""
    targets = list({p.pid: p for p in [*cluster_processes(mark, folders), *also] if _alive(p)}.values())
    count = len(targets)
    for how, wait in (("terminate", grace), ("kill", 5.0)):
        for process in targets:
            with contextlib.suppress(Exception):  # psutil checks the start time: never a stranger with a reused pid
                getattr(process, how)()
        deadline = time.monotonic() + wait
        while (targets := [p for p in targets if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.1)
    return count


def reap(keep: frozenset[int] = frozenset()) -> None:
    """Collect the exit status of this process's ended children, adopted orphans too (reaping a dead raylet
    hands us its own dead children: so again, until none is left)."""
    import psutil

    for _ in range(10):
        reaped = 0
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
                if child.pid not in keep and child.status() == psutil.STATUS_ZOMBIE:
                    reaped += os.waitpid(child.pid, os.WNOHANG)[0] == child.pid
        if not reaped:
            return


def sessions_of(pid: int, since: float) -> list[Path]:
    """The Ray session folders a process created since ``since`` (Ray names them ``session_<date>_<time>_<pid>``)."""
    from raycourse.startup import _ray_temp_dir

    with contextlib.suppress(OSError):
        return [d for d in _ray_temp_dir().glob(f"session_*_{pid}") if d.is_dir() and d.stat().st_mtime >= since - 5]
    return []


def watch() -> None:
    """The watchdog (``argv``: mark, workshop pid, its start time): when the workshop's end of the pipe closes
    (it exited, or was killed outright), stop what its cluster left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is for the workshop, not for us
    mark, workshop, since = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    while os.read(sys.stdin.fileno(), 4096):
        pass
    sweep(mark, folders=sessions_of(workshop, since), grace=2.0)


def start_watchdog(mark: str) -> subprocess.Popen:
    """A process in its own session that stops the cluster's processes if this one dies without cleaning up."""
    import psutil

    env = {k: v for k, v in os.environ.items() if k != MARK}
    command = [sys.executable, "-c", "from raycourse.tools.workshop_processes import watch; watch()", mark, str(os.getpid()),
               str(psutil.Process().create_time())]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True, close_fds=True)
