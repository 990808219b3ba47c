"""Adversarial catalogue, lesson 05 (resources): answers learners write, each with the verdict it must get.

Runs on a Ray with 8 CPUs, 2 pretend GPUs and 4 units of ``Custom``, as the lesson does.
Each answer's actors are ended after its verdict, so the next answer finds both GPUs free.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import harness
from harness import Answer, assert_verdict, ids, right, starter, wrong

from raycourse.grading import Verdict

pytestmark = pytest.mark.usefixtures("no_strict")


def _shared_conftest(config):
    """tests/conftest.py, as pytest loaded it (the catalogue's own conftest.py shares its module name)."""
    wanted = Path(__file__).resolve().parents[1] / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__).resolve() == wanted:
            return plugin
    raise RuntimeError("tests/conftest.py is not loaded")


@pytest.fixture(scope="module", autouse=True)
def lesson_ray(request):
    with _shared_conftest(request.config).ray_with(num_cpus=8, num_gpus=2, resources={"Custom": 4}):
        yield


def judge(exercise: str, setup: str, answer: Answer) -> Verdict:
    return harness.judge(exercise, setup, answer)


SETUP = """
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import ray
"""

# --- 05.custom_resources ---------------------------------------------------------------------------

PLAIN_F = "def f(i):\n    time.sleep(0.3)\n    return i\n\n"
PLAIN_G = "def g(i):\n    time.sleep(0.3)\n    return i\n\n"
F = "@ray.remote\n" + PLAIN_F
G = "@ray.remote(resources={'Custom': 1})\n" + PLAIN_G
SUBMIT = """
g_refs = [g.remote(i) for i in range(8)]
f_refs = [f.remote(i) for i in range(4)]
g_results, f_results = ray.get(g_refs), ray.get(f_refs)
"""
SOLUTION = F + G + SUBMIT
NO_CUSTOM = F + "@ray.remote\n" + PLAIN_G + SUBMIT

CUSTOM_RESOURCES = [
    starter("the starter", PLAIN_F + PLAIN_G + """
g_results = [g(i) for i in range(8)]
f_results = [f(i) for i in range(4)]
""", "still run in the notebook"),
    right("the solution", SOLUTION),
    right(".options(resources=...) at call time", F + "@ray.remote\n" + PLAIN_G + """
g_refs = [g.options(resources={"Custom": 1}).remote(i) for i in range(8)]
f_refs = [f.remote(i) for i in range(4)]
g_results = ray.get(g_refs)
f_results = ray.get(f_refs)
"""),
    right("ray.remote(fn), f first, numpy arrays", PLAIN_F + PLAIN_G + """
f = ray.remote(f)
g = ray.remote(resources={"Custom": 1}, num_cpus=1)(g)
f_refs = [f.remote(i) for i in range(4)]
g_refs = [g.remote(i) for i in range(8)]
f_results = np.array(ray.get(f_refs))
g_results = np.array(ray.get(g_refs))
"""),
    right("collected with ray.wait, then fetched", SOLUTION.replace(
        "g_results, f_results = ray.get(g_refs), ray.get(f_refs)",
        "ray.wait(g_refs + f_refs, num_returns=12)\ng_results = [ray.get(r) for r in g_refs]\n"
        "f_results = [ray.get(r) for r in f_refs]")),
    right("right after an earlier wrong attempt (no Custom)", SOLUTION, before=(NO_CUSTOM,)),
    right("right after two wrong attempts (serial, then 2 CPUs)", SOLUTION, before=(
        F + G + "g_results = [ray.get(g.remote(i)) for i in range(8)]\nf_results = [ray.get(f.remote(i)) for i in range(4)]\n",
        F + "@ray.remote(num_cpus=2)\n" + PLAIN_G + SUBMIT)),
    wrong("g without the custom resource", NO_CUSTOM, "g reserves no `Custom`", "'Custom': 1"),
    wrong("g asks for 2 units", F + "@ray.remote(resources={'Custom': 2})\n" + PLAIN_G + SUBMIT,
          "2 units", "only 2 g fit"),
    wrong("g asks for half a unit", F + "@ray.remote(resources={'Custom': 0.5})\n" + PLAIN_G + SUBMIT,
          "0.5 of a unit", "8 g fit"),
    wrong("only the first four g get the custom resource", F + "@ray.remote\n" + PLAIN_G + """
g_refs = [g.options(resources={"Custom": 1}).remote(i) for i in range(4)] + [g.remote(i) for i in range(4, 8)]
f_refs = [f.remote(i) for i in range(4)]
g_results, f_results = ray.get(g_refs), ray.get(f_refs)
""", "4 g tasks of 8 reserved no `Custom`"),
    wrong("f also asks for Custom", "@ray.remote(resources={'Custom': 1})\n" + PLAIN_F + G + SUBMIT,
          "f also asks for `Custom`"),
    wrong("Custom given to f instead of g", "@ray.remote(resources={'Custom': 1})\n" + PLAIN_F + "@ray.remote\n"
          + PLAIN_G + SUBMIT, "g reserves no `Custom`", "gave it to f"),
    wrong("g reserves two CPUs instead", F + "@ray.remote(num_cpus=2)\n" + PLAIN_G + SUBMIT,
          "g reserves 2 CPUs instead of a unit of `Custom`", "not with CPUs"),
    wrong("g reserves two CPUs as well", F + "@ray.remote(num_cpus=2, resources={'Custom': 1})\n" + PLAIN_G + SUBMIT,
          "g reserves 2 CPUs", "not with CPUs"),
    wrong("tasks run serially", F + G + """
g_results = [ray.get(g.remote(i)) for i in range(8)]
f_results = [ray.get(f.remote(i)) for i in range(4)]
""", "waited", "before it had submitted all twelve"),
    wrong("g fetched before f is submitted", F + G + """
g_results = ray.get([g.remote(i) for i in range(8)])
f_results = ray.get([f.remote(i) for i in range(4)])
""", "before it had submitted all twelve"),
    wrong("values typed next to decoy tasks", F + G + """
g_refs = [g.remote(i) for i in range(8)]
f_refs = [f.remote(i) for i in range(4)]
ray.wait(g_refs + f_refs, num_returns=12)
g_results, f_results = list(range(8)), list(range(4))
""", "never fetched"),
    wrong("values computed in the driver", F + G + """
g_results = [g._function(i) for i in range(8)]
f_results = [f._function(i) for i in range(4)]
""", "no g task ran", "computed"),
    wrong("refs instead of values", F + G + """
g_results = [g.remote(i) for i in range(8)]
f_results = [f.remote(i) for i in range(4)]
""", "ObjectRefs"),
    wrong("threads in the notebook", PLAIN_F + PLAIN_G + """
with ThreadPoolExecutor(8) as pool:
    g_results = list(pool.map(g, range(8)))
    f_results = list(pool.map(f, range(4)))
""", "threads", "Ray tasks only"),
    wrong("only four g submitted", F + G + """
g_refs = [g.remote(i) for i in range(4)]
f_refs = [f.remote(i) for i in range(4)]
g_results = ray.get(g_refs) * 2
f_results = ray.get(f_refs)
""", "g_results"),
]


