"""A two-node Ray cluster on one machine, for lesson 05's "place work on a particular node".

Why a helper: ``ray.cluster_utils.Cluster`` is Ray's own testing tool for this,
but on a small or busy machine a node can miss Ray's fixed 30 s start-up wait,
and a failed attempt leaves its half-started processes behind. :func:`start`
retries each node, stopping exactly the processes a failed attempt spawned, and
keeps the toy cluster private (``Cluster`` advertises its address in a file
that any bare ``ray.init()`` on this machine would follow).
:meth:`ToyCluster.stop` disconnects, shuts both nodes down, and ends whatever
they spawned that is still running: this kernel's processes, never anyone else's.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ..startup import (CourseSetupError, _agent_ports_chosen, _free_port, _patient_node_wait, forget_cluster_file,
                       ray_said, stop_processes)

ATTEMPTS = 3
NODE_ARGS: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 128 * 1024 * 1024}


def _descendants() -> set[int]:
    """Process ids of everything this kernel runs (Ray's node processes and their workers included)."""
    import psutil

    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def _end(pids: Iterable[int]) -> None:
    """Terminate these processes (kill those that do not stop within 10 s)."""
    import psutil

    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.Error:
            pass
    stop_processes(processes)


@contextlib.contextmanager
def _quiet_start() -> Iterator[None]:
    """Keep Ray's start-up complaints (a dashboard or raylet slow to come up) out of the cell while we retry."""
    logger = logging.getLogger("ray")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        # wait for a slow raylet longer than Ray's fixed 30 s, and give agents their ports, as raycourse.start does
        with _patient_node_wait(), _agent_ports_chosen():
            yield
    finally:
        logger.setLevel(level)


def _retry(what: str, start: Callable[[], Any]) -> Any:
    """``start()``, tried up to :data:`ATTEMPTS` times; the processes of each failed attempt are ended."""
    for attempt in range(1, ATTEMPTS + 1):
        before = _descendants()
        try:
            with _quiet_start():
                return start()
        except Exception as error:  # Ray raises a bare Exception when a node misses its start-up wait
            _end(_descendants() - before)
            if attempt == ATTEMPTS:
                raise CourseSetupError(f"The toy cluster's {what} did not start in {ATTEMPTS} attempts: this "
                                       f"machine is very busy (Ray said: {ray_said(error)}). Close other heavy "
                                       "programs and run this cell again.") from None
    raise AssertionError("unreachable")


@dataclass
class ToyCluster:
    """A head node and one worker node (separate processes on this machine), with this notebook connected."""

    cluster: Any  # the ray.cluster_utils.Cluster
    worker_node_id: str
    worker_resources: dict[str, float]
    before: frozenset[int]  # this kernel's processes before the cluster started: never ended by stop()

    @property
    def address(self) -> str:
        return self.cluster.address

    def __repr__(self) -> str:
        extra = ", ".join(f"{name} {amount:g}" for name, amount in self.worker_resources.items())
        return (f"A toy cluster at {self.address}: a head node with 1 CPU, and worker node "
                f"{self.worker_node_id[:8]} with 1 CPU and {extra}. This notebook is connected to it.")

    def stop(self) -> None:
        """Disconnect, shut both nodes down, and end whatever they left running (only their processes)."""
        import ray

        ray.shutdown()
        self.cluster.shutdown()
        _end(_descendants() - self.before)


def start(worker_resources: dict[str, float]) -> ToyCluster:
    """Start a head node and a worker node that has ``worker_resources``; connect this notebook to them.

    The notebook must not be connected to a Ray already (call ``ray.shutdown()`` first):
    a driver talks to one Ray at a time.
    """
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        raise CourseSetupError("This notebook is still connected to a Ray: call ray.shutdown() first.")
    if not worker_resources or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0
                                   for v in worker_resources.values()):
        raise ValueError(f"worker_resources should name positive amounts, e.g. {{'special_hardware': 1}}; "
                         f"got {worker_resources!r}")
    before = frozenset(_descendants())
    cluster = _retry("head node", lambda: Cluster(
        initialize_head=True, connect=False, head_node_args={**NODE_ARGS, "include_dashboard": False}))
    forget_cluster_file(cluster.address)
    # Ray's Cluster.add_node sets a worker node's dashboard agent port to "any" unless one is given; left so, the
    # raylet waits its fixed 15 s for the agent's port file and aborts on a loaded machine (see startup).
    worker = _retry("worker node", lambda: cluster.add_node(**NODE_ARGS, resources=dict(worker_resources),
                                                             dashboard_agent_listen_port=_free_port()))
    ray.init(address=cluster.address, logging_level=logging.ERROR)
    return ToyCluster(cluster, worker.node_id, dict(worker_resources), before)
