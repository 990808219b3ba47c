"""Checks for lesson 02, part two: ``02.nested_tasks``, judged on Ray's records of who submitted whom.

See :mod:`raycourse.checks.lesson02` for how tasks are found by the learner's own function objects.
"""
from __future__ import annotations
import math
import time
from collections import Counter
from typing import Any, Sequence
from .. import plots, record, timing
from ..grading import Incorrect, NotAttempted, exercise
from .evidence import holds_ref, is_ref, is_remote_function, parallel_without_ray, plain_list, plural, short
from .evidence import _equal as equal
from .lesson02 import NOISE_BAND, _MISSING, _error_text, _first_arg, _latest_attempt, _raw_fetched, _rounded, _spans, _task_name, _through


def _mean_score(learning_rate: float, folds: int) -> float:
    """The noise-free mean of the lesson's score over ``folds`` folds."""
    distance = math.log10(learning_rate) + 1.3
    return sum(0.95 - 0.1 * distance ** 2 - 0.01 * fold for fold in range(folds)) / folds


def _children(parents: Sequence[str], name: str, expect: int, timeout: float = 20.0,
              grace: float = 6.0) -> list[timing.Interval]:
    """Tasks called ``name`` that the tasks ``parents`` launched, polling until ``expect`` are reported."""
    wanted = set(parents)
    started = time.monotonic()
    with record.paused():
        while True:
            found = [i for i in timing.records().values() if i.parent in wanted and i.name == name]
            waited = time.monotonic() - started
            if len(found) >= expect or waited >= timeout or (not found and waited >= grace):
                return sorted(found, key=lambda i: i.start)
            time.sleep(0.1)


def _folds_sketch(folds: int) -> list[timing.Interval]:
    """One experiment waiting while its folds run side by side."""
    spans = [timing.Interval("run_experiment", "sketch-exp", "sketch-000", 0.0, 0.3)]
    spans += [timing.Interval("evaluate", f"sketch-f{f}", f"sketch-{f + 1:03d}", 0.02, 0.27) for f in range(folds)]
    return spans


def _learning_rates(value: Any) -> list[float]:
    rates = plain_list(value)
    if not rates or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in rates):
        raise Incorrect("`LEARNING_RATES` should be the list of positive learning rates from the exercise cell; "
                        "restore it.")
    return [float(r) for r in rates]


