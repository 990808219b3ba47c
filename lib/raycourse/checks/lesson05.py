"""Checks for lesson 05 (resources): a custom resource, and GPU limits.

A resource request is bookkeeping: Ray starts a task only where the units it
reserved are free. So the checks judge what each task and actor *reserved*
(Ray's own record of every task's required resources, and the options the
driver's journal saw at each ``.remote()``), whether the driver submitted
everything before it first waited (the journal), and whether the values came
from those tasks (what ``ray.get`` returned for them). They do not judge how
many tasks happened to run side by side: right after Ray restarts its worker
pool (an earlier wrong attempt, a busy machine) workers start slower than the
tasks last, and a correct answer would look serial. What the scheduler
guarantees from the reservations (at most four ``g`` with one unit each of 4,
at most two one-GPU tasks on 2 GPUs) needs no measuring.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from .. import plots, timing
from ..grading import Incorrect, NotAttempted, exercise
from ..record import JOURNAL, Fetch, Submission, Wait
from .evidence import (Run, args_of, expect_values, holds_ref, is_actor_class, is_remote_function, parallel_without_ray,
                       plural, require_remote, run_of, same_values, short)

# --- what was reserved --------------------------------------------------------------------------


def _declared(submission: Submission) -> dict[str, float]:
    """What one ``.remote()`` asked for, from the options the journal saw (decorator and ``.options`` merged)."""
    options = submission.options
    default_cpu = 1.0 if submission.kind in ("task", "actor") else 0.0
    wanted = {"CPU": float(options.get("num_cpus", default_cpu) or 0), "GPU": float(options.get("num_gpus", 0) or 0)}
    wanted.update({k: float(v) for k, v in (options.get("resources") or {}).items()})
    return {k: v for k, v in wanted.items() if v}


def _reserved(submissions: Sequence[Submission], spans: Sequence[timing.Interval]) -> list[dict[str, float]]:
    """What each task reserved: Ray's record where it has one, else what the driver asked for."""
    recorded = {s.task_id: dict(s.resources) for s in spans}
    return [recorded.get(s.task_ids[0], _declared(s)) if s.task_ids else _declared(s) for s in submissions]


def _one_value(reservations: list[dict[str, float]], name: str) -> float:
    """The largest amount of ``name`` any of these tasks reserved (0 if none did)."""
    return max((r.get(name, 0.0) for r in reservations), default=0.0)


def _total(name: str) -> float:
    import ray

    from .. import record

    with record.paused():
        return float(ray.cluster_resources().get(name, 0))


def _amount(x: float) -> str:
    return f"{x:g}"


# --- what the driver did ------------------------------------------------------------------------


def _waited_early(submissions: Sequence[Submission]) -> bool:
    """True if a ``ray.get``/``ray.wait`` on some of these tasks came before the last of them was submitted.

    Read from the whole journal, so tasks submitted in different cells are judged together.
    """
    wanted = {t for s in submissions for t in s.task_ids}
    if not wanted:
        return False
    last = max(s.seq for s in submissions)
    return any(isinstance(r, (Fetch, Wait)) and r.seq < last and wanted & set(r.task_ids)
               and not (isinstance(r, Wait) and r.timeout == 0) for r in list(JOURNAL.records))


def _provenance(run: Run, fn: Any, name: str, values: list[Any], count: int, noun: str) -> list[Submission]:
    """The ``count`` tasks of ``fn`` whose fetched values make up ``values`` (by argument), or Incorrect."""
    fetched = run.fetched_from(fn)
    if not fetched:
        if run.submissions(fn):
            raise Incorrect(f"The cell submitted {noun} tasks but never fetched their results with ray.get: `{name}` "
                            f"was computed in the notebook. Set {name} = ray.get(list_of_refs).")
        raise Incorrect(f"No {noun} task ran in the cell that set `{name}`: the values were computed (or typed) in "
                        f"the notebook. Submit {noun}.remote(i) for each i and ray.get the refs.")
    by_argument: dict[Any, Any] = {}
    for submission, value in fetched:
        arguments = args_of(submission)
        by_argument[arguments[0] if arguments else None] = value
    if sorted(k for k in by_argument if isinstance(k, int)) != list(range(count)) or len(fetched) != count:
        raise Incorrect(f"`{name}` came from {plural(len(fetched), noun + ' task')} (for i in "
                        f"{short(sorted(by_argument, key=repr), 50)}); submit exactly one per i in range({count}) "
                        "and fetch them all.")
    if [by_argument[i] for i in range(count)] != values:
        raise Incorrect(f"`{name}` does not hold what the {noun} tasks returned, in order: keep the list ray.get "
                        "gives you.")
    return [s for s, _ in fetched]


# --- 05.custom_resources --------------------------------------------------------------------------


