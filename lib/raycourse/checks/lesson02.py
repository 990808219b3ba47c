"""Checks for lesson 02 (task dependencies): a four-stage pipeline, and nested tasks in a sweep.

Both are judged on structure, which no busy machine can blur:

* ``02.pipeline`` reads the **dependency graph** from the driver's journal: the
  ``load_data`` task of each input, the ``normalize`` task whose argument is
  that task's ref, and so on to ``compute_loss``; then what the driver waited
  for (only the final losses, after everything was submitted) and what
  ``ray.get`` returned (``losses`` must be those values, in input order).
* ``02.nested_tasks`` reads **Ray's records of who submitted whom**: each
  ``evaluate`` task names the ``run_experiment`` task that launched it, so the
  check sees each experiment's folds, and whether all of them were submitted
  before the first one finished, without re-running anything.

Tasks are found by the learner's own function objects (a renamed function,
``ray.remote(fn)`` or ``.options(name=...)`` are all found, a helper task is
ignored). The lesson's data carry a little random noise, so every run's values
are new: values typed in, or computed in the notebook beside decoy tasks,
cannot match what the tasks returned.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Sequence

from .. import plots, record, timing
from ..grading import Incorrect, NotAttempted, exercise
from ..record import JOURNAL, Submission, Wait
from .evidence import (Run, concurrency_allowed, cpu_slots, holds_ref, is_ref, is_remote_function, options,
                       parallel_without_ray, plain_list, plural, short)
from .evidence import _equal as equal

_MISSING = object()

# --- finding the learner's tasks -----------------------------------------------------------------


def _through(submission: Submission, fn: Any) -> bool:
    """Did ``submission`` come from ``fn``: the remote function itself, or a remote function made from it?"""
    target = submission.target
    if submission.kind != "task" or target is None or fn is None:
        return False
    if target is fn:
        return True
    inner = getattr(target, "_function", None)
    return inner is not None and (inner is fn or inner is getattr(fn, "_function", _MISSING))


def _task_name(fn: Any) -> str:
    """The name Ray records for ``fn``'s tasks (its own ``__name__``: a renamed or wrapped function is followed)."""
    function = getattr(fn, "_function", fn)
    qualified = f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"
    return timing._short_name(qualified)


def _latest_attempt(name: str, functions: Iterable[Any]) -> tuple[Run | None, bool]:
    """The cell run to judge, and whether it set ``name``.

    The latest run that set ``name`` or submitted tasks through ``functions``,
    whichever came later: a run that submitted the learner's tasks and then
    raised (so ``name`` kept an older value) is the attempt to judge.
    """
    functions = list(functions)
    setting = JOURNAL.last_cell_setting(name)
    submitting = 0
    for entry in reversed(list(JOURNAL.records)):
        if isinstance(entry, Submission) and entry.cell > 0 and any(_through(entry, f) for f in functions):
            submitting = entry.cell
            break
    if not JOURNAL.cells:  # outside IPython, nothing marked as cells: everything recorded outside any cell
        return Run(0, JOURNAL.in_cell(0)), True
    number = max(setting.number if setting is not None else 0, submitting)
    if number == 0:
        return None, False
    cell = JOURNAL.cells[number - 1]
    return Run(number, JOURNAL.in_cell(number), cell), setting is not None and setting.number == number


