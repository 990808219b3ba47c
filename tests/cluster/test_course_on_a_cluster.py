"""The course on a real multi-node Ray cluster, as in a workshop.

Starts `raycourse-workshop` (a head node and a worker node, token authentication
on), runs the solution notebooks of the lessons a cluster changes against it through RAY_ADDRESS with strict
checks, three learners at a time (which is what a workshop is), then stops the
cluster and proves that exactly the processes it started are gone. Also proves that a stale
``ray_current_cluster`` file cannot make a lesson's start hang.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("RAYCOURSE_TEST_OUT", ROOT / "build" / "test"))


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.fixture(scope="module")
def workshop_cluster():
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen([sys.executable, "-m", "raycourse.tools.workshop", "--json"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    line = process.stdout.readline()  # the cluster prints one JSON line once every node is up
    if not line:
        process.kill()
        pytest.fail(f"the workshop cluster did not start (exit code {process.wait(30)})")
    info = json.loads(line)
    started = _descendants(process.pid)
    yield info
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0
    gone, alive = psutil.wait_procs(started, timeout=60)
    assert not alive, f"processes of the workshop cluster still alive: {[p.pid for p in alive]}"


def test_the_solutions_as_several_learners_at_once(workshop_cluster):
    """A workshop: every solution notebook, three at a time, each kernel a learner joined to the one cluster."""
    log = OUT / "cluster.jsonl"
    OUT.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    env = {**os.environ, "RAY_ADDRESS": workshop_cluster["address"], "RAY_AUTH_MODE": "token",
           "RAYCOURSE_KEEP_ADDRESS": "1"}
    # The lessons whose behaviour a multi-node cluster changes: joining it (00), tasks that submit tasks
    # across nodes (02), resources the workshop declares (05), actors placed on either node (07). Every
    # lesson runs on a local Ray in the solutions stage; RAYCOURSE_CLUSTER_LESSONS=all runs all of them here.
    wanted = os.environ.get("RAYCOURSE_CLUSTER_LESSONS", "00 02 05 07").split()
    notebooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")
                       if wanted == ["all"] or p.name[:2] in wanted)
    assert notebooks, f"no solution notebook for RAYCOURSE_CLUSTER_LESSONS={wanted}"
    result = subprocess.run(
        [sys.executable, "-m", "raycourse.tools.execute", *notebooks, "--strict", "--jobs",
         os.environ.get("RAYCOURSE_CLUSTER_LEARNERS", "3"), "--log", str(log)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400,
    )
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    records = [json.loads(line) for line in log.read_text().splitlines() if '"status"' in line]
    assert records and all(r["status"] == "correct" for r in records)
    assert "connected to the cluster" not in result.stdout  # quiet: nothing leaks into the runner's output


def test_a_lesson_without_the_resources_it_needs_says_what_is_missing(workshop_cluster):
    code = ("import raycourse\n"
            "try:\n    raycourse.start(num_cpus=1, resources={'TPU_pod': 1})\n"
            "except raycourse.CourseSetupError as e:\n    print('MISSING:', e)\n")
    env = {**os.environ, "RAY_ADDRESS": workshop_cluster["address"], "RAY_AUTH_MODE": "token"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300).stdout
    assert "MISSING:" in out and "TPU_pod: needs 1, has 0" in out


def test_stale_cluster_file_does_not_hang_a_lesson(tmp_path_factory):
    temp = Path(tempfile_short())
    (temp / "ray").mkdir(parents=True)
    (temp / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")  # a cluster that was killed
    env = {**os.environ, "RAY_TMPDIR": str(temp), "RAY_AUTH_MODE": "token", "COURSE_DASHBOARD": "0"}
    env.pop("RAY_ADDRESS", None)
    code = "import raycourse\ns = raycourse.start(num_cpus=1, warm=False)\nprint('STARTED', s.connected_to_existing)\nraycourse.stop()\n"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert "STARTED False" in result.stdout, result.stderr[-2000:]
    assert not (temp / "ray" / "ray_current_cluster").exists()


def tempfile_short() -> str:
    """A short temporary folder: Ray's socket paths must stay under the 107-byte limit."""
    import tempfile

    return tempfile.mkdtemp(prefix="rc", dir="/tmp")