@pytest.mark.parametrize("answer", CUSTOM_RESOURCES, ids=ids(CUSTOM_RESOURCES))
def test_custom_resources(answer):
    assert_verdict(judge("05.custom_resources", SETUP, answer), answer)


# --- 05.gpu_limits ---------------------------------------------------------------------------------

PLAIN_TASK = "def gpu_task(i):\n    time.sleep(0.3)\n    return ray.get_gpu_ids()\n\n"
PLAIN_ACTOR = "class GPUActor:\n    def work(self, i):\n        time.sleep(0.3)\n        return ray.get_gpu_ids()\n\n"
# Ray ends a GPU task's worker after each call (``max_calls=1`` by default, to free GPU memory), so each one
# starts a new process (4-5 s on a busy 2-core machine). The solution keeps that default; the other answers
# reuse workers (``max_calls=0``: unlimited), which changes nothing the check judges and saves minutes.
TASK = "@ray.remote(num_gpus=1, max_calls=0)\n" + PLAIN_TASK
ACTOR = "@ray.remote(num_gpus=1)\n" + PLAIN_ACTOR
RUN = """
task_gpu_ids = ray.get([gpu_task.remote(i) for i in range(4)])
actors = [GPUActor.remote() for _ in range(2)]
actor_gpu_ids = ray.get([a.work.remote(i) for i, a in enumerate(actors)])
del actors  # each actor holds its GPU for its whole life: end them to give the GPUs back
"""
GPU_SOLUTION = "@ray.remote(num_gpus=1)\n" + PLAIN_TASK + ACTOR + RUN
HALF_TASK = "@ray.remote(num_gpus=0.5, max_calls=0)\n" + PLAIN_TASK + ACTOR + RUN

