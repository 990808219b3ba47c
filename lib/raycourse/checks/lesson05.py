"""Checks for lesson 05 (resources): GPU limits and a custom resource.

Both are graded from the intervals Ray recorded (how many tasks of each kind
ran at one instant) and from what the tasks themselves saw, never from a
wall-clock window: a loaded machine stretches every task, but it cannot make
Ray run more GPU tasks than there are GPUs, nor fewer when they are free.
"""
from __future__ import annotations

from typing import Any, Sequence

from .. import timing
from ..grading import Incorrect, NotAttempted, exercise
from .evidence import expect_values
from .evidence import is_ref as is_object_ref
from .evidence import is_remote_function, require_remote, same_values


def _is_actor_class(cls: Any) -> bool:
    import ray.actor

    return isinstance(cls, ray.actor.ActorClass)


def _options(fn: Any) -> dict[str, Any]:
    """The options a remote function or actor class was declared with (for hints only, never for the verdict)."""
    return dict(getattr(fn, "_default_options", None) or {})


def _id_lists(value: Any, count: int, what: str) -> list[list[Any]]:
    """``value`` as ``count`` lists of GPU ids, or :class:`Incorrect` naming the slip."""
    if is_object_ref(value) or (isinstance(value, (list, tuple)) and any(is_object_ref(v) for v in value)):
        raise Incorrect(f"`{what}` holds ObjectRefs: call ray.get on the list of refs to fetch the GPU ids.")
    if value is None or value is Ellipsis:
        raise NotAttempted(f"`{what}` is not set yet.")
    try:
        lists = [list(v) for v in value]
    except TypeError:
        raise Incorrect(f"`{what}` should be a list of {count} lists of GPU ids (what ray.get_gpu_ids() returned).") from None
    if len(lists) != count:
        raise Incorrect(f"`{what}` has {len(lists)} items; expected {count}, one per call.")
    return lists


@exercise("05.gpu_limits", "A task and an actor that each require one GPU")
def gpu_limits(task_gpu_ids: Any, actor_gpu_ids: Any, gpu_task: Any, GPUActor: Any, since: float) -> str:
    """Concurrency of ``gpu_task`` from Ray's records; GPU ids from what the tasks and actors returned."""
    if not is_remote_function(gpu_task) and not _is_actor_class(GPUActor):
        raise NotAttempted("`gpu_task` and `GPUActor` still run in the notebook: decorate them with @ray.remote(num_gpus=1).")
    require_remote(gpu_task, "gpu_task")
    if not _is_actor_class(GPUActor):
        raise Incorrect("`GPUActor` is a plain class: decorate it with @ray.remote(num_gpus=1) and create it with GPUActor.remote().")
    task_ids = _id_lists(task_gpu_ids, 4, "task_gpu_ids")
    actor_ids = _id_lists(actor_gpu_ids, 2, "actor_gpu_ids")
    # Actor method calls are judged by the ids they returned: their records can reach Ray's timeline late.
    ran = timing.intervals(name="gpu_task", since=since, expect=4)
    if len(ran) < 4:
        raise Incorrect(
            f"Ray ran {len(ran)} gpu_task tasks after `since`, not 4. Submit gpu_task.remote(i) for each i "
            "and keep the values those tasks returned."
        )
    if any(not ids for ids in task_ids):
        raise Incorrect(
            "ray.get_gpu_ids() returned [] inside gpu_task: the task reserved no GPU, so nothing stops more "
            "than two running at once. Declare it: @ray.remote(num_gpus=1)."
        )
    running = timing.max_concurrency(ran)
    if running > 2:
        share = " (num_gpus=0.5 lets two tasks share one GPU)" if _options(gpu_task).get("num_gpus", 1) < 1 else ""
        raise Incorrect(
            f"Up to {running} gpu_task tasks ran at once on 2 GPUs: each must reserve a whole GPU with num_gpus=1{share}."
        )
    declared = _options(gpu_task).get("num_gpus")
    if isinstance(declared, (int, float)) and 0 < declared < 1:
        # Ray may not have had enough worker processes to show it this time, but the declaration shares GPUs.
        raise Incorrect(
            f"gpu_task declares num_gpus={declared:g}, so {int(1 // declared)} tasks share each GPU and up to "
            f"{int(2 // declared)} run at once on 2 GPUs. Reserve a whole GPU per task: num_gpus=1."
        )
    if running < 2:
        raise Incorrect(
            "The gpu_task tasks ran one at a time, though two GPUs were free. Ask for exactly one GPU each "
            "(num_gpus=1, not 2), and submit all four before calling ray.get once on the list."
        )
    if any(len(ids) != 1 for ids in task_ids):
        raise Incorrect(f"Each gpu_task should see exactly one GPU id, but they saw {task_ids}: use num_gpus=1.")
    if any(not ids for ids in actor_ids):
        raise Incorrect(
            "ray.get_gpu_ids() returned [] inside the actor: an actor reserves a GPU only if its class says so. "
            "Decorate the class with @ray.remote(num_gpus=1)."
        )
    if len(actor_ids) == 2 and actor_ids[0] == actor_ids[1]:
        raise Incorrect(
            f"Both actors, alive at the same time, saw GPU {actor_ids[0]}: each actor should reserve a whole GPU "
            "(num_gpus=1), so they get one each."
        )
    return (
        f"At most {running} gpu_task tasks ran at once, each with its own GPU id, and the two actors held "
        f"GPUs {actor_ids[0]} and {actor_ids[1]}."
    )


