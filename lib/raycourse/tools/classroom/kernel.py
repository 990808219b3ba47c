"""Run one prepared notebook in a fresh kernel, and take the verdicts from the kernel's own messages.

:class:`GradingClient` is nbclient's client with four changes:

* the guard's cell and the course's check cells run **silently** (no ``In[]``
  entry, no history, no ``pre_run_cell``/``post_run_cell`` hooks: a learner's
  hook never sees a check cell's source or nonce);
* the guard's key and the signed verdicts are **taken out of the message
  stream** as they arrive, so nothing a later cell does (``clear_output``, an
  ``update_display_data``) can change them, and they never reach the executed
  copy; the same kind of output anywhere else is kept as evidence of forgery;
* what a kernel may **print** into the executed copy is capped (a notebook that
  prints 100 MB must not cost the grader 100 MB), and no single message larger
  than :data:`MAX_MESSAGE` is even received;
* no signal handlers or ``atexit`` hooks of its own: the grader handles Ctrl-C
  for the whole batch and stops every kernel it started.

:func:`execute` runs the notebook with a deadline for its own cells (starting
the kernel and installing the guard have their own, :data:`SETUP_TIMEOUT`: on a
busy machine they are slow, and that is not the learner's doing), remembers the
kernel's process tree for the reaper, and reports why it stopped early, if it did.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import subprocess
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from nbclient import NotebookClient

from ..execute import local_kernels
from .reaper import Tree
from .sentinel import KEY_MIME, VERDICT_MIME

OUTPUT_LIMIT = 4_000_000  # characters of outputs kept in one executed notebook
SETUP_TIMEOUT = 300.0  # seconds for the kernel to start and the guard to install (not the learner's time)
SETTING_UP = "while the grader was setting the kernel up"
MAX_MESSAGE = 32 * 1024 * 1024  # bytes: a larger message from the kernel is dropped unread
_QUIET = logging.getLogger("raycourse.grade.nbclient")  # nbclient logs timeouts and deaths; the report says them better
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


@dataclass
class Capture:
    """What the grader took out of the kernel's messages."""

    key: str | None = None  # the guard's HMAC key (from the guard's own cell only)
    verdicts: dict[int, list[Any]] = field(default_factory=dict)  # cell index -> verdict payloads shown there
    strays: list[str] = field(default_factory=list)  # grader-only outputs that came from where they should not
    dropped: int = 0  # characters of output not kept


def _size(data: Any) -> int:
    if isinstance(data, str):
        return len(data)
    try:
        return len(json.dumps(data))
    except (TypeError, ValueError):
        return len(str(data))


