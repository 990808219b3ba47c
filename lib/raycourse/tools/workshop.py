"""Run a small multi-node Ray cluster on this machine for a workshop, with a live class board.

    raycourse-workshop                     # head + 1 worker node, all the course needs, and the board
    raycourse-workshop --attach HOST:PORT  # only the board, on a cluster started otherwise (deploy/)

The cluster lives as long as this command. Ctrl-C (or SIGTERM) shuts down exactly
what it started; if the command is killed outright (SIGKILL), a watchdog process
stops what is left within seconds. The cluster's processes are found by
``RAYCOURSE_WORKSHOP=<random id>`` in their environment, by the process tree and
by their session folder: never by name, never with Ray's command-line stop
(which would kill every Ray on the machine).

Busy machines: Ray waits a fixed 15 s for a node's agents and 30 s for the node.
The start waits patiently for the node, gives the cluster's processes precedence
while they start (where Linux allows), and if an attempt still fails, stops what
it spawned and tries again (``--attempts``), printing one line, not a traceback.

Ray serves each node's Prometheus metrics without a token on every interface
unless the node's address is 127.0.0.1 (and a loopback node address breaks how
drivers find the cluster). So each node's agent and the head's dashboard start
through :func:`loopback_main`, which binds their metrics servers to 127.0.0.1,
and no autoscaler runs (it had the third); ``--public-metrics`` keeps Ray's
default. Token authentication stays on (``~/.ray/auth_token``).

:data:`COURSE_RESOURCES` is the union of what the lessons declare; ``tests/repo``
keeps it in step with the notebooks. The class board (:mod:`raycourse.tools.board`)
is a detached actor on the head node, its page on a loopback port.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from .workshop_processes import MARK, descendants, priority_while_starting, reap, set_subreaper, start_watchdog, sweep

# What the course's lessons ask of a cluster: the largest request for each resource.
COURSE_RESOURCES: dict[str, float] = {"CPU": 8, "GPU": 2}
COURSE_CUSTOM_RESOURCES: dict[str, float] = {"Custom": 4, "policy_slot": 2}
LOOPBACK = "127.0.0.1"
START_ATTEMPTS = 3
NODE_PATIENCE_S = 180.0  # how long a node may take to register (Ray itself waits a fixed 30 s)
BOARD_PATIENCE_S = 180.0  # how long the board actor's worker may take to start
BOARD_PORT = 8270  # the page's default port (a free one if taken)
# Ray gives a new worker process 60 s to register, then fails the learner's task; on a loaded machine a
# worker's Python start takes longer, so the workshop's raylets wait longer (existing values win).
NODE_ENVIRONMENT = {"RAY_worker_register_timeout_seconds": "300"}
METRICS_SHIM = "import raycourse.tools.workshop as w;w.loopback_main()"


class BusyMachine(RuntimeError):
    """The cluster could not start in any attempt; the message is one line for the instructor."""


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
    """Where Ray reads the cluster's token."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))


def ensure_token() -> Path:
    """Make sure a token exists where Ray looks for it (Ray generates one the same way)."""
    path = token_path()
    if not os.environ.get("RAY_AUTH_TOKEN") and not path.exists():
        from ray._private.authentication.authentication_token_setup import generate_and_save_token

        generate_and_save_token()
    return path


# --- the cluster -----------------------------------------------------------------------------------

def node_args(cpus: int, gpus: int, resources: dict[str, float], object_store_mb: int, head: bool) -> dict[str, Any]:
    """``ray.cluster_utils.Cluster`` arguments for one node of the workshop."""
    args: dict[str, Any] = dict(num_cpus=cpus, num_gpus=gpus, resources=dict(resources),
                                object_store_memory=object_store_mb * 1024 * 1024)
    if head:
        # No dashboard UI and no autoscaler (a fixed cluster needs none; one process, one metrics port fewer).
        # Ray still runs a small API server: give it a free port, since 8265 is often someone else's.
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
            args.update(include_dashboard=False, no_monitor=True, dashboard_port=sock.getsockname()[1])
    return args


@contextlib.contextmanager
def _loopback_metrics(on: bool = True) -> Iterator[None]:
    """While nodes start, have Ray launch its dashboard and each node's agent through :func:`loopback_main`."""
    import ray._private.ray_constants as constants
    import ray._private.services as services

    original = services._build_python_executable_command_memory_profileable
    serving = (constants.PROCESS_TYPE_DASHBOARD_AGENT, constants.PROCESS_TYPE_DASHBOARD)

    def build(component: str, session_dir: str, unbuffered: bool = True) -> list[str]:
        command = original(component, session_dir, unbuffered)
        return [*command, "-c", METRICS_SHIM] if component in serving else command  # python -c SHIM script.py ...

    if on:
        services._build_python_executable_command_memory_profileable = build
    try:
        yield
    finally:
        services._build_python_executable_command_memory_profileable = original


