"""The start routes that are not `make lab`: a kernel started without RAY_AUTH_MODE (conda, JupyterHub, a plain
`jupyter lab`) must run lesson 00 in the browser as well as `make lab` does.

Ray reads RAY_AUTH_MODE when it is imported, and the lessons import Ray before the course's helpers; the
course must still start a Ray whose processes agree about authentication.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import psutil
from conftest import CHROMIUM_ARGS, MARKER_VARIABLE, processes_marked, start_lab, stop_lab
from learner import run_lessons

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("RAYCOURSE_TEST_OUT", ROOT / "build" / "test"))


def kernel_environments(marker: str) -> list[dict[str, str]]:
    found = []
    for pid, command in processes_marked(marker).items():
        if "ipykernel" in command:
            try:
                found.append(psutil.Process(pid).environ())
            except psutil.Error:
                pass
    return found


def test_lesson00_in_a_kernel_started_without_ray_auth_mode(chromium_path, tmp_path):
    server, marker = start_lab(tmp_path, {"RAY_AUTH_MODE": None, "RAYCOURSE_GRADE_LOG": None})
    environments: list[dict[str, str]] = []

    async def run() -> list:
        async def watch() -> None:
            while not environments:
                environments.extend(kernel_environments(marker))
                await asyncio.sleep(0.5)

        watcher = asyncio.ensure_future(watch())
        try:
            return await run_lessons(server, chromium_path, ["notebooks/00_setup.ipynb"], OUT / "browser-no-auth-mode",
                                     1, CHROMIUM_ARGS)
        finally:
            watcher.cancel()

    try:
        (seen,) = asyncio.run(run())
    finally:
        leftovers = stop_lab(server, marker)
    assert environments and all(MARKER_VARIABLE in e and "RAY_AUTH_MODE" not in e for e in environments), \
        "the kernel should have started without RAY_AUTH_MODE"
    assert seen.finished and not seen.problem, (seen.problem, seen.prompts)
    assert not seen.errors, seen.errors
    assert any(status == "not attempted" for status, _ in seen.verdicts.values()), seen.verdicts
    assert not leftovers, leftovers
