"""Check for lesson 01's ``01.precision``: how many samples a precision needs, and trials that show it.

``samples_for`` is called on five precisions chosen at check time (none on a
rounding edge, some of them rounding down, so ``round()`` fails) and judged
exactly against the smallest N with ``standard_error(N) <= precision``. The
trials are tied to the tasks of the cell that set ``estimates``: their size
argument, their seeds, what ``ray.get`` returned, and that all were submitted
before the first wait.
"""
from __future__ import annotations

import math
import random
import statistics
from typing import Any, Callable

from ..grading import Incorrect, NotAttempted, exercise
from ..lessons import montecarlo
from .evidence import call, holds_ref, number, plain_list, plural, run_of
from .submitted import elsewhere, ids_of, keyed, real, require_parallel, whole, work_of

P = montecarlo.P_INSIDE


def _smallest_samples(precision: float) -> int:
    """The smallest N with ``standard_error(N) <= precision`` (as montecarlo computes it)."""
    n = max(1, math.ceil(16 * P * (1 - P) / precision**2))
    while montecarlo.standard_error(n) > precision:
        n += 1
    while n > 1 and montecarlo.standard_error(n - 1) <= precision:
        n -= 1
    return n


def _fraction(precision: float) -> float:
    """The fractional part of the exact N for ``precision``: below 0.5, round() rounds down."""
    return (16 * P * (1 - P) / precision**2) % 1


def _precisions() -> list[float]:
    """Five precisions chosen now, none on a rounding edge, and both kinds of fraction (round() fails on one)."""
    pick = random.SystemRandom()
    chosen: list[float] = []
    while len(chosen) < 5:
        precision = round(math.exp(pick.uniform(math.log(0.003), math.log(0.05))), 5)  # spread over decades
        fraction = _fraction(precision)
        lows = sum(_fraction(c) < 0.5 for c in chosen)
        if not 0.05 < fraction < 0.95 or (len(chosen) == 4 and (lows == 0 and fraction >= 0.5 or lows == 4 and fraction < 0.5)):
            continue
        chosen.append(precision)
    return chosen


def _samples_hint(precision: float, given: Any, truth: int) -> str:
    text = f"`samples_for({precision:g})` returned {number(given) if real(given) else given}"
    if given < truth:
        ratio = given / truth
        for expected, why in [(1 / 16, "the estimate is 4 × the fraction inside, so its standard error carries the "
                                       "factor 4: N = 16 p (1 − p) / precision²"),
                              (1 / 4, "square the factor 4 too: the standard error is 4 √(p (1 − p) / N), so "
                                      "N = 16 p (1 − p) / precision²")]:
            if abs(ratio - expected) < 0.02 * expected:
                return f"{text}, {ratio:.3f} of the right N ({number(truth)}): {why}."
        if abs(ratio - precision) < 0.02 * precision:
            return (f"{text}: that solves variance = precision. The precision is a standard deviation: N = "
                    f"16 p (1 − p) / precision², with the precision squared.")
        return (f"{text}, but at that N the standard error is {montecarlo.standard_error(max(int(given), 1)):.6f}, "
                f"more than {precision:g}. Round up (math.ceil): the smallest N is {number(truth)}.")
    if given == truth + 1:
        return (f"{text}, one more than needed: already N = {number(truth)} has a standard error of "
                f"{montecarlo.standard_error(truth):.6f} ≤ {precision:g}. Return the smallest such N.")
    if abs(given / truth - 0.25 / (P * (1 - P))) < 0.02 * 0.25 / (P * (1 - P)):
        return f"{text}: you used p = 0.5, the worst case. Here p is the chance of landing inside, pi / 4."
    return (f"{text}; the smallest N whose standard error is at most {precision:g} is {number(truth)}. The standard "
            "error is 4 √(p (1 − p) / N) with p = pi / 4: solve it for N and round up.")


@exercise("01.precision", "How many samples for a given precision?")
def samples_for_precision(samples_for: Any, precision: Any, estimates: Any) -> str:
    """``samples_for`` is called on precisions chosen now and judged exactly; the trials are tied to their tasks."""
    if not callable(samples_for):
        raise Incorrect("`samples_for` should be a function taking a precision and returning a number of samples.")
    trials_given = plain_list(estimates)
    chosen = _precisions()
    for eps in chosen:
        given, _ = call(samples_for, eps, what=f"samples_for({eps:g})", timeout=60)
        if given is None:
            if not trials_given:
                raise NotAttempted("`samples_for` still returns None. Solve standard_error(N) ≤ precision for N, "
                                   "then run the trials.")
            raise Incorrect("`samples_for` returns None: return the smallest number of samples N whose standard "
                            "error is at most the precision.")
        if hasattr(given, "item") and hasattr(given, "dtype"):
            given = given.item()
        if not real(given):
            raise Incorrect(f"`samples_for({eps:g})` returned {type(given).__name__}; it should return a number of "
                            "samples (a whole number).")
        if not float(given).is_integer():
            raise Incorrect(f"`samples_for({eps:g})` returned {given:,.3f}: a number of samples is a whole number. "
                            "Round up with math.ceil.")
        truth = _smallest_samples(eps)
        if int(given) != truth:
            raise Incorrect(_samples_hint(eps, int(given), truth))
    return _judge_trials(samples_for, precision, estimates, chosen)