def loopback_main() -> None:
    """Run a Ray script (``sys.argv[1]``: the agent or the dashboard) with its Prometheus servers on 127.0.0.1."""
    import runpy

    import prometheus_client
    import ray._private.prometheus_exporter as exporter

    new_stats_exporter, start_http_server = exporter.new_stats_exporter, prometheus_client.start_http_server

    def stats_on_loopback(option: Any) -> Any:  # the agent's exporter
        option._address = LOOPBACK
        return new_stats_exporter(option)

    def http_on_loopback(port: int, addr: str = "0.0.0.0", *args: Any, **kwargs: Any) -> Any:  # the dashboard's
        return start_http_server(port, LOOPBACK, *args, **kwargs)

    exporter.new_stats_exporter, prometheus_client.start_http_server = stats_on_loopback, http_on_loopback
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(sys.argv[0])  # as if Python had been given the script itself
    runpy.run_path(sys.argv[0], run_name="__main__")


def _start_once(cpus: int, gpus: int, workers: int, resources: dict[str, float], object_store_mb: int,
                public_metrics: bool) -> Any:
    import ray._private.services as services
    from ray.cluster_utils import Cluster

    from raycourse.startup import _patient_node_wait, forget_cluster_file

    with _patient_node_wait(NODE_PATIENCE_S), _loopback_metrics(not public_metrics):
        cluster = Cluster(initialize_head=True, connect=False,
                          head_node_args=node_args(cpus, gpus, resources, object_store_mb, head=True))
        forget_cluster_file(cluster.address)  # other people's bare ray.init() must not join this cluster
        for index in range(workers):
            node = cluster.add_node(wait=False, **node_args(max(1, cpus // 2), 0, {f"worker_node_{index + 1}": 1},
                                                            object_store_mb, head=False))
            services.wait_for_node(node.gcs_address, node.plasma_store_socket_name, timeout=NODE_PATIENCE_S)
    return cluster


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def start_cluster(cpus: int, gpus: int, workers: int, resources: dict[str, float], object_store_mb: int,
                  mark: str, public_metrics: bool = False, attempts: int = START_ATTEMPTS,
                  say: Callable[[str], None] = lambda line: None, keep: frozenset[int] = frozenset()) -> Any:
    """Start a head node and ``workers`` worker nodes (all carrying ``mark``); retried, each failure cleaned up.

    A failed attempt's processes are this process's descendants started since the attempt began
    (orphaned agents too, once it is a subreaper) but those in ``keep`` (the watchdog), and whatever
    carries ``mark``; what ran before (another Ray in the same process, say) is never touched.
    """
    for name, value in {"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", **NODE_ENVIRONMENT}.items():
        os.environ.setdefault(name, value)
    ensure_token()
    os.environ[MARK] = mark  # inherited by every process the nodes start
    for attempt in range(1, attempts + 1):
        before = keep | {p.pid for p in descendants(os.getpid())}
        try:
            return _start_once(cpus, gpus, workers, resources, object_store_mb, public_metrics)
        except (ValueError, TypeError):
            raise  # a bad argument: trying again cannot help
        except Exception as error:  # Ray raises bare Exception, RuntimeError, TimeoutError for a slow start
            sweep(mark, also=descendants(os.getpid(), skip=before))
            reap(keep)
            from raycourse.startup import clear_stale_cluster_file

            clear_stale_cluster_file()
            if attempt == attempts:
                raise BusyMachine(f"the cluster did not start in {attempts} attempts; the machine is too busy "
                                  f"({_first_line(error)}). Close other heavy programs and run it again.") from None
            say(f"attempt {attempt} of {attempts} did not start ({_first_line(error)}); its processes are "
                "stopped, trying again.")
    raise AssertionError("unreachable")


def stop_cluster(cluster: Any, mark: str, keep: frozenset[int] = frozenset()) -> None:
    """Shut the nodes down, then stop and reap whatever they left (agents outlive their raylet)."""
    import ray

    ray.shutdown()
    with contextlib.suppress(Exception):
        cluster.shutdown()
    sweep(mark, also=descendants(os.getpid(), skip=keep))
    reap(keep)


# --- what learners and the instructor are told ---------------------------------------------------

def describe(address: str, nodes: int, server: Any, mark: str | None, public_metrics: bool,
             metrics_ports: list[int]) -> dict[str, Any]:
    """What the command prints (``--json``: one line; scripts and tests read it)."""
    from raycourse.classboard import BOARD_NAME, BOARD_NAMESPACE

    return {"address": address, "token_file": str(token_path()), "nodes": nodes, "metrics_ports": metrics_ports,
            "metrics": "all interfaces" if public_metrics else LOOPBACK, "board_url": server.url if server else None,
            "board": {"name": BOARD_NAME, "namespace": BOARD_NAMESPACE}, "mark": mark, "pid": os.getpid()}


def instructions(info: dict[str, Any]) -> str:
    lines = [f"A Ray cluster with {info['nodes']} nodes is running at {info['address']}." if info["mark"] else
             f"Serving the class board of the cluster at {info['address']}.",
             "Learners, before `make lab` (RAYCOURSE_LEARNER is the name the class board shows):",
             f"    export RAY_ADDRESS={info['address']} RAY_AUTH_MODE=token RAYCOURSE_LEARNER='Your Name'",
             "Learners' kernels must run on this machine (a Ray driver needs a node of the cluster beside it)."]
    if info["board_url"]:
        lines.append(f"Class board (keep the address private; it holds a key): {info['board_url']}")
    lines.append("Press Ctrl-C to " + ("shut the cluster down." if info["mark"] else "stop serving the board."))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raycourse-workshop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpus", type=int, default=int(COURSE_RESOURCES["CPU"]), help="logical CPUs on the head node")
    parser.add_argument("--gpus", type=int, default=int(COURSE_RESOURCES["GPU"]), help="GPUs to declare (pretend ones are fine)")
    parser.add_argument("--workers", type=int, default=1, help="worker nodes besides the head")
    parser.add_argument("--resource", type=_parse_resource, action="append", default=[], metavar="NAME=AMOUNT",
                        help="an extra custom resource on the head node (repeatable)")
    parser.add_argument("--object-store-mb", type=int, default=600)
    parser.add_argument("--attempts", type=int, default=START_ATTEMPTS, help="starts to try on a busy machine")
    parser.add_argument("--public-metrics", action="store_true", help="serve Ray's Prometheus metrics (no token) on "
                        "every interface, as Ray does by default, instead of on 127.0.0.1 only")
    parser.add_argument("--board-port", type=int, default=BOARD_PORT, help="the class board page's port (0: any free one)")
    parser.add_argument("--attach", metavar="ADDRESS", help="start no cluster: serve the board of the cluster at ADDRESS")
    parser.add_argument("--json", action="store_true", help="print one JSON line for scripts instead of instructions")
    args = parser.parse_args(argv)
    if args.cpus < 1 or args.gpus < 0 or args.workers < 0 or args.object_store_mb < 100 or args.attempts < 1:
        parser.error("need --cpus >= 1, --gpus >= 0, --workers >= 0, --object-store-mb >= 100 and --attempts >= 1")
    logging.getLogger("ray").setLevel(logging.ERROR)  # Ray's start-up chatter is not for the instructor's terminal

    def say(line: str) -> None:
        print(f"raycourse-workshop: {line}", file=sys.stderr, flush=True)

    from . import board

    done = threading.Event()
    mark = None if args.attach else uuid.uuid4().hex
    watchdog = cluster = None
    try:
        if args.attach:
            os.environ.setdefault("RAY_AUTH_MODE", "token")
            address = args.attach
            server = board.serve(address, args.board_port, say, BOARD_PATIENCE_S)
            import ray

            alive = [n for n in ray.nodes() if n["Alive"]] if ray.is_initialized() else []
            nodes, ports = len(alive), [n.get("MetricsExportPort") for n in alive]
        else:
            set_subreaper()
            watchdog = start_watchdog(mark)
            resources = {**COURSE_CUSTOM_RESOURCES, **dict(args.resource)}
            with priority_while_starting():
                cluster = start_cluster(args.cpus, args.gpus, args.workers, resources, args.object_store_mb, mark,
                                        args.public_metrics, args.attempts, say, keep=frozenset({watchdog.pid}))
                address, nodes = cluster.address, 1 + len(cluster.worker_nodes)
                ports = [node.metrics_export_port for node in cluster.list_all_nodes()]
                server = board.serve(address, args.board_port, say, BOARD_PATIENCE_S)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: done.set())
        info = describe(address, nodes, server, mark, args.public_metrics, ports)
        print(json.dumps(info) if args.json else instructions(info), flush=True)
        done.wait()
        if server is not None:
            server.shutdown()
            server.poller.stop()
        return 0
    except BusyMachine as error:
        say(str(error))
        return 1
    except KeyboardInterrupt:
        say("interrupted; stopping what was started.")
        return 130
    except Exception as error:  # one clear line, never a traceback
        say(f"could not start: {_first_line(error)}")
        return 1
    finally:
        keep = frozenset({watchdog.pid}) if watchdog is not None else frozenset()
        if cluster is not None:
            stop_cluster(cluster, mark, keep)
        elif mark is not None:
            sweep(mark, also=descendants(os.getpid(), skip=keep))
        else:
            import ray

            ray.shutdown()  # --attach: disconnect; the detached board actor stays for the next time
        if watchdog is not None:
            with contextlib.suppress(Exception):
                watchdog.stdin.close()
                watchdog.wait(timeout=60)
            reap()


if __name__ == "__main__":
    sys.exit(main())