@exercise("02.nested_tasks", "A parallel sweep: experiments that launch their own evaluation tasks")
def nested_tasks(ctx: Any, run_experiment: Any, evaluate: Any, LEARNING_RATES: Any, NUM_FOLDS: Any) -> str:
    """The driver's journal for the experiments; Ray's records (each task's parent) for the folds inside them."""
    rates = _learning_rates(LEARNING_RATES)
    if not isinstance(NUM_FOLDS, int) or isinstance(NUM_FOLDS, bool) or NUM_FOLDS < 2:
        raise Incorrect("`NUM_FOLDS` should be the number of folds from the exercise cell (3); restore it.")
    run, sets = _latest_attempt("results", [run_experiment, evaluate])
    if run is None:
        raise NotAttempted("`results` is not defined yet: run the exercise's cell first.")
    results = ctx.namespace.get("results", _MISSING) if sets else _MISSING
    best = ctx.namespace.get("best", _MISSING) if sets else _MISSING
    tasks = run.submissions(kind="task")
    experiments = [s for s in tasks if _through(s, run_experiment)]
    from_driver = [s for s in tasks if _through(s, evaluate)]

    if not experiments and not is_remote_function(run_experiment):
        if not from_driver and not is_remote_function(evaluate):
            elsewhere = parallel_without_ray(run.source)
            if elsewhere:
                raise Incorrect(f"You ran the sweep with {elsewhere} in the notebook's own process. This exercise is "
                                "about Ray: make run_experiment and evaluate remote functions.")
            raise NotAttempted("The sweep still runs in the notebook, one fold after another. Make run_experiment "
                               "and evaluate remote functions, and submit the experiments with .remote().")
        raise Incorrect("`run_experiment` is a plain function, so each experiment ran in your notebook"
                        + (" and the driver submitted the evaluate tasks itself" if from_driver else "")
                        + ". This exercise is about nesting: decorate run_experiment with @ray.remote too, so each "
                          "experiment is a task that launches its own evaluate tasks.")
    if from_driver:
        raise Incorrect(f"The driver submitted {plural(len(from_driver), 'evaluate task')} itself: that is not "
                        "nesting. Submit the folds inside run_experiment, so each experiment task launches its own "
                        "evaluate tasks, and let the driver submit only the experiments.")
    if not experiments:
        raise Incorrect("No run_experiment task ran in the cell that set `results`: the results were computed in the "
                        "notebook or typed in. Submit run_experiment.remote(lr) for each learning rate.")
    given = [_first_arg(s) for s in experiments]
    if not all(isinstance(g, (int, float)) and not isinstance(g, bool) for g in given) or \
            Counter(round(float(g), 12) for g in given) != Counter(round(r, 12) for r in rates):
        raise Incorrect(f"The cell submitted {plural(len(experiments), 'run_experiment task')}, for "
                        f"{short(given)}: submit one per learning rate in LEARNING_RATES, once each.")
    exp_ids = [s.task_ids[0] for s in experiments if s.task_ids]
    waited = run.blocking_before(exp_ids)
    if waited:
        spans = _spans(exp_ids, timeout=10)
        raise Incorrect(
            "The driver waited for an experiment (a ray.get inside the loop) before submitting the next, so the "
            "experiments ran one at a time. Submit every run_experiment.remote(lr) first, then ray.get the list once.",
            evidence=plots.compare(spans, plots.sketch([[(0.0, 0.3)] for _ in rates], name="run_experiment"))
            if spans else None)

    if results is _MISSING:
        error = _error_text(run)
        raise Incorrect("The latest run of your sweep cell did not set `results`"
                        + (f": its ray.get raised {error}" if error else " (did it raise an error?)")
                        + ". Fix the cell and run it again.")
    if is_ref(results):
        raise Incorrect("`results` is an ObjectRef: ray.get the list of run_experiment refs.")
    raw = _raw_fetched(run, exp_ids)
    if any(record.refs_in(summary) for summary in raw.values()) or (holds_ref(results) and not raw):
        raise Incorrect("run_experiment returned ObjectRefs instead of a number. Inside run_experiment, ray.get the "
                        "list of evaluate refs and return their mean: a ref returned from a task is not resolved "
                        "for you.")
    if holds_ref(results):
        raise Incorrect("`results` holds ObjectRefs: call ray.get once, on the list of run_experiment refs.")
    if not raw:
        raise Incorrect("The cell submitted the experiments but never fetched their results with ray.get: `results` "
                        "was computed in the notebook or typed in. Set results = ray.get(experiment_refs).")
    if len(raw) < len(exp_ids):
        raise Incorrect(f"The cell fetched {len(raw)} of the {len(exp_ids)} experiments' results: ray.get the whole "
                        "list of run_experiment refs.")
    by_rate = {}
    for s in experiments:
        by_rate.setdefault(float(_first_arg(s)), record.plain(raw[s.task_ids[0]]))
    expected = [by_rate[r] for r in rates]
    values = plain_list(results)
    if values is None or len(values) != len(rates):
        raise Incorrect(f"`results` should be a list of {len(rates)} mean scores, one per learning rate, got "
                        f"{short(results)}.")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in expected):
        raise Incorrect(f"run_experiment returned {short(expected[0])}, not a number: return the mean of the "
                        "fold scores.")
    if not equal(values, expected):
        if sorted(map(repr, values)) == sorted(map(repr, expected)):
            raise Incorrect("`results` holds your experiments' scores in the wrong order: keep them in the order of "
                            "LEARNING_RATES, as ray.get returns them for the refs in that order.")
        raise Incorrect(f"`results` is {_rounded(values)}, but your run_experiment tasks returned "
                        f"{_rounded(expected)}: keep the values ray.get gives you (every run draws new noise, so "
                        "typed-in numbers do not match).")

    eval_name = _task_name(evaluate)
    folds = _children(exp_ids, eval_name, expect=len(exp_ids) * NUM_FOLDS)
    if not folds:
        if not is_remote_function(evaluate):
            raise Incorrect("`evaluate` is a plain function, so each experiment computed its folds one after another "
                            "inside its own task. Decorate evaluate with @ray.remote and, inside run_experiment, "
                            "submit every fold with evaluate.remote(...) before one ray.get on the list.")
        raise Incorrect("Your run_experiment tasks launched no evaluate task: inside run_experiment, submit each fold "
                        "with evaluate.remote(learning_rate, fold) and ray.get the list.")
    by_parent = {p: [f for f in folds if f.parent == p] for p in exp_ids}
    rate_of = {s.task_ids[0]: float(_first_arg(s)) for s in experiments if s.task_ids}
    for parent, own in by_parent.items():
        if len(own) != NUM_FOLDS:
            raise Incorrect(f"The experiment for learning rate {rate_of[parent]:g} launched "
                            f"{plural(len(own), 'evaluate task')}; expected {NUM_FOLDS}, one per fold.")
    for parent, own in by_parent.items():
        submitted = [f.submitted if f.submitted is not None else f.start for f in own]
        if max(submitted) >= min(f.end for f in own):
            late = max(own, key=lambda f: f.submitted if f.submitted is not None else f.start)
            spans = _spans([parent], timeout=5) + own
            raise Incorrect(
                f"Inside the experiment for learning rate {rate_of[parent]:g} the folds ran one after another: a fold "
                "was submitted only after an earlier fold had finished (a ray.get inside run_experiment's loop). "
                "Submit all folds with evaluate.remote(...) first, then ray.get the list once.",
                evidence=plots.compare(spans, _folds_sketch(NUM_FOLDS), marked=[late.task_id]))
    for rate, value in zip(rates, values):
        if abs(float(value) - _mean_score(rate, NUM_FOLDS)) > NOISE_BAND:
            raise Incorrect(f"For learning rate {rate:g} your experiment returned {float(value):.4f}, not the mean of "
                            "its fold scores: run_experiment should return sum(scores) / len(scores).")

    right = rates[max(range(len(rates)), key=lambda k: float(values[k]))]
    if best is _MISSING:
        raise NotAttempted("`best` is not set yet: set it to the learning rate with the highest mean score.")
    if isinstance(best, (int, float)) and not isinstance(best, bool) and any(
            math.isclose(float(best), float(v), rel_tol=1e-9) for v in values) and not math.isclose(float(best), right):
        raise Incorrect(f"`best` is {float(best):.4f}, a score: set it to the learning rate with the highest mean "
                        f"score ({right:g}), e.g. LEARNING_RATES[results.index(max(results))].")
    if not isinstance(best, (int, float)) or isinstance(best, bool) or not math.isclose(float(best), right):
        raise Incorrect(f"`best` is {short(best)}, but the learning rate with the highest mean score in your "
                        f"`results` is {right:g}.")
    together = timing.max_concurrency(folds)
    return (f"Best learning rate: {right:g}. All {len(rates)} experiments were submitted before the driver waited, "
            f"and each launched its {NUM_FOLDS} folds at once: up to {together} evaluations ran at the same time "
            "while their experiments waited in ray.get (a blocked task lends its CPU).")