def _f_beside_full_g(f_spans: Sequence[timing.Interval], g_spans: Sequence[timing.Interval], full: int) -> int:
    """The most ``f`` tasks running at an instant when ``full`` or more ``g`` tasks run (a sweep over start/end events)."""
    events = [(s.start, 1, "f") for s in f_spans] + [(s.end, -1, "f") for s in f_spans]
    events += [(s.start, 1, "g") for s in g_spans] + [(s.end, -1, "g") for s in g_spans]
    running = {"f": 0, "g": 0}
    best = 0
    for _, delta, kind in sorted(events, key=lambda e: (e[0], e[1])):  # ends before starts at equal times
        running[kind] += delta
        if running["g"] >= full:
            best = max(best, running["f"])
    return best


@exercise("05.custom_resources", "At most four g at once, with f beside them")
def custom_resources(f_results: Any, g_results: Any, f: Any, g: Any, since: float) -> str:
    """How many ``g`` ran at once and how many ``f`` ran beside four ``g``, from Ray's records."""
    computed = same_values(f_results, list(range(4))) and same_values(g_results, list(range(8)))
    if not is_remote_function(f) and not is_remote_function(g) and computed:
        raise NotAttempted("`f` and `g` still run in the notebook, one after another: make them Ray tasks.")
    require_remote(g, "g")
    require_remote(f, "f")
    expect_values(g_results, list(range(8)), "g_results")
    expect_values(f_results, list(range(4)), "f_results")
    spans = timing.intervals(since=since, expect=12)
    g_spans = [s for s in spans if s.name == "g"]
    f_spans = [s for s in spans if s.name == "f"]
    if len(g_spans) < 8 or len(f_spans) < 4:
        raise Incorrect(
            f"Ray ran {len(g_spans)} g and {len(f_spans)} f tasks after `since`; expected 8 and 4. "
            "Submit every call with .remote() and keep the values those tasks returned."
        )
    g_running = timing.max_concurrency(g_spans)
    g_custom = (_options(g).get("resources") or {}).get("Custom")
    if g_running > 4:
        raise Incorrect(
            f"Up to {g_running} g tasks ran at once. g must reserve one unit of the custom resource, "
            "@ray.remote(resources={'Custom': 1}); Ray has 4 units, so at most four g fit."
        )
    if g_running < 4:
        if g_custom and g_custom > 1:
            raise Incorrect(
                f"g asks for {g_custom:g} units of Custom, so only {int(4 // g_custom)} fit in the 4 units at once. "
                "Ask for exactly one unit: resources={'Custom': 1}."
            )
        raise Incorrect(
            f"At most {g_running} g tasks ran at once, though four could. Give each g exactly one unit of Custom "
            "and one CPU, and submit all tasks before calling ray.get."
        )
    f_beside = _f_beside_full_g(f_spans, g_spans, 4)
    # Four f are expected; one f starting late on a very busy machine is forgiven, none beside four g is not.
    if f_beside < 3:
        f_custom = (_options(f).get("resources") or {}).get("Custom")
        g_cpus = _options(g).get("num_cpus", 1)
        if f_custom:
            hint = "f also asks for Custom, so f and g share its 4 units. Only g needs the custom resource."
        elif g_cpus and g_cpus > 1:
            hint = f"g asks for {g_cpus:g} CPUs, so four g fill all 8 CPUs. Limit g with the custom resource, not with CPUs."
        else:
            hint = "Only g should need Custom; f needs just its CPU. Submit all tasks before calling ray.get."
        raise Incorrect(f"While four g ran, only {f_beside} f ran beside them; expected four. {hint}")
    total = timing.max_concurrency(spans)
    return f"At most {g_running} g ran at once, with {f_beside} f beside them ({total} tasks at the peak, on 8 CPUs)."
