"""Leave nothing behind: every process a graded notebook started is gone when its grading ends.

A learner's notebook can start processes that outlive its kernel: Ray's own
(when it starts a Ray of its own), workers on the batch's shared Ray, a
``subprocess`` that ignores the end of its parent, or a double-forked one
(``setsid``) that is no longer anyone's child. Three nets catch them, none of
which can touch anybody else's processes:

* **a mark in the environment**: every kernel, and through Ray's job config
  every Ray worker of its job, carries ``RAYCOURSE_GRADE_RUN=<random id>``;
  children inherit it, setsid or not;
* **the process tree**: the kernel's descendants, remembered while it runs
  (pid and start time, so a reused pid is never mistaken for one of them);
* **the grader as subreaper** (Linux ``PR_SET_CHILD_SUBREAPER``): an orphaned
  descendant, double-forked or not, becomes the grader's own child instead of
  init's, so one that also cleared its environment is still found.

:meth:`Reaper.end` lets marked processes exit on their own for a moment, then
terminates and finally kills them, and reaps the orphans it adopted. Marks of
runs still going (other kernels, the shared Ray) are never swept.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
import uuid
from typing import Any

import psutil

MARK = "RAYCOURSE_GRADE_RUN"
_PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on: bool = True) -> bool:
    """Adopt orphaned descendants (Linux); returns False where the system has no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class Tree:
    """A process and its descendants, remembered as they appear (a dead kernel's children are orphans)."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}  # pid -> create_time

    def record(self, pid: int | None) -> None:
        if not pid:
            return
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                self.seen.setdefault(process.pid, process.create_time())
        except psutil.Error:
            pass

    def alive(self) -> list[psutil.Process]:
        found = []
        for pid, created in list(self.seen.items()):
            try:
                process = psutil.Process(pid)
                if process.create_time() == created:
                    found.append(process)
            except psutil.Error:
                pass
        return found


def _mark_of(process: psutil.Process) -> str | None:
    try:
        return process.environ().get(MARK)
    except (psutil.Error, OSError):
        return None


class Reaper:
    """The batch's process bookkeeping: marks handed out, marks still running, the grader's adopted orphans."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.subreaper = set_subreaper(True)
        self.before = {p.pid for p in self._children()}  # the grader's children before the batch: never ours to touch
        self.active: set[str] = set()
        self._lock = threading.Lock()

    def new_mark(self, kind: str = "run") -> str:
        """A fresh mark, active until :meth:`end` (register it *before* starting what carries it)."""
        mark = f"{kind}-{uuid.uuid4().hex}"
        with self._lock:
            self.active.add(mark)
        return mark

    def _children(self) -> list[psutil.Process]:
        try:
            return self.me.children()
        except psutil.Error:
            return []

    def _targets(self, mark: str, tree: Tree | None) -> list[psutil.Process]:
        with self._lock:
            active = set(self.active) - {mark}
        found: dict[int, psutil.Process] = {p.pid: p for p in (tree.alive() if tree else [])}
        for process in psutil.process_iter():
            if process.pid != self.me.pid and _mark_of(process) == mark:
                found.setdefault(process.pid, process)
        for orphan in self._children():
            if orphan.pid not in self.before and _mark_of(orphan) not in active:
                found.setdefault(orphan.pid, orphan)  # adopted, and nobody's still-running process
        return [p for p in found.values() if _mark_of(p) not in active]

    def end(self, mark: str, tree: Tree | None = None, grace: float = 3.0) -> int:
        """Stop every process of the run ``mark`` (and adopted orphans); return how many had to be stopped."""
        with self._lock:
            self.active.discard(mark)
        targets = [p for p in self._targets(mark, tree) if _alive(p)]
        stopped = 0
        for signal_them, wait in ((None, grace), ("terminate", 3.0), ("kill", 2.0)):
            for process in targets if signal_them else []:
                try:
                    getattr(process, signal_them)()
                    stopped += signal_them == "terminate"
                except psutil.Error:
                    pass
            _, targets = psutil.wait_procs(targets, timeout=wait)
            targets = [p for p in targets if _alive(p)]
            if not targets:
                break
        self.reap()
        return stopped

    def reap(self) -> None:
        """Collect the exit status of adopted orphans that have ended (they would linger as zombies)."""
        for child in self._children():
            if child.pid in self.before:
                continue
            try:
                if child.status() == psutil.STATUS_ZOMBIE and _mark_of(child) not in self.active:
                    os.waitpid(child.pid, os.WNOHANG)
            except (psutil.Error, ChildProcessError, OSError):
                pass

    def close(self) -> None:
        """The end of the batch: sweep what is left of ours, stop adopting."""
        with self._lock:
            marks = set(self.active)
        for mark in marks:
            self.end(mark, grace=1.0)
        self.end("", grace=0.5)
        if self.subreaper:
            set_subreaper(False)


def _alive(process: Any) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
