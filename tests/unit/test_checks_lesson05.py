"""Lesson 05: each check passes the solution and fails realistic wrong answers with their hint.

Ray here has 8 CPUs, 2 pretend GPUs and 4 units of ``Custom``, like the lesson.
The custom-resource tests run first: once GPU tasks have run, Ray keeps separate
worker processes for them and the CPU-only pool needs time to grow back.
"""
from __future__ import annotations

import time

import pytest
import ray

from raycourse.grading import grade
from conftest import ray_with


@pytest.fixture(scope="module", autouse=True)
def resources_session():
    with ray_with(num_cpus=8, num_gpus=2, resources={"Custom": 4}):
        yield


def f(i):
    time.sleep(0.5)
    return i


def g(i):
    time.sleep(0.5)
    return i


# --- 05.custom_resources -----------------------------------------------------------


def _custom_answer(f_options=None, g_options=None, get_in_loop=False, refs=False):
    rf = ray.remote(**f_options)(f) if f_options else ray.remote(f)
    rg = ray.remote(**g_options)(g) if g_options else ray.remote(g)
    since = time.time()
    if get_in_loop:
        g_results = [ray.get(rg.remote(i)) for i in range(8)]
        f_results = [ray.get(rf.remote(i)) for i in range(4)]
    else:
        g_refs = [rg.remote(i) for i in range(8)]
        f_refs = [rf.remote(i) for i in range(4)]
        if refs:
            g_results, f_results = g_refs, f_refs
        else:
            g_results, f_results = ray.get(g_refs), ray.get(f_refs)
    answer = dict(f_results=f_results, g_results=g_results, f=rf, g=rg, since=since)
    verdict = grade("05.custom_resources", **answer)
    if refs:
        ray.get(g_refs + f_refs)
    return verdict


def test_custom_resources_correct():
    v = _custom_answer(g_options={"resources": {"Custom": 1}})
    assert v.status == "correct", v


def test_custom_resources_starter_is_not_attempted():
    v = grade("05.custom_resources", f_results=list(range(4)), g_results=list(range(8)), f=f, g=g, since=time.time())
    assert v.status == "not attempted", v


@pytest.mark.parametrize(
    "f_options, g_options, hint",
    [
        (None, None, "Up to 8 g tasks ran at once"),  # g without the custom resource
        (None, {"resources": {"Custom": 2}}, "asks for 2 units of Custom"),
        ({"resources": {"Custom": 1}}, {"resources": {"Custom": 1}}, "f also asks for Custom"),
        (None, {"num_cpus": 2}, "g asks for 2 CPUs"),
    ],
)
def test_custom_resources_wrong_declarations(f_options, g_options, hint):
    v = _custom_answer(f_options=f_options, g_options=g_options)
    assert v.status == "incorrect" and hint in v.message, v


def test_custom_resources_get_in_loop():
    v = _custom_answer(g_options={"resources": {"Custom": 1}}, get_in_loop=True)
    assert v.status == "incorrect" and "At most 1 g tasks ran at once" in v.message, v


def test_custom_resources_returned_refs():
    v = _custom_answer(g_options={"resources": {"Custom": 1}}, refs=True)
    assert v.status == "incorrect" and "ObjectRefs" in v.message, v


def test_custom_resources_hard_coded_values():
    rg = ray.remote(resources={"Custom": 1})(g)
    v = grade("05.custom_resources", f_results=list(range(4)), g_results=list(range(8)), f=ray.remote(f), g=rg, since=time.time())
    assert v.status == "incorrect" and "Ray ran 0 g and 0 f" in v.message, v


# --- 05.gpu_limits -----------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_workers():
    """Start the worker processes Ray keeps for GPU tasks, as the lesson's demo cells do before the exercise."""

    @ray.remote(num_gpus=1)
    def warm():
        time.sleep(0.5)

    ray.get([warm.remote() for _ in range(2)])


def gpu_task(i):
    time.sleep(1)
    return ray.get_gpu_ids()


class GPUActor:
    def work(self, i):
        time.sleep(1)
        return ray.get_gpu_ids()


def _gpu_answer(task_options, actor_options):
    task = ray.remote(**task_options)(gpu_task) if task_options else ray.remote(gpu_task)
    actor_class = ray.remote(**actor_options)(GPUActor) if actor_options else ray.remote(GPUActor)
    since = time.time()
    task_gpu_ids = ray.get([task.remote(i) for i in range(4)])
    actors = [actor_class.remote() for _ in range(2)]
    actor_gpu_ids = ray.get([a.work.remote(i) for i, a in enumerate(actors)])
    verdict = grade("05.gpu_limits", task_gpu_ids=task_gpu_ids, actor_gpu_ids=actor_gpu_ids, gpu_task=task,
                    GPUActor=actor_class, since=since)
    for a in actors:
        ray.kill(a)
    return verdict


@pytest.mark.usefixtures("gpu_workers")
def test_gpu_limits_correct():
    v = _gpu_answer({"num_gpus": 1}, {"num_gpus": 1})
    assert v.status == "correct", v


def test_gpu_limits_starter_is_not_attempted():
    v = grade("05.gpu_limits", task_gpu_ids=[[], [], [], []], actor_gpu_ids=[[], []], gpu_task=gpu_task,
              GPUActor=GPUActor, since=time.time())
    assert v.status == "not attempted", v


@pytest.mark.parametrize(
    "task_options, actor_options, hint",
    [
        (None, {"num_gpus": 1}, "returned [] inside gpu_task"),  # forgot num_gpus on the task
        ({"num_gpus": 0.5}, {"num_gpus": 1}, "num_gpus=0.5"),  # two tasks per GPU
        ({"num_gpus": 1}, None, "returned [] inside the actor"),  # forgot num_gpus on the actor
        ({"num_gpus": 2}, {"num_gpus": 1}, "one at a time"),
    ],
)
@pytest.mark.usefixtures("gpu_workers")
def test_gpu_limits_wrong_declarations(task_options, actor_options, hint):
    v = _gpu_answer(task_options, actor_options)
    assert v.status == "incorrect" and hint in v.message, v


def test_gpu_limits_plain_actor_class():
    task = ray.remote(num_gpus=1)(gpu_task)
    since = time.time()
    ids = ray.get([task.remote(i) for i in range(4)])
    v = grade("05.gpu_limits", task_gpu_ids=ids, actor_gpu_ids=[[], []], gpu_task=task, GPUActor=GPUActor, since=since)
    assert v.status == "incorrect" and "plain class" in v.message, v


def test_gpu_limits_returned_refs():
    task = ray.remote(num_gpus=1)(gpu_task)
    since = time.time()
    refs = [task.remote(i) for i in range(4)]
    v = grade("05.gpu_limits", task_gpu_ids=refs, actor_gpu_ids=[[0], [1]], gpu_task=task,
              GPUActor=ray.remote(num_gpus=1)(GPUActor), since=since)
    ray.get(refs)
    assert v.status == "incorrect" and "ObjectRefs" in v.message, v
