"""Run a small multi-node Ray cluster on this machine for a workshop, and tell learners how to join.

    python -m raycourse.workshop                 # head + 1 worker node, all the course needs
    python -m raycourse.workshop --workers 2 --cpus 8

The cluster lives as long as this command: Ctrl-C (or SIGTERM) shuts down
exactly the processes it started, and a reaper takes them down if the command
is killed. It never uses Ray's command-line stop, which would kill every Ray on
the machine.

Every lesson's ``raycourse.start(...)`` joins the cluster named by
``RAY_ADDRESS`` and checks it offers what the lesson declares (CPUs, pretend
GPUs, custom resources). :data:`COURSE_RESOURCES` is the union of what the
lessons ask for; ``tests/repo`` keeps it in step with the notebooks.

Token authentication stays on: the cluster uses the token in ``~/.ray/auth_token``
(created if missing). Learners on *this* machine find it there; learners on
other machines need ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` set to it.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

# What the course's lessons ask of a cluster: the largest request for each resource.
COURSE_RESOURCES: dict[str, float] = {"CPU": 8, "GPU": 2}
COURSE_CUSTOM_RESOURCES: dict[str, float] = {"Custom": 4, "policy_slot": 2}


def _parse_resource(text: str) -> tuple[str, float]:
    name, _, amount = text.partition("=")
    try:
        value = float(amount)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=AMOUNT (e.g. Custom=4), got {text!r}") from None
    if not name or value <= 0:
        raise argparse.ArgumentTypeError(f"expected NAME=AMOUNT with AMOUNT > 0, got {text!r}")
    return name, value


def token_path() -> Path:
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))


def ensure_token() -> Path:
    """Make sure a token exists where Ray looks for it (Ray generates one the same way)."""
    path = token_path()
    if not os.environ.get("RAY_AUTH_TOKEN") and not path.exists():
        from ray._private.authentication.authentication_token_setup import generate_and_save_token

        generate_and_save_token()
    return path


def start_cluster(cpus: int, gpus: int, workers: int, resources: dict[str, float], object_store_mb: int) -> Any:
    """Start a head node with ``resources`` and ``workers`` worker nodes; return the Cluster."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ensure_token()
    from ray.cluster_utils import Cluster

    store = object_store_mb * 1024 * 1024
    cluster = Cluster(initialize_head=True, connect=False, head_node_args=dict(
        num_cpus=cpus, num_gpus=gpus, resources=dict(resources), object_store_memory=store, include_dashboard=False))
    for index in range(workers):
        cluster.add_node(num_cpus=max(1, cpus // 2), object_store_memory=store, resources={f"worker_node_{index + 1}": 1})
    return cluster


def describe(cluster: Any) -> dict[str, Any]:
    return {"address": cluster.address, "token_file": str(token_path()), "nodes": 1 + len(cluster.worker_nodes)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m raycourse.workshop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpus", type=int, default=int(COURSE_RESOURCES["CPU"]), help="logical CPUs on the head node")
    parser.add_argument("--gpus", type=int, default=int(COURSE_RESOURCES["GPU"]), help="GPUs to declare (pretend ones are fine)")
    parser.add_argument("--workers", type=int, default=1, help="worker nodes besides the head")
    parser.add_argument("--resource", type=_parse_resource, action="append", default=[], metavar="NAME=AMOUNT",
                        help="an extra custom resource on the head node (repeatable)")
    parser.add_argument("--object-store-mb", type=int, default=600)
    parser.add_argument("--json", action="store_true", help="print one JSON line for scripts instead of instructions")
    args = parser.parse_args(argv)
    if args.cpus < 1 or args.gpus < 0 or args.workers < 0 or args.object_store_mb < 100:
        parser.error("need --cpus >= 1, --gpus >= 0, --workers >= 0 and --object-store-mb >= 100")
    resources = {**COURSE_CUSTOM_RESOURCES, **dict(args.resource)}
    cluster = start_cluster(args.cpus, args.gpus, args.workers, resources, args.object_store_mb)
    info = describe(cluster)
    if args.json:
        print(json.dumps(info), flush=True)
    else:
        print(f"A Ray cluster with {info['nodes']} nodes is running at {info['address']}.\n"
              "Learners on this machine, before `make lab`:\n"
              f"    export RAY_ADDRESS={info['address']} RAY_AUTH_MODE=token\n"
              "Learners on other machines also need the token (share it privately, never commit it):\n"
              f"    export RAY_AUTH_TOKEN=$(cat {info['token_file']})   # run on this machine, send the value\n"
              "Press Ctrl-C to shut the cluster down.", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