def _names(names: Sequence[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _top_refs(submission: Submission) -> list[str]:
    """Task ids of the refs passed directly as arguments (the ones Ray resolves)."""
    return [a[2] for a in submission.args if isinstance(a, tuple) and a and a[0] == "ref"]


def _nested_refs(submission: Submission) -> list[str]:
    """Task ids of refs hidden inside list, tuple or dict arguments (passed on unresolved)."""
    return [task for a in submission.args if isinstance(a, tuple) and a and a[0] != "ref"
            for _, task in record.refs_in(a)]


def _first_arg(submission: Submission) -> Any:
    return record.plain(submission.args[0]) if submission.args else None


def _raw_fetched(run: Run, task_ids: Iterable[str]) -> dict[str, Any]:
    """task id -> the summary of what ``ray.get`` returned for it in ``run`` (the last fetch wins)."""
    wanted, found = set(task_ids), {}
    for fetch in run.fetches():
        if fetch.values is None:
            continue
        for task, summary in zip(fetch.task_ids, fetch.values):
            if task in wanted:
                found[task] = summary
    return found


def _cpus(fn: Any, submissions: Sequence[Submission]) -> float:
    """The CPUs each task of ``fn`` reserved (decorator or ``.options``), 1 by default."""
    declared = options(submissions[0].target if submissions else fn).get("num_cpus")
    given = [float(s.options["num_cpus"]) for s in submissions if s.options.get("num_cpus") is not None]
    return max(given + [float(declared) if declared is not None else 1.0])


def _spans(task_ids: Iterable[str], timeout: float = 15.0) -> list[timing.Interval]:
    with record.paused():
        return timing.wait_for(task_ids, timeout=timeout, grace=min(timeout, 6.0))


def _rounded(values: Sequence[Any]) -> str:
    """A list of numbers as a hint shows it: four decimals, cut if long."""
    return short([round(v, 4) if isinstance(v, float) else v for v in values])


def _error_text(run: Run) -> str:
    return next((f.error for f in run.fetches() if f.error), "")


# --- 02.pipeline ------------------------------------------------------------------------------------

STAGES = ("load_data", "normalize", "extract_features", "compute_loss")
INPUTS = 4
ORDER = " → ".join(STAGES)


def _pipeline_sketch() -> list[timing.Interval]:
    """Four inputs flowing on by themselves: each input's stages back to back (the lesson's durations)."""
    spans = []
    for i in range(INPUTS):
        t = 0.0
        for stage, seconds in zip(STAGES, (0.25 * (i + 1), 0.2, 0.2, 0.2)):
            spans.append(timing.Interval(stage, f"sketch-{i}-{stage}", f"sketch-{i:03d}", t, t + seconds))
            t += seconds
    return spans


def _pipeline_evidence(task_ids: Sequence[str], marked: Sequence[str]) -> Any:
    spans = _spans(task_ids, timeout=10)
    return plots.compare(spans, _pipeline_sketch(), marked=marked) if spans else None


@exercise("02.pipeline", "Chain four stages by passing ObjectRefs, with one ray.get at the end")
def pipeline(ctx: Any, load_data: Any, normalize: Any, extract_features: Any, compute_loss: Any) -> str:
    """The graph from the journal (who received whose ref), what the driver waited for, and what it fetched."""
    stages = dict(zip(STAGES, (load_data, normalize, extract_features, compute_loss)))
    run, sets = _latest_attempt("losses", stages.values())
    if run is None:
        raise NotAttempted("`losses` is not defined yet: run the exercise's cell first.")
    losses = ctx.namespace.get("losses", _MISSING) if sets else _MISSING
    made = {name: [s for s in run.submissions(kind="task") if _through(s, fn)] for name, fn in stages.items()}

    plain = [name for name, fn in stages.items() if not is_remote_function(fn) and not made[name]]
    if len(plain) == len(STAGES):
        elsewhere = parallel_without_ray(run.source)
        if elsewhere:
            raise Incorrect(f"You ran the stages with {elsewhere} in the notebook's own process. This exercise is "
                            "about Ray: decorate each stage with @ray.remote and pass each stage's ref to the next.")
        raise NotAttempted("The four stages still run in the notebook, one input after another. Decorate each with "
                           "@ray.remote and pass each stage's ref straight into the next stage's .remote(...).")
    if plain:
        verb = "is still a plain function" if len(plain) == 1 else "are still plain functions"
        raise Incorrect(f"{_names(plain)} {verb}, so it ran in your notebook (the driver), which first had to fetch "
                        "its input with ray.get. Decorate it with @ray.remote and pass it the previous stage's ref, "
                        "e.g. `extract_features.remote(normalized)`.")
    missing = [name for name in STAGES if not made[name]]
    if len(missing) == len(STAGES) and any(s.name in {_task_name(fn) for fn in stages.values()}
                                           for s in run.submissions(kind="task")):
        raise Incorrect("The stages were defined again after the cell that set `losses` ran, so that run used the "
                        "old ones: run the pipeline cell again.")
    if len(missing) == len(STAGES):
        raise Incorrect("No pipeline task ran in the cell that set `losses`: the losses were computed in the notebook "
                        "or typed in. Submit each stage with .remote(...) and ray.get the final refs.")
    if missing:
        raise Incorrect(f"No {_names(missing)} task ran in that cell: every input must go through all four stages "
                        f"as tasks, {ORDER}.")

    loads = made["load_data"]
    inputs = Counter(repr(_first_arg(s)) for s in loads)
    if inputs != Counter(repr(i) for i in range(INPUTS)):
        shown = sorted(inputs.elements(), key=lambda text: (len(text), text))
        raise Incorrect(f"`load_data` was submitted {plural(len(loads), 'time')}, for inputs {', '.join(shown)}: "
                        f"submit it once for each i in range({INPUTS}), and each later stage once per input.")
    for name in STAGES[1:]:
        if len(made[name]) != INPUTS:
            raise Incorrect(f"`{name}` was submitted {plural(len(made[name]), 'time')} for {INPUTS} inputs: submit "
                            "each stage exactly once per input (was a line repeated, or the cell's loop run twice?).")

    stage_of = {task: name for name in STAGES for s in made[name] for task in s.task_ids}
    intermediate = [t for name in STAGES[:-1] for s in made[name] for t in s.task_ids]
    all_ids = [t for name in STAGES for s in made[name] for t in s.task_ids]
    final_ids = [t for s in made["compute_loss"] for t in s.task_ids]
    blocking = [r for r in run.fetches() + run.waits() if set(intermediate) & set(r.task_ids)
                and not (isinstance(r, Wait) and r.timeout == 0)]
    if blocking:
        held = next(stage_of[t] for t in blocking[0].task_ids if t in stage_of)
        after = STAGES[STAGES.index(held) + 1]
        call = "ray.get" if not isinstance(blocking[0], Wait) else "ray.wait"
        raise Incorrect(
            f"The driver called {call} on the `{held}` refs: a barrier. Every input then waits for the slowest "
            f"`{held}` before its `{after}` can start. Pass the `{held}` refs straight into {after}.remote(...) "
            "and call ray.get only once, on the final loss refs.",
            evidence=_pipeline_evidence(all_ids, [s.task_ids[0] for s in made[after][:1]]))

    input_of = {s.task_ids[0]: _first_arg(s) for s in loads if s.task_ids}
    for position, name in enumerate(STAGES[1:], start=1):
        previous = STAGES[position - 1]
        received = []
        for s in made[name]:
            top = _top_refs(s)
            if not top:
                if _nested_refs(s):
                    raise Incorrect(
                        f"`{name}` received a list holding a ref, so the task got the ref itself, not the data: Ray "
                        f"resolves only refs passed directly as arguments. Pass the ref on its own: "
                        f"{name}.remote({'data' if previous == 'load_data' else previous + '_ref'}).")
                raise Incorrect(f"`{name}` was given a value, not a ref: the `{previous}` result travelled through "
                                f"your notebook. Pass the ref that {previous}.remote(...) returned straight into "
                                f"{name}.remote(...).")
            source = stage_of.get(top[0])
            if source is None:
                raise Incorrect(f"`{name}` received a ref that no `{previous}` task of this cell made: chain the "
                                f"stages in order, {ORDER}, passing each stage's own ref on.")
            if source != previous:
                raise Incorrect(f"`{name}` received the output of `{source}`, but it should get `{previous}`'s: the "
                                f"stages go {ORDER}.")
            received.append(top[0])
            if s.task_ids:
                input_of[s.task_ids[0]] = input_of.get(top[0])
        if len(set(received)) != len(received):
            raise Incorrect(f"One `{previous}` result was passed to two `{name}` tasks (and another to none): pass "
                            f"each input's own `{previous}` ref on, once.")

    early = [r for r in run.blocking_before(all_ids) if set(final_ids) & set(r.task_ids)]
    if early:
        raise Incorrect(
            "The driver called ray.get on a loss inside the loop, before it had submitted every input's pipeline, so "
            "each input waited for the previous one to finish. Collect the compute_loss refs in a list and call "
            "ray.get once, after the loop.",
            evidence=_pipeline_evidence(all_ids, [t for t in final_ids[:1]]))
    for name, fn in stages.items():
        cpus = _cpus(fn, made[name])
        if concurrency_allowed(INPUTS, cpus) < 2:
            raise Incorrect(f"Each `{name}` task reserves {cpus:g} CPUs, so only one fits at a time on "
                            f"{cpu_slots()} CPUs and the inputs cannot flow side by side. Drop num_cpus.")

    if losses is _MISSING:
        error = _error_text(run)
        raise Incorrect("The latest run of your pipeline cell did not set `losses`"
                        + (f": its ray.get raised {error}" if error else " (did it raise an error?)")
                        + ". Fix the cell and run it again.")
    if is_ref(losses):
        raise Incorrect("`losses` is a single ObjectRef: build a list with one compute_loss ref per input, then "
                        "ray.get the whole list.")
    if holds_ref(losses):
        raise Incorrect("`losses` holds ObjectRefs, not numbers: call ray.get once, on the list of compute_loss refs.")
    fetched = run.fetched(final_ids)
    if not fetched:
        raise Incorrect("The cell submitted the pipeline but never fetched the compute_loss results with ray.get: "
                        "the numbers in `losses` were computed in the notebook or typed in. Set "
                        "losses = ray.get(loss_refs).")
    if len(fetched) < INPUTS:
        raise Incorrect(f"The cell fetched {len(fetched)} of the {INPUTS} losses: ray.get the whole list of "
                        "compute_loss refs.")
    final_input = {t: input_of.get(t) for t in final_ids}
    expected = [fetched[next(t for t, i in final_input.items() if i == k)] for k in range(INPUTS)]
    values = plain_list(losses)
    if values is None or len(values) != INPUTS:
        raise Incorrect(f"`losses` should be a list of {INPUTS} numbers, one per input, got {short(losses)}.")
    if not equal(values, expected):
        if sorted(map(repr, values)) == sorted(map(repr, expected)):
            raise Incorrect(f"`losses` holds the right values in the wrong order: keep them in input order, "
                            f"{_rounded(expected)}, as ray.get returns them for the refs in input order.")
        raise Incorrect(f"`losses` is {_rounded(values)}, but your compute_loss tasks returned "
                        f"{_rounded(expected)} for inputs 0-3: keep the values ray.get gives you (every run draws "
                        "new noise, so typed-in or recomputed numbers do not match).")
    return (f"All {INPUTS * len(STAGES)} stage tasks ran as one chain per input, each stage receiving the previous "
            "stage's ref; the driver waited only for the final losses, and `losses` holds what they returned.")


# --- 02.nested_tasks ------------------------------------------------------------------------------

NOISE_BAND = 0.006  # the lesson's scores carry noise of sd 0.002: a mean of 3 folds stays 5 sd inside this