def _shape(g_seconds: float, units: int, cpus: int) -> list[timing.Interval]:
    """The goal: ``units`` g side by side with four f, then the remaining g."""
    g_rows = [[(0.0, g_seconds), (g_seconds, 2 * g_seconds)] for _ in range(units)]
    f_rows = [[(0.0, g_seconds)] for _ in range(max(0, min(4, cpus - units)))]
    g = plots.sketch(g_rows, name="g")
    f = [replace(s, worker=s.worker + "-f", task_id=s.task_id + "-f") for s in plots.sketch(f_rows, name="f")]
    return g + f


def _custom_evidence(spans: list[timing.Interval], marked: Sequence[str]) -> Any:
    seconds = sorted(s.duration for s in spans)[len(spans) // 2] if spans else 0.5
    units = int(_total("Custom")) or 4
    return plots.compare(spans, _shape(seconds, units, int(_total("CPU")) or 8), marked=marked)


def _least(reservations: list[dict[str, float]], name: str) -> float:
    """The smallest amount of ``name`` any of these tasks reserved (0 if one reserved none)."""
    return min((r.get(name, 0.0) for r in reservations), default=0.0)


def _judge_custom(g_sub: list[Submission], f_sub: list[Submission], spans: list[timing.Interval]) -> None:
    """Raise with the mistake in what g and f reserved, if any: every g exactly one unit of Custom, f none,
    and no more than one CPU each (so four f fit beside four g)."""
    g_res, f_res = _reserved(g_sub, spans), _reserved(f_sub, spans)
    units, cpus = _total("Custom"), _total("CPU")
    g_least, g_most, f_custom = _least(g_res, "Custom"), _one_value(g_res, "Custom"), _one_value(f_res, "Custom")
    g_cpu, f_cpu = _one_value(g_res, "CPU"), _one_value(f_res, "CPU")
    g_ids = [t for s in g_sub for t in s.task_ids]
    f_ids = [t for s in f_sub for t in s.task_ids]
    without = [t for s, r in zip(g_sub, g_res) if not r.get("Custom") for t in s.task_ids]

    def wrong(message: str, marked: Sequence[str]) -> Incorrect:
        return Incorrect(message, evidence=_custom_evidence(spans, marked))

    if not g_most and g_cpu > 1:
        raise wrong(f"g reserves {_amount(g_cpu)} CPUs instead of a unit of `Custom`: four g then fill "
                    f"{_amount(4 * g_cpu)} of the {_amount(cpus)} CPUs, and f has no room beside them. Limit g with "
                    "the custom resource, not with CPUs: @ray.remote(resources={'Custom': 1}).", g_ids)
    if not g_most:
        swapped = " You gave it to f instead: only g needs it." if f_custom else ""
        ran = timing.max_concurrency([s for s in spans if s.task_id in g_ids])
        raise wrong(f"g reserves no `Custom`, so nothing stops all 8 g running at once (here up to {ran} ran side "
                    f"by side). Give g one unit: @ray.remote(resources={{'Custom': 1}}).{swapped}", g_ids)
    if not g_least:
        raise wrong(f"{plural(len(without), 'g task')} of 8 reserved no `Custom`: every g needs its unit, or those "
                    "run beside the four that hold one. Declare it on g itself, or pass the same .options to every "
                    "call.", without)
    if g_most > 1:
        raise wrong(f"g asks for {_amount(g_most)} units of `Custom`, so only {int(units // g_most)} g fit in the "
                    f"{_amount(units)} units at once, not four. Ask for exactly one unit: resources={{'Custom': 1}}.",
                    g_ids)
    if g_least < 1:
        raise wrong(f"g asks for {_amount(g_least)} of a unit of `Custom`, so {int(units // g_least)} g fit in the "
                    f"{_amount(units)} units at once, not four. Ask for exactly one unit: resources={{'Custom': 1}}.",
                    g_ids)
    if f_custom:
        raise wrong("f also asks for `Custom`, so f and g share its units and fewer g (or f) run at once. Only g "
                    "needs the custom resource; f needs just its CPU.", f_ids)
    if g_cpu > 1:
        raise wrong(f"g reserves {_amount(g_cpu)} CPUs, so four g take {_amount(4 * g_cpu)} of the "
                    f"{_amount(cpus)} CPUs and leave no room for f beside them. Limit g with the custom resource, "
                    "not with CPUs: one CPU each.", g_ids)
    if f_cpu > 1:
        raise wrong(f"f reserves {_amount(f_cpu)} CPUs, so four f do not fit beside four g. f needs one CPU.", f_ids)
    for name, reservations, ids in (("g", g_res, g_ids), ("f", f_res, f_ids)):
        other = sorted({k for r in reservations for k in r} - {"CPU", "Custom"})
        if other:
            raise wrong(f"{name} also reserves `{other[0]}`, which limits how many run at once. Only g needs a "
                        "resource besides its CPU: one unit of `Custom`.", ids)


@exercise("05.custom_resources", "At most four g at once, with f beside them")
def custom_resources(f_results: Any, g_results: Any, f: Any, g: Any) -> str:
    """What g and f reserved (Ray's records), all submitted before the first wait, values from their tasks."""
    g_run, f_run = run_of("g_results"), run_of("f_results")
    computed = same_values(f_results, list(range(4))) and same_values(g_results, list(range(8)))
    elsewhere = parallel_without_ray(g_run.source + f_run.source)
    if not is_remote_function(f) and not is_remote_function(g):
        if elsewhere:
            raise Incorrect(f"You ran f and g with {elsewhere} in the notebook's own process: Ray's resources "
                            "limit Ray tasks only. Make them remote functions and submit them with .remote().")
        if computed:
            raise NotAttempted("`f` and `g` still run in the notebook, one after another: make them Ray tasks.")
    require_remote(g, "g")
    require_remote(f, "f")
    for name, value in (("g_results", g_results), ("f_results", f_results)):
        if holds_ref(value):
            raise Incorrect(f"`{name}` holds ObjectRefs (futures), not values: ray.get the list of refs.")
    g_values = expect_values(g_results, list(range(8)), "g_results")
    f_values = expect_values(f_results, list(range(4)), "f_results")
    g_sub = _provenance(g_run, g, "g_results", g_values, 8, "g")
    f_sub = _provenance(f_run, f, "f_results", f_values, 4, "f")
    ids = [t for s in g_sub + f_sub for t in s.task_ids]
    spans = timing.wait_for(ids, timeout=20, grace=6)
    _judge_custom(g_sub, f_sub, spans)
    if _waited_early(g_sub + f_sub):
        raise Incorrect("The notebook waited for results (ray.get inside a loop, or g's results before f was "
                        "submitted) before it had submitted all twelve tasks, so f could not run beside g. Submit "
                        "every g and f with .remote() first, then ray.get the lists.",
                        evidence=_custom_evidence(spans, ids))
    g_spans = [s for s in spans if s.task_id in {t for s in g_sub for t in s.task_ids}]
    peak = timing.max_concurrency(g_spans) if g_spans else 0
    seen = f" (Ray ran up to {peak} g at a time)" if peak else ""
    return (f"g reserved one unit of `Custom` and f none, so Ray can never run more than "
            f"{int(_total('Custom'))} g at once{seen}, and f had CPUs beside them; all twelve tasks were submitted "
            "before the first ray.get, and the results are theirs.")


# --- 05.gpu_limits ---------------------------------------------------------------------------------


def _id_lists(value: Any, count: int, what: str) -> list[list[Any]]:
    """``value`` as ``count`` lists of GPU ids, or :class:`Incorrect` naming the slip."""
    if holds_ref(value):
        raise Incorrect(f"`{what}` holds ObjectRefs: call ray.get on the list of refs to fetch the GPU ids.")
    if value is None or value is Ellipsis:
        raise NotAttempted(f"`{what}` is not set yet.")
    try:
        lists = [list(v) for v in value]
    except TypeError:
        raise Incorrect(f"`{what}` should be a list of {count} lists of GPU ids (what ray.get_gpu_ids() "
                        "returned).") from None
    if len(lists) != count:
        raise Incorrect(f"`{what}` has {len(lists)} items; expected {count}, one per call.")
    return lists


def _actor_reservations(actor_id: str) -> dict[str, float]:
    """What the actor with this id reserved for its life: its creation as the journal saw it."""
    for r in reversed(list(JOURNAL.records)):
        if isinstance(r, Submission) and r.kind == "actor" and r.actor_id == actor_id:
            return _declared(r)
    return {}


def _judge_gpu_task(submissions: list[Submission], spans: list[timing.Interval], ids: list[list[Any]]) -> None:
    reservations = _reserved(submissions, spans)
    gpus = _one_value(reservations, "GPU")
    least = min((r.get("GPU", 0.0) for r in reservations), default=0.0)
    total = _total("GPU")
    if not least:
        raise Incorrect("gpu_task reserves no GPU (ray.get_gpu_ids() returned [] inside it), so nothing stops more "
                        f"than {_amount(total)} running at once. Declare it: @ray.remote(num_gpus=1).")
    if gpus < 1:
        raise Incorrect(f"gpu_task reserves num_gpus={_amount(gpus)}, so {int(1 // gpus)} tasks share each GPU and up "
                        f"to {int(total // gpus)} run at once on {_amount(total)} GPUs. Reserve a whole GPU per task: "
                        "num_gpus=1.")
    if gpus > 1:
        raise Incorrect(f"gpu_task reserves {_amount(gpus)} GPUs, so only {int(total // gpus)} can run at a time on "
                        f"{_amount(total)} GPUs. Ask for exactly one: num_gpus=1.")
    if any(len(i) != 1 for i in ids):
        raise Incorrect(f"Each gpu_task should see exactly one GPU id, but they saw {short(ids)}: use num_gpus=1.")


def _judge_actors(submissions: list[Submission], ids: list[list[Any]]) -> list[str]:
    actors = [s.actor_id for s in submissions]
    if len(set(actors)) < 2:
        raise Incorrect("Both work calls went to the same actor: create two GPUActor actors and call work once on "
                        "each.")
    reservations = [_actor_reservations(a) for a in actors]
    least = min(r.get("GPU", 0.0) for r in reservations)
    most = max(r.get("GPU", 0.0) for r in reservations)
    if not least:
        raise Incorrect("GPUActor reserves no GPU (ray.get_gpu_ids() returned [] inside it): an actor holds a GPU "
                        "only if its class (or .options) says so. Decorate the class with @ray.remote(num_gpus=1).")
    if least < 1:
        raise Incorrect(f"GPUActor reserves num_gpus={_amount(least)}, so two actors share one GPU (both saw "
                        f"{short(ids[0])}). Give each actor a whole GPU: num_gpus=1.")
    if most > 1:
        raise Incorrect(f"GPUActor reserves {_amount(most)} GPUs, so two of them cannot be alive at once on "
                        f"{_amount(_total('GPU'))} GPUs. Ask for exactly one: num_gpus=1.")
    if any(len(i) != 1 for i in ids):
        raise Incorrect(f"Each actor should see exactly one GPU id, but they saw {short(ids)}: use num_gpus=1.")
    return actors


@exercise("05.gpu_limits", "A task and an actor that each require one GPU")
def gpu_limits(task_gpu_ids: Any, actor_gpu_ids: Any, gpu_task: Any, GPUActor: Any) -> str:
    """What gpu_task and GPUActor reserved; the GPU ids must be what those tasks and actors returned."""
    task_run, actor_run = run_of("task_gpu_ids"), run_of("actor_gpu_ids")
    if not is_remote_function(gpu_task) and not is_actor_class(GPUActor):
        if parallel_without_ray(task_run.source + actor_run.source):
            raise Incorrect("You ran the work with threads or processes in the notebook: GPUs are reserved for Ray "
                            "tasks and actors. Decorate both with @ray.remote(num_gpus=1).")
        raise NotAttempted("`gpu_task` and `GPUActor` still run in the notebook: decorate them with "
                           "@ray.remote(num_gpus=1).")
    require_remote(gpu_task, "gpu_task")
    if not is_actor_class(GPUActor):
        raise Incorrect("`GPUActor` is a plain class: decorate it with @ray.remote(num_gpus=1) and create it with "
                        "GPUActor.remote().")
    task_ids = _id_lists(task_gpu_ids, 4, "task_gpu_ids")
    actor_ids = _id_lists(actor_gpu_ids, 2, "actor_gpu_ids")
    submissions = _provenance(task_run, gpu_task, "task_gpu_ids", task_ids, 4, "gpu_task")
    spans = timing.wait_for([t for s in submissions for t in s.task_ids], timeout=20, grace=6)
    _judge_gpu_task(submissions, spans, task_ids)
    if _waited_early(submissions):
        raise Incorrect("The notebook waited for a gpu_task result (ray.get inside the loop) before it had submitted "
                        "all four, so they ran one at a time though two GPUs were free. Submit all four with "
                        ".remote(), then ray.get the list once.",
                        evidence=plots.compare(spans, plots.sketch([[(0, 1), (1, 2)], [(0, 1), (1, 2)]],
                                                                   name="gpu_task")))
    fetched = actor_run.fetched_from(GPUActor)
    if not fetched:
        if actor_run.submissions(GPUActor, kind="method"):
            raise Incorrect("The cell called the actors' work but never fetched the results with ray.get: "
                            "`actor_gpu_ids` was computed in the notebook.")
        raise Incorrect("No GPUActor method ran in the cell that set `actor_gpu_ids`: the ids were computed (or "
                        "typed) in the notebook. Call work.remote(i) on each actor and ray.get the refs.")
    returned = [value for _, value in fetched]
    if len(fetched) != 2 or sorted(map(repr, returned)) != sorted(map(repr, actor_ids)):
        raise Incorrect(f"`actor_gpu_ids` should hold what the two work calls returned ({short(returned)}), one per "
                        f"actor; it holds {short(actor_ids)}.")
    _judge_actors([s for s, _ in fetched], actor_ids)
    peak = timing.max_concurrency(spans) if spans else 0
    return (f"Each gpu_task reserved one whole GPU (Ray ran at most {peak} at once, and never can run more than "
            f"{int(_total('GPU'))}), each saw its GPU id, and the two actors held GPUs {actor_ids[0]} and "
            f"{actor_ids[1]}.")
