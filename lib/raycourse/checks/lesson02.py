"""Checks for lesson 02 (task dependencies): a four-stage pipeline, and nested tasks in a sweep.

Both exercises are graded on *structure*, read from the intervals Ray recorded,
never on how long the cell took (the machine may be busy):

* ``02.pipeline``: every stage ran as a task for every input, the inputs'
  pipelines overlapped, and no stage waited for the slowest input of the stage
  before it (a ``ray.get`` between stages in the driver is such a barrier).
* ``02.nested_tasks``: experiments ran as tasks at the same time, and the
  evaluations *inside one experiment* overlapped. Ray's timeline does not say
  which task launched which, so the check runs one experiment on its own and
  looks at the evaluations it started.

The stage and scoring formulas are copied here from the notebook so the check
knows the right values without trusting the learner's functions.
"""
from __future__ import annotations

import math
import time
from typing import Any

from .. import timing
from ..grading import Incorrect, NotAttempted, exercise
from .evidence import is_ref as is_object_ref
from .evidence import is_remote_function

# --- The pipeline's stages, without the sleeps (must match the notebook) ---------------

NUM_INPUTS = 4
STAGES = ("load_data", "normalize", "extract_features", "compute_loss")


def _load_data(i: int) -> list[float]:
    return [math.sin(i + k) * (i + 1) for k in range(8)]


def _normalize(data: list[float]) -> list[float]:
    peak = max(abs(x) for x in data)
    return [x / peak for x in data]


def _extract_features(data: list[float]) -> list[float]:
    mean = sum(data) / len(data)
    return [mean, max(data) - min(data), sum(x * x for x in data) / len(data)]


def _compute_loss(features: list[float]) -> float:
    target = [0.0, 1.5, 0.5]
    return round(sum((f - t) ** 2 for f, t in zip(features, target)), 4)


def expected_losses() -> list[float]:
    """The loss of each input's pipeline, computed here from the formulas alone."""
    return [_compute_loss(_extract_features(_normalize(_load_data(i)))) for i in range(NUM_INPUTS)]


# --- The sweep's scoring (must match the notebook) -------------------------------------

LEARNING_RATES = [0.001, 0.01, 0.1, 1.0]
NUM_FOLDS = 3


def _score(learning_rate: float, fold: int) -> float:
    distance = math.log10(learning_rate) + 1.3
    return round(0.95 - 0.1 * distance**2 - 0.01 * fold, 4)


def expected_results() -> list[float]:
    """Each learning rate's mean score over the folds."""
    return [sum(_score(lr, f) for f in range(NUM_FOLDS)) / NUM_FOLDS for lr in LEARNING_RATES]


# --- Small helpers ------------------------------------------------------------------------