def _judge_trials(samples_for: Callable[[float], Any], precision: Any, estimates: Any, chosen: list[float]) -> str:
    if not real(precision) or precision <= 0:
        raise Incorrect("`precision` should be a positive number, the standard error you want (e.g. 0.002).")
    values = plain_list(estimates)
    if holds_ref(estimates):
        raise Incorrect("`estimates` holds ObjectRefs: ray.get the trials' refs to fetch their estimates.")
    if not values:
        raise Incorrect(f"`samples_for` is right for {len(chosen)} precisions the check chose. Now run at least 10 "
                        "trials of N = samples_for(precision) points each as Ray tasks, and put their estimates "
                        "in `estimates`.")
    truth = _smallest_samples(float(precision))
    given, _ = call(samples_for, float(precision), what=f"samples_for({float(precision):g})", timeout=60)
    given = given.item() if hasattr(given, "item") and hasattr(given, "dtype") else given
    n = int(given) if real(given) and float(given).is_integer() and abs(given - truth) <= 1 else truth
    run = run_of("estimates")
    work = work_of(run)
    trials = [s for s in work if n in [v for v in keyed(s).values() if whole(v)]]
    if not trials:
        if work:
            drawn = sorted({v for s in work for v in keyed(s).values() if whole(v) and v > 1})
            raise Incorrect(f"Your tasks were submitted with {', '.join(number(v) for v in drawn[:4]) or 'no size'}, "
                            f"not with N = samples_for(precision) = {number(n)} points: run each trial at that N.")
        raise Incorrect("No Ray task ran in the cell that set `estimates`: the trials were computed in the notebook."
                        + elsewhere(run.source) + " Submit one task per trial with .remote() and ray.get them.")
    if len(trials) < 10:
        raise Incorrect(f"You ran {plural(len(trials), 'trial')}: a spread measured from so few is itself very "
                        "uncertain. Run at least 10 trials (20 is better), all at once.")
    rows = [keyed(s) for s in trials]
    for key in set(rows[0]).intersection(*rows[1:]):
        seeds = [row[key] for row in rows]
        if all(whole(s) for s in seeds) and not all(s == n for s in seeds) and len(set(seeds)) < len(seeds):
            raise Incorrect("Some trials were submitted with the same seed, so they repeat the same points: give every "
                            "trial its own seed (or none).")
    require_parallel(run, trials, "trials", "Submit every trial first, then ray.get the list once.")
    fetched = run.fetched(ids_of(trials))
    got = [fetched[t] for t in ids_of(trials) if t in fetched]
    if not got:
        raise Incorrect("The cell never fetched the trials' results with ray.get: `estimates` was computed in the "
                        "notebook. Set estimates = ray.get(list_of_refs).")
    as_estimates = [4 * v / n if real(v) and v > 4 else v for v in got]
    mine = sorted(float(v) for v in values if real(v)) if all(real(v) for v in values) else None
    if mine is None or len(mine) != len(got) or not all(
            math.isclose(a, b, rel_tol=1e-9) for a, b in zip(mine, sorted(as_estimates))):
        raise Incorrect(f"`estimates` does not hold what your {len(got)} trial tasks returned: keep the values "
                        "ray.get gives you (or 4 × count / N of each).")
    if len(set(mine)) == 1:
        raise Incorrect(f"All {len(mine)} trials returned the same estimate: they draw the same points (one seed "
                        "for all?). Give every trial its own seed.")
    if not all(montecarlo.plausible_estimate(v, n) for v in mine):
        raise Incorrect(f"Some trials returned {min(mine):.4f} .. {max(mine):.4f}, too far from pi for {number(n)} "
                        "points: does each trial estimate pi from N points?")
    spread = statistics.stdev(mine)
    example = chosen[0]
    return (f"`samples_for` gave the smallest N for {len(chosen)} precisions chosen just now (e.g. {example:g} needs "
            f"{number(_smallest_samples(example))} samples), and your {len(mine)} parallel trials at N = {number(n)} "
            f"spread by {spread:.5f} for a target of {float(precision):g}.")
