"""Execute lesson notebooks headless, as Run All does, and report what a learner would have seen.

    raycourse-execute solutions/*.ipynb --runs 2 --strict --jobs 3

Each notebook runs in its own fresh kernel; ``--runs 2`` runs all its code cells
twice in that one kernel (Run All twice in a row: the set-up cell must be
idempotent and every check must pass again). With ``--strict`` every check must
be correct (``RAYCOURSE_STRICT=1``). Verdicts are appended to ``--log`` (JSON
lines). A notebook fails if a cell raises, or if any output shows what a
learner should never see: a traceback, a warning, a raw Ray log line, or text on
stderr. Notebooks run ``--jobs`` at a time (their tasks mostly sleep).

Prints one line per notebook with its time per run, and exits 1 if any failed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What must never reach a cell's output (a Ray log line starts with a timestamp or a "(raylet)" prefix).
NOISE = re.compile(r"Traceback \(most recent call last\)|\(raylet\)|\bWARNING\b|Warning:|DeprecationWarning|"
                   r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", re.MULTILINE)
BUSY = ("timed out during startup", "Ray could not start in time", "Failed to start GCS")


@dataclass
class Outcome:
    notebook: str
    seconds: list[float] = field(default_factory=list)  # per run
    error: str = ""  # the first cell that raised: "cell 7: ExerciseNotPassed: ..."
    noise: list[str] = field(default_factory=list)  # outputs a learner should not see
    busy: bool = False  # Ray could not start: the machine, not the notebook
    trace: list[str] = field(default_factory=list)  # the end of the failing cell's traceback, for maintainers

    @property
    def ok(self) -> bool:
        return not self.error and not self.noise

    def line(self) -> str:
        runs = " + ".join(f"{s:.0f} s" for s in self.seconds)
        status = "ok" if self.ok else "FAILED"
        detail = f" {self.error}" if self.error else ""
        detail += "".join(f"\n    | {t}" for t in self.trace)
        detail += "".join(f"\n    noisy output: {n}" for n in self.noise[:5])
        return f"{status:6} {self.notebook} ({runs}){detail}"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def traceback_tail(cell: Any, lines: int = 30) -> list[str]:
    """The last ``lines`` lines of the traceback a cell raised (colours removed): where a CI failure came from."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            text = _ANSI.sub("", "\n".join(output.get("traceback", [])))
            return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    return []


def noisy_outputs(cell: Any, index: int) -> list[str]:
    """Outputs of one cell a learner should never see."""
    found = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            text = output.get("text", "")
            if output.get("name") == "stderr" and text.strip():
                found.append(f"cell {index}, stderr: {text.strip()[:160]}")
            elif NOISE.search(text):
                found.append(f"cell {index}: {NOISE.search(text).group(0)} in {text.strip()[:160]!r}")
        elif kind in ("display_data", "execute_result"):
            text = str(output.get("data", {}).get("text/plain", ""))
            if NOISE.search(text):
                found.append(f"cell {index}: {NOISE.search(text).group(0)} in {text.strip()[:160]!r}")
    return found


def local_kernels() -> Any:
    """Kernels on this machine talk over Unix sockets (IPC), not TCP: private, and without the kernel's
    "running over TCP without encryption" warning in every run's output.

    Each kernel gets its own absolute socket prefix: a relative one would be resolved in the kernel's
    working folder (the notebook's) by the kernel and in ours by the client, and they would never meet.
    """
    import tempfile
    import uuid

    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = os.path.join(tempfile.gettempdir(), f"raycourse-kernel-{uuid.uuid4().hex[:12]}")
    return config


async def run_notebook(path: Path, runs: int, strict: bool, log: Path | None, timeout: float) -> Outcome:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    outcome = Outcome(str(path))
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None) if os.environ.get("RAYCOURSE_KEEP_ADDRESS") != "1" else None
    env.update(RAYCOURSE_STRICT="1" if strict else "0", RAYCOURSE_NOTEBOOK=path.stem)
    env.setdefault("COURSE_DASHBOARD", "0")  # the dashboard's processes only slow a headless run down
    if log is not None:
        env["RAYCOURSE_GRADE_LOG"] = str(log)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                            config=local_kernels())
    async with client.async_setup_kernel(env=env):
        for run in range(runs):
            started = time.monotonic()
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    await client.async_execute_cell(cell, index)
                except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
                    if isinstance(error, CellTimeoutError):
                        what = f"still running after {timeout:g} s"
                    else:
                        lines = [t for t in str(error).strip().splitlines() if t.strip(" -")]
                        what = lines[-1] if lines else type(error).__name__
                    outcome.error = f"run {run + 1}, cell {index}: {what}"
                    outcome.trace = traceback_tail(cell)
                    # Ray could not start (its fixed waits on a loaded machine), or the start cell ran out of time
                    outcome.busy = any(b in str(error) for b in BUSY) or (
                        isinstance(error, CellTimeoutError) and "raycourse.start(" in cell.source)
                    outcome.seconds.append(time.monotonic() - started)
                    return outcome
                outcome.noise += noisy_outputs(cell, index)
            outcome.seconds.append(time.monotonic() - started)
    return outcome


async def run_all(paths: list[Path], runs: int, strict: bool, log: Path | None, jobs: int, timeout: float,
                  retry_busy: bool = True) -> list[Outcome]:
    limit = asyncio.Semaphore(jobs)

    async def guarded(path: Path) -> Outcome:
        try:
            return await run_notebook(path, runs, strict, log, timeout)
        except Exception as error:  # a kernel that would not start or died: this notebook fails, the others go on
            outcome = Outcome(str(path))
            outcome.error = f"the kernel failed: {type(error).__name__}: {str(error).strip()[:200]}"
            return outcome

    async def one(path: Path) -> Outcome:
        async with limit:
            outcome = await guarded(path)
            if outcome.busy and retry_busy:  # the machine was too busy for Ray to start: once more, not a failure yet
                outcome = await guarded(path)
            print(outcome.line(), flush=True)
            return outcome

    return list(await asyncio.gather(*(one(p) for p in paths)))


def default_jobs() -> int:
    """Notebooks at once: their tasks mostly sleep, so about one and a half per core, at least one."""
    return max(1, int(1.5 * (os.cpu_count() or 1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raycourse-execute", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=1, help="Run All this many times in one kernel (default 1)")
    parser.add_argument("--strict", action="store_true", help="every check must be correct")
    parser.add_argument("--log", type=Path, default=None, help="append every verdict to this JSON-lines file")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="notebooks at once")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per cell")
    parser.add_argument("--summary", type=Path, default=None, help="write a JSON summary here")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    started = time.monotonic()
    outcomes = asyncio.run(run_all(args.notebooks, args.runs, args.strict, args.log, max(1, args.jobs), args.timeout))
    failed = [o for o in outcomes if not o.ok]
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} notebooks ok in {time.monotonic() - started:.0f} s")
    if args.summary:
        args.summary.write_text(json.dumps([o.__dict__ for o in outcomes], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
