"""The class deployments in deploy/: valid for the tools that read them, and offering what the lessons declare.

No network here, so no cluster: the cluster-launcher file is validated against
the JSON schema Ray ships (and Ray's own config preparation), the KubeRay
manifest is parsed and its structure checked. Both must offer, per learner, what
``raycourse-workshop`` offers one learner on the local cluster (the union of what
every lesson's ``raycourse.start(...)`` declares), keep token authentication on,
never carry a token, and run the class board.
"""
from __future__ import annotations

import json
import math
import re
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml

from raycourse.tools.workshop import COURSE_CUSTOM_RESOURCES, COURSE_RESOURCES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RAY_VERSION = metadata.version("ray")
PER_LEARNER = {**COURSE_RESOURCES, **COURSE_CUSTOM_RESOURCES}  # what one learner's lessons may ask at once
TOKEN_LIKE = re.compile(r"\b[0-9a-f]{32,}\b|RAY_AUTH_TOKEN\s*[:=]\s*['\"]?\w{8,}")


@pytest.fixture(scope="module")
def launcher() -> dict:
    return yaml.safe_load((DEPLOY / "cluster.yaml").read_text())


@pytest.fixture(scope="module")
def kuberay() -> dict:
    return yaml.safe_load((DEPLOY / "kuberay-raycluster.yaml").read_text())


def learners_per_node(resources: dict[str, float]) -> int:
    """How many learners one node serves at once at the lessons' widest (the scarcest resource decides)."""
    return min(math.floor(resources.get(name, 0) / amount) for name, amount in PER_LEARNER.items())


# --- the cluster launcher ---------------------------------------------------------------------------

def test_the_launcher_config_is_valid_for_rays_schema(launcher):
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(launcher, schema)


def test_the_launcher_config_survives_rays_own_preparation(launcher):
    """Ray fills in the provider's defaults, then validates again (as `ray up` does before it touches AWS)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(json.loads(json.dumps(launcher)))
    validate_config(prepared)
    assert prepared["head_node_type"] == "head" and set(prepared["available_node_types"]) == {"head", "learners"}


def test_the_launcher_offers_what_the_lessons_declare(launcher):
    types = launcher["available_node_types"]
    assert types["head"]["resources"] == {"CPU": 0}, "no task competes with the kernels on the head"
    workers = types["learners"]
    assert learners_per_node(workers["resources"]) == 4
    assert workers["resources"]["CPU"] == 4 * PER_LEARNER["CPU"]
    assert 1 <= workers["min_workers"] <= workers["max_workers"] <= launcher["max_workers"]


def test_the_launcher_keeps_token_auth_on_and_runs_the_board(launcher):
    starts = launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"]
    ray_starts = [c for c in starts if "ray start" in c]
    assert len(ray_starts) == 2 and all("RAY_AUTH_MODE=token" in c for c in ray_starts)
    assert launcher["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token", "the token comes from the instructor"
    board = [c for c in launcher["head_start_ray_commands"] if "raycourse-workshop --attach" in c]
    assert len(board) == 1 and "--board-port 8270" in board[0] and "RAY_AUTH_MODE=token" in board[0]
    assert not any(re.search(r"\bray stop\b", c) for c in starts), "the course never stops every Ray on a machine"
    assert "--dashboard-host=127.0.0.1" in ray_starts[0]
    assert any("pins.py requirements" in c for c in launcher["setup_commands"]), "the course's pinned versions"


# --- KubeRay -------------------------------------------------------------------------------------

def _containers(group: dict) -> dict[str, dict]:
    return {c["name"]: c for c in group["template"]["spec"]["containers"]}


def _resources(start_params: dict) -> dict[str, float]:
    resources = {"CPU": float(start_params.get("num-cpus", 0)), "GPU": float(start_params.get("num-gpus", 0))}
    if "resources" in start_params:
        resources.update(json.loads(json.loads(start_params["resources"])))  # KubeRay's quoted JSON string
    return resources


def test_the_manifest_is_a_raycluster_for_this_ray_with_token_auth(kuberay):
    assert kuberay["apiVersion"] == "ray.io/v1" and kuberay["kind"] == "RayCluster"
    spec = kuberay["spec"]
    assert spec["rayVersion"] == RAY_VERSION
    assert spec["authOptions"]["mode"] == "token" and spec["authOptions"]["secretName"]
    assert spec["enableInTreeAutoscaling"] is False
    assert set(spec) >= {"headGroupSpec", "workerGroupSpecs"}


def test_every_pod_runs_the_course_image_and_every_sidecar_has_the_token(kuberay):
    spec = kuberay["spec"]
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    secret = spec["authOptions"]["secretName"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{RAY_VERSION}-py311" in dockerfile
    for group in groups:
        for name, container in _containers(group).items():
            assert container["image"].endswith("/raycourse:0.2.0"), name
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests), name
            if not name.startswith("ray-"):  # sidecars: KubeRay only sets the token in Ray's own container
                env = {e["name"]: e for e in container.get("env", [])}
                assert env["RAY_AUTH_MODE"]["value"] == "token", name
                assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "auth_token"}
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            if len(_containers(group)) > 1:
                assert "/tmp/ray" in mounts, f"{name}: a driver beside a raylet needs its sockets"


def test_the_head_runs_the_board_and_no_tasks(kuberay):
    head = kuberay["spec"]["headGroupSpec"]
    assert _resources(head["rayStartParams"])["CPU"] == 0
    assert head["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    board = _containers(head)["class-board"]
    assert board["command"][:3] == ["raycourse-workshop", "--attach", "127.0.0.1:6379"]
    assert board["command"][3:] == ["--board-port", "8270"]


def test_the_task_pods_offer_what_the_lessons_declare(kuberay):
    groups = {g["groupName"]: g for g in kuberay["spec"]["workerGroupSpecs"]}
    tasks = groups["tasks"]
    resources = _resources(tasks["rayStartParams"])
    assert learners_per_node(resources) == 4, resources
    assert tasks["minReplicas"] <= tasks["replicas"] <= tasks["maxReplicas"]
    cpu_limit = float(_containers(tasks)["ray-worker"]["resources"]["limits"]["cpu"])
    assert resources["CPU"] == 4 * cpu_limit, "4 logical CPUs per core: the lessons' tasks mostly sleep"


def test_each_learner_gets_a_kernel_pod_beside_a_raylet(kuberay):
    learners = {g["groupName"]: g for g in kuberay["spec"]["workerGroupSpecs"]}["learners"]
    assert _resources(learners["rayStartParams"])["CPU"] == 0, "kernels' pods run no tasks"
    lab = _containers(learners)["jupyterlab"]
    env = {e["name"]: e.get("value") for e in lab["env"]}
    assert env["RAY_ADDRESS"] == "raycourse-class-head-svc:6379"
    assert lab["command"][:2] == ["jupyter", "lab"]


@pytest.mark.parametrize("name", ["cluster.yaml", "kuberay-raycluster.yaml", "Dockerfile"])
def test_no_token_is_written_in_a_deployment_file(name):
    assert not TOKEN_LIKE.search((DEPLOY / name).read_text()), "tokens come from ~/.ray/auth_token or a Secret"