class GradingClient(NotebookClient):
    """nbclient's client, for grading: see the module docstring."""

    def __init__(self, nb: Any, silent: set[int], origin: list[int | None] | None = None, output_limit: int = OUTPUT_LIMIT,
                 **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.silent, self.output_limit, self.used = set(silent), output_limit, 0
        self.origin = origin or []
        self.capture = Capture()
        self._current = -1

    def create_kernel_manager(self) -> Any:
        """The manager, whose clients refuse messages over :data:`MAX_MESSAGE` bytes before reading them.

        The client makes its own zmq context (not the manager's), so the limit is set on that one.
        """
        manager = super().create_kernel_manager()
        make_client = manager.client

        def client(**kwargs: Any) -> Any:
            made = make_client(**kwargs)
            try:
                import zmq

                made.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
            except Exception:  # an older pyzmq: the output cap below still holds
                pass
            return made

        manager.client = client
        return manager

    @asynccontextmanager
    async def async_setup_kernel(self, **kwargs: Any) -> AsyncIterator[None]:
        """nbclient's set-up, without the signal handlers and atexit hook it installs per kernel."""
        if self.km is None:
            self.km = self.create_kernel_manager()
        try:
            if not self.km.has_kernel:
                await self.async_start_new_kernel(**kwargs)
            if self.kc is None:
                await self.async_start_new_kernel_client()
            yield
        finally:
            await self._async_cleanup_kernel()

    async def async_execute_cell(self, cell: Any, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> Any:
        self._current = cell_index
        if cell_index not in self.silent or self.kc is None:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        execute = self.kc.execute
        self.kc.execute = functools.partial(execute, silent=True)
        try:
            return await super().async_execute_cell(cell, cell_index, None, False)
        finally:
            self.kc.execute = execute

    # outputs
    def _intercept(self, data: Any, cell_index: int, how: str) -> bool:
        """Take grader-only outputs out of the stream; True if ``data`` was one."""
        if not isinstance(data, dict) or not (KEY_MIME in data or VERDICT_MIME in data):
            return False
        if KEY_MIME in data and how == "display" and cell_index == 0 and self.capture.key is None:
            self.capture.key = str((data.get(KEY_MIME) or {}).get("key", ""))
        elif VERDICT_MIME in data and how == "display" and cell_index in self.silent and cell_index != 0:
            self.capture.verdicts.setdefault(cell_index, []).append(data[VERDICT_MIME])
        else:
            number = self.origin[cell_index] if 0 <= cell_index < len(self.origin) else None
            where = f"the learner's cell {number}" if number else "a cell the grader added"
            self.capture.strays.append(f"a grader-only output was shown in {where} ({how})")
        return True

    def _within_limit(self, msg: dict[str, Any]) -> bool:
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream":
            text = content.get("text", "")
            room = self.output_limit - self.used
            if len(text) > room:
                self.capture.dropped += len(text) - max(room, 0)
                if room <= 0:
                    return False
                content["text"] = text[:room] + "\n[the grader kept only the start of this notebook's output]\n"
            self.used += len(content.get("text", ""))
            return True
        size = _size(content.get("data", {}))
        if self.used + size > self.output_limit:
            self.capture.dropped += size
            return False
        self.used += size
        return True

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        data = msg.get("content", {}).get("data")
        if msg.get("msg_type") in ("display_data", "execute_result") and self._intercept(data, cell_index, "display"):
            return None
        if not self._within_limit(msg):
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
        if self._intercept(msg.get("content", {}).get("data"), self._current, "display update"):
            return
        if self._within_limit(msg):
            super()._update_display_id(display_id, msg)


# --- one run -------------------------------------------------------------------------------------


@dataclass
class Run:
    """How a notebook's execution went."""

    stopped: str | None  # why it stopped early (timed out, kernel died), else None
    reached: int  # the cell it was running when it stopped
    capture: Capture
    seconds: float = 0.0


def _snippet(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= 60 else line[:57] + "..."


async def execute(plan: Any, timeout: float, cwd: str, env: dict[str, str], tree: Tree) -> Run:
    """Run ``plan.nb`` in place within ``timeout`` seconds; the kernel's processes are recorded in ``tree``."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    started = time.monotonic()
    deadline: dict[str, float] = {}  # the notebook's own deadline starts with its first cell, after the grader's set-up

    def cell_timeout(cell: Any) -> int:
        if "at" not in deadline:
            return int(SETUP_TIMEOUT)
        return max(1, math.ceil(deadline["at"] - time.monotonic()))

    def on_cell_start(cell: Any, cell_index: int) -> None:
        tree.record(kernel_pid())
        if cell_index > 0 and "at" not in deadline:
            deadline["at"] = time.monotonic() + timeout

    client = GradingClient(
        plan.nb, plan.silent, plan.origin, kernel_name="python3", allow_errors=True, startup_timeout=int(SETUP_TIMEOUT), log=_QUIET,
        timeout_func=cell_timeout, resources={"metadata": {"path": cwd}}, on_cell_start=on_cell_start,
        config=local_kernels(),
    )

    def kernel_pid() -> int | None:
        return getattr(getattr(client.km, "provisioner", None), "pid", None) if client.km else None

    def where() -> str:
        index = client._current
        if 0 <= index < len(plan.origin) and plan.origin[index]:
            return f"in cell {plan.origin[index]} (`{_snippet(plan.nb.cells[index].source)}`)"
        checked = [e for e, i in plan.check_cell.items() if i == index]
        return f"in the check cell of {checked[0]}" if checked else SETTING_UP

    async def watch() -> None:
        while True:
            tree.record(kernel_pid())
            await asyncio.sleep(0.5)

    watcher = asyncio.ensure_future(watch())
    stopped: str | None = None
    try:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # jupyter's own warnings; learners' output reaches the notebook
        await asyncio.wait_for(client.async_execute(env=env, **quiet), timeout + 3 * SETUP_TIMEOUT)
    except (CellTimeoutError, asyncio.TimeoutError):
        limit = timeout if "at" in deadline else SETUP_TIMEOUT
        stopped = f"timed out after {limit:g} s {where()}"
    except DeadKernelError:
        stopped = f"kernel died {where()}: the code crashed Python (os._exit, a segfault or out of memory)"
    except Exception as error:  # the kernel failed to start, or nbclient failed: report it, grade the rest
        stopped = f"could not be run ({type(error).__name__}: {_snippet(str(error))})"
    finally:
        watcher.cancel()
        tree.record(kernel_pid())
        if client.km is not None:
            try:
                await client._async_cleanup_kernel()
            except Exception:  # already gone: the reaper still removes its processes
                pass
    reached = client._current if stopped else len(plan.nb.cells)
    return Run(stopped, reached, client.capture, time.monotonic() - started)