GPU_LIMITS = [
    starter("the starter", PLAIN_TASK + PLAIN_ACTOR + """
task_gpu_ids = [gpu_task(i) for i in range(4)]
actors = [GPUActor() for _ in range(2)]
actor_gpu_ids = [a.work(i) for i, a in enumerate(actors)]
""", "still run in the notebook"),
    right("the solution", GPU_SOLUTION),
    right(".options(num_gpus=1) at call time", "@ray.remote\n" + PLAIN_TASK + "@ray.remote\n" + PLAIN_ACTOR + """
task_gpu_ids = ray.get([gpu_task.options(num_gpus=1).remote(i) for i in range(4)])
actors = [GPUActor.options(num_gpus=1).remote() for _ in range(2)]
actor_gpu_ids = ray.get([a.work.remote(i) for i, a in enumerate(actors)])
del actors
"""),
    right("ray.remote(fn), ray.wait, one get per actor", PLAIN_TASK + PLAIN_ACTOR + """
gpu_task = ray.remote(num_gpus=1)(gpu_task)
GPUActor = ray.remote(num_gpus=1)(GPUActor)
refs = [gpu_task.remote(i) for i in range(4)]
ray.wait(refs, num_returns=len(refs))
task_gpu_ids = ray.get(refs)
first, second = GPUActor.remote(), GPUActor.remote()
actor_gpu_ids = [ray.get(first.work.remote(0)), ray.get(second.work.remote(1))]
ray.kill(first)
ray.kill(second)
"""),
    right("right after an earlier fractional attempt", GPU_SOLUTION, before=(HALF_TASK,)),
    wrong("fractional GPUs for the task", HALF_TASK, "num_gpus=0.5", "share each GPU"),
    wrong("the task reserves no GPU", "@ray.remote\n" + PLAIN_TASK + ACTOR + RUN, "gpu_task reserves no GPU"),
    wrong("the task asks for two GPUs", "@ray.remote(num_gpus=2, max_calls=0)\n" + PLAIN_TASK + ACTOR + RUN,
          "reserves 2 GPUs", "only 1"),
    wrong("a GPU actor without num_gpus", TASK + "@ray.remote\n" + PLAIN_ACTOR + RUN, "GPUActor reserves no GPU"),
    wrong("both actors on one GPU (half each)", TASK + "@ray.remote(num_gpus=0.5)\n" + PLAIN_ACTOR + RUN,
          "two actors share one GPU"),
    wrong("one actor called twice", TASK + ACTOR + """
task_gpu_ids = ray.get([gpu_task.remote(i) for i in range(4)])
actor = GPUActor.remote()
actors = [actor, actor]
actor_gpu_ids = ray.get([a.work.remote(i) for i, a in enumerate(actors)])
""", "same actor"),
    wrong("ids typed", TASK + ACTOR + """
refs = [gpu_task.remote(i) for i in range(4)]
ray.wait(refs, num_returns=4)
task_gpu_ids = [[0], [1], [0], [1]]
actors = [GPUActor.remote() for _ in range(2)]
actor_gpu_ids = [[0], [1]]
""", "never fetched"),
    wrong("actor ids typed", TASK + ACTOR + """
task_gpu_ids = ray.get([gpu_task.remote(i) for i in range(4)])
actors = [GPUActor.remote() for _ in range(2)]
actor_gpu_ids = [[0], [1]]
""", "No GPUActor method ran", "typed"),
    wrong("values computed in the driver", TASK + ACTOR + """
task_gpu_ids = [gpu_task._function(i) for i in range(4)]
actors = [GPUActor.remote() for _ in range(2)]
actor_gpu_ids = ray.get([a.work.remote(i) for i, a in enumerate(actors)])
""", "no gpu_task task ran"),
    wrong("tasks run serially", TASK + ACTOR + """
task_gpu_ids = [ray.get(gpu_task.remote(i)) for i in range(4)]
actors = [GPUActor.remote() for _ in range(2)]
actor_gpu_ids = ray.get([a.work.remote(i) for i, a in enumerate(actors)])
""", "before it had submitted all four"),
    wrong("refs instead of ids", TASK + ACTOR + """
task_gpu_ids = [gpu_task.remote(i) for i in range(4)]
actors = [GPUActor.remote() for _ in range(2)]
actor_gpu_ids = ray.get([a.work.remote(i) for i, a in enumerate(actors)])
""", "ObjectRefs"),
    wrong("threads in the notebook", PLAIN_TASK + PLAIN_ACTOR + """
with ThreadPoolExecutor(4) as pool:
    task_gpu_ids = list(pool.map(gpu_task, range(4)))
actors = [GPUActor() for _ in range(2)]
actor_gpu_ids = [a.work(i) for i, a in enumerate(actors)]
""", "threads"),
    wrong("a plain class for the actor", TASK + PLAIN_ACTOR + """
task_gpu_ids = ray.get([gpu_task.remote(i) for i in range(4)])
actors = [GPUActor() for _ in range(2)]
actor_gpu_ids = [a.work(i) for i, a in enumerate(actors)]
""", "plain class"),
]


@pytest.mark.parametrize("answer", GPU_LIMITS, ids=ids(GPU_LIMITS))
def test_gpu_limits(answer):
    assert_verdict(judge("05.gpu_limits", SETUP, answer), answer)