def _contains_ref(value: Any, depth: int = 0) -> bool:
    """True if ``value`` is an ObjectRef or holds one in a list/tuple/dict (a few levels deep)."""
    if is_object_ref(value):
        return True
    if depth > 3:
        return False
    if isinstance(value, dict):
        return any(_contains_ref(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_ref(v, depth + 1) for v in value)
    return False


def _numbers(value: Any, count: int, what: str) -> list[float] | None:
    """``value`` as ``count`` floats, or None if it is not a list of that many numbers."""
    try:
        items = list(value)
    except TypeError:
        return None
    if len(items) != count or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        return None
    return [float(v) for v in items]


def _close(actual: list[float] | None, expected: list[float]) -> bool:
    return actual is not None and all(math.isclose(a, e, rel_tol=1e-6, abs_tol=1e-6) for a, e in zip(actual, expected))


def _check_since(since: Any) -> float:
    if not isinstance(since, (int, float)) or isinstance(since, bool) or since <= 0:
        raise Incorrect("`since` should be the time.time() taken just before submitting the tasks; restore that line.")
    return float(since)


def _task_name(fn: Any, default: str) -> str:
    """The name Ray records for ``fn``'s tasks: its own ``__name__`` (a learner may rename it)."""
    return getattr(getattr(fn, "_function", None), "__name__", None) or default


def _by_name(spans: list[timing.Interval], names: dict[str, str]) -> dict[str, list[timing.Interval]]:
    """Group intervals under each role (e.g. "normalize") by the task name Ray recorded for it."""
    return {role: [s for s in spans if s.name == name] for role, name in names.items()}


# --- 02.pipeline ----------------------------------------------------------------------------


@exercise("02.pipeline", "Chain four stages by passing ObjectRefs, with one ray.get at the end")
def pipeline(
    losses: Any, since: Any, load_data: Any, normalize: Any, extract_features: Any, compute_loss: Any
) -> str:
    """Values first, then what Ray ran: every stage as tasks, pipelines overlapping, no barrier."""
    functions = dict(zip(STAGES, (load_data, normalize, extract_features, compute_loss)))
    expected = expected_losses()
    if is_object_ref(losses):
        raise Incorrect("`losses` is a single ObjectRef: build a list with one compute_loss ref per input, "
                        "then ray.get the whole list.")
    values = _numbers(losses, NUM_INPUTS, "losses")
    computed = _close(values, expected)
    plain = [name for name, fn in functions.items() if not is_remote_function(fn)]
    if len(plain) == len(STAGES):
        if computed:
            raise NotAttempted("The four stages still run in the notebook, one input after another. "
                               "Decorate each with @ray.remote and chain the refs.")
        raise Incorrect("None of the stages is a remote function: decorate each with @ray.remote.")
    if plain:
        names = ", ".join(f"`{n}`" for n in plain)
        raise Incorrect(
            f"{names} is still a plain function, so it ran in your notebook (the driver), not as a Ray task, and "
            "the driver had to ray.get its input first. Decorate it with @ray.remote and pass it the previous "
            "stage's ref: e.g. extract_features.remote(normalized_ref)."
        )
    since = _check_since(since)
    if _contains_ref(losses):
        raise Incorrect("`losses` holds ObjectRefs, not numbers: call ray.get once, on the list of compute_loss refs.")
    if values is None:
        raise Incorrect(f"`losses` should be a list of {NUM_INPUTS} numbers, one per input, got {losses!r:.120}.")
    if not computed:
        raise Incorrect(f"`losses` is {values}; expected {expected}. Run the four stages in order for each input "
                        "i in range(4) and keep the results in input order.")
    names = {role: _task_name(fn, role) for role, fn in functions.items()}
    ran = _by_name(timing.intervals(since=since, expect=NUM_INPUTS * len(STAGES), timeout=10), names)
    missing = [n for n in STAGES if not ran[n]]
    if len(missing) == len(STAGES):
        raise Incorrect("Ray ran no pipeline task after `since`: the losses must come from tasks (were they typed in?). "
                        "Re-run the whole cell.")
    if missing:
        raise Incorrect(f"No {', '.join(missing)} task ran: every stage must run as a task, called with .remote().")
    counts = {n: len(s) for n, s in ran.items()}
    if any(c != NUM_INPUTS for c in counts.values()):
        raise Incorrect(f"Expected {NUM_INPUTS} tasks per stage (one per input) but Ray ran {counts}. "
                        "Submit each stage exactly once per input, and re-run the whole cell.")
    everything = [s for spans in ran.values() for s in spans]
    if timing.max_concurrency(everything) < 2:
        raise Incorrect(
            "The four inputs' pipelines ran one after another, never two tasks at once. A ray.get inside the loop "
            "waits for one input's loss before starting the next input: collect the compute_loss refs in a list "
            "and call ray.get once, after the loop."
        )
    for before, after in zip(STAGES, STAGES[1:]):
        if min(s.start for s in ran[after]) >= max(s.end for s in ran[before]):
            raise Incorrect(
                f"Every {after} task started only after the slowest {before} task ended: a ray.get between the "
                f"stages is a barrier that makes the fast inputs wait for the slowest. Pass the {before} refs "
                f"straight into {after}.remote(...) and call ray.get only on the final losses."
            )
    head_start = max(s.end for s in ran["load_data"]) - min(s.start for s in ran["normalize"])
    return (f"All 16 stages ran as tasks, the inputs' pipelines overlapped, and the fastest input was normalized "
            f"{head_start:.2f} s before the slowest one finished loading.")


# --- 02.nested_tasks --------------------------------------------------------------------------


def _check_results(results: Any, best: Any) -> None:
    expected = expected_results()
    if is_object_ref(results):
        raise Incorrect("`results` is an ObjectRef: ray.get the list of run_experiment refs.")
    if isinstance(results, (list, tuple)) and any(is_object_ref(r) for r in results):
        raise Incorrect("`results` holds ObjectRefs: call ray.get once on the list of run_experiment refs.")
    if _contains_ref(results):
        raise Incorrect(
            "run_experiment returned ObjectRefs instead of a number. Inside run_experiment, ray.get the list of "
            "evaluate refs and return their mean: a ref returned from a task is not resolved for you."
        )
    values = _numbers(results, len(LEARNING_RATES), "results")
    if values is None:
        raise Incorrect(f"`results` should be a list of {len(LEARNING_RATES)} mean scores, one per learning rate, "
                        f"got {results!r:.120}.")
    if not _close(values, expected):
        raise Incorrect(f"`results` is {values}; expected the mean score over the {NUM_FOLDS} folds for each "
                        f"learning rate, in order: {[round(e, 4) for e in expected]}.")
    right = LEARNING_RATES[expected.index(max(expected))]
    if best != right:
        raise Incorrect(f"`best` is {best!r}, but the learning rate with the highest mean score is {right}. "
                        "Pick the learning rate, not the score.")


@exercise("02.nested_tasks", "A parallel sweep: experiments that launch their own evaluation tasks")
def nested_tasks(results: Any, best: Any, since: Any, run_experiment: Any, evaluate: Any) -> str:
    """The sweep's intervals show experiments overlapping; one isolated experiment shows its folds overlapping."""
    outer, inner = is_remote_function(run_experiment), is_remote_function(evaluate)
    if not outer and not inner:
        try:
            _check_results(results, best)
        except Incorrect:
            raise Incorrect("Neither run_experiment nor evaluate is a remote function: decorate both with "
                            "@ray.remote.") from None
        raise NotAttempted("The sweep still runs in the notebook, one fold after another. Make run_experiment and "
                           "evaluate remote functions.")
    if not outer:
        raise Incorrect(
            "`run_experiment` is a plain function, so each experiment ran in your notebook. This exercise is about "
            "nesting: decorate run_experiment with @ray.remote too, so each experiment is a task that launches "
            "its own evaluate tasks."
        )
    if not inner:
        raise Incorrect(
            "`evaluate` is a plain function, so each experiment ran its folds one after another inside its own "
            "task. Decorate evaluate with @ray.remote and, inside run_experiment, submit every fold with "
            "evaluate.remote(...) before one ray.get on the list."
        )
    since = _check_since(since)
    _check_results(results, best)
    experiments, folds = len(LEARNING_RATES), len(LEARNING_RATES) * NUM_FOLDS
    names = {"run_experiment": _task_name(run_experiment, "run_experiment"), "evaluate": _task_name(evaluate, "evaluate")}
    ran = _by_name(timing.intervals(since=since, expect=experiments + folds, timeout=10), names)
    if not ran["run_experiment"] and not ran["evaluate"]:
        raise Incorrect("Ray ran no run_experiment or evaluate task after `since`: the results must come from tasks "
                        "(were they typed in?). Re-run the whole cell.")
    counts = {n: len(s) for n, s in ran.items()}
    if counts != {"run_experiment": experiments, "evaluate": folds}:
        raise Incorrect(f"Expected {experiments} run_experiment tasks and {folds} evaluate tasks "
                        f"({NUM_FOLDS} folds each), but Ray ran {counts}. Re-run the whole cell.")
    if timing.max_concurrency(ran["run_experiment"]) < 2:
        raise Incorrect(
            "The experiments ran one at a time: a ray.get inside the driver's loop waits for each experiment "
            "before submitting the next. Submit every run_experiment.remote(lr) first, then ray.get the list once."
        )
    # Which evaluate belongs to which experiment is not recorded, so run one experiment alone.
    start = time.time()
    value = run_experiment.remote(LEARNING_RATES[0])
    import ray

    value = ray.get(value)
    alone = timing.intervals(name=names["evaluate"], since=start, until=time.time(), expect=NUM_FOLDS, timeout=10)
    if _contains_ref(value) or len(alone) != NUM_FOLDS:
        raise Incorrect(f"One run_experiment({LEARNING_RATES[0]}) on its own started {len(alone)} evaluate tasks, "
                        f"not {NUM_FOLDS}, or returned refs; it should evaluate every fold and return the mean.")
    if timing.max_concurrency(alone) < 2:
        raise Incorrect(
            "Inside one experiment the folds ran one after another: a ray.get inside run_experiment's loop waits "
            "for each fold. Submit all folds with evaluate.remote(...) first, then ray.get the list once."
        )
    both = timing.max_concurrency(ran["evaluate"])
    return (f"Best learning rate: {best}. The experiments overlapped, each one's folds overlapped, and up to {both} "
            "evaluations ran at once while their experiments waited in ray.get (a blocked task lends its CPU).")
