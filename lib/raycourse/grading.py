"""Verdicts, the registry of exercise checks, and how a verdict is shown and logged.

A check is a function registered under an exercise id (``"01.parallel_calls"``).
It receives the learner's answer as keyword arguments and either returns a short
success message, or raises :class:`NotAttempted` (the starter code is untouched)
or :class:`Incorrect` (with a hint naming the likely mistake).

:func:`grade` turns that into a :class:`Verdict` and never raises: a learner's
Run All must reach the end. :func:`check` is what notebooks call: it grades,
shows the verdict, appends it to ``RAYCOURSE_GRADE_LOG`` (one JSON line) if set,
and raises :class:`ExerciseNotPassed` if ``RAYCOURSE_STRICT=1`` and the verdict
is not correct, so CI fails on a broken solution.

Check modules live in :mod:`raycourse.checks` (one per lesson); an id's prefix
names its lesson, and the module is imported on first use.
"""
from __future__ import annotations

import html
import importlib
import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

CORRECT, NOT_ATTEMPTED, INCORRECT = "correct", "not attempted", "incorrect"

_ICONS = {CORRECT: ("✅", "#1a7f37", "#e6f4ea"), NOT_ATTEMPTED: ("⏳", "#6e5600", "#fff8c5"), INCORRECT: ("❌", "#b42318", "#fdecea")}


class NotAttempted(Exception):
    """Raised by a check when the learner's answer is still the starter code."""


class Incorrect(Exception):
    """Raised by a check with a hint naming the likely mistake."""


class ExerciseNotPassed(AssertionError):
    """Raised by :func:`check` in strict mode when a verdict is not correct."""


@dataclass(frozen=True)
class Verdict:
    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == CORRECT

    def __str__(self) -> str:
        icon = _ICONS[self.status][0]
        return f"{icon} [{self.exercise}] {self.status.upper()}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        icon, colour, background = _ICONS[self.status]
        return (
            f'<div class="raycourse-verdict" data-status="{self.status}" '
            f'style="border-left:4px solid {colour};background:{background};padding:6px 10px;margin:4px 0">'
            f"<b>{icon} {html.escape(self.exercise)}: {self.status}</b><br>{html.escape(self.message)}</div>"
        )


Check = Callable[..., str | None]
_REGISTRY: dict[str, Check] = {}
_TITLES: dict[str, str] = {}


def exercise(exercise_id: str, title: str = "") -> Callable[[Check], Check]:
    """Register a check function under ``exercise_id`` (decorator)."""

    def register(function: Check) -> Check:
        if exercise_id in _REGISTRY and _REGISTRY[exercise_id].__qualname__ != function.__qualname__:
            raise ValueError(f"exercise id {exercise_id!r} registered twice")
        _REGISTRY[exercise_id] = function
        _TITLES[exercise_id] = title or function.__doc__ or exercise_id
        return function

    return register


def _load_lesson(exercise_id: str) -> None:
    lesson = exercise_id.split(".", 1)[0]
    if lesson.isdigit():
        try:
            importlib.import_module(f"raycourse.checks.lesson{lesson}")
        except ModuleNotFoundError:
            pass


def registered(lesson: str | None = None) -> list[str]:
    """All exercise ids known (importing every lesson's checks), optionally of one lesson."""
    import pkgutil

    import raycourse.checks as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("lesson"):
            importlib.import_module(f"raycourse.checks.{module.name}")
    return sorted(i for i in _REGISTRY if lesson is None or i.startswith(f"{lesson}."))


def grade(exercise_id: str, **answer: Any) -> Verdict:
    """Run the check for ``exercise_id`` on ``answer``; never raises."""
    _load_lesson(exercise_id)
    function = _REGISTRY.get(exercise_id)
    if function is None:
        return Verdict(exercise_id, INCORRECT, f"There is no exercise called {exercise_id!r}; was the check cell edited?")
    try:
        message = function(**answer)
    except NotAttempted as signal:
        return Verdict(exercise_id, NOT_ATTEMPTED, str(signal) or "Replace the starter code with your answer.")
    except Incorrect as hint:
        return Verdict(exercise_id, INCORRECT, str(hint))
    except TypeError as error:
        if "argument" in str(error) and function.__name__ in str(error):
            return Verdict(exercise_id, INCORRECT, f"The check cell was changed: {error}. Restore it from the course.")
        return Verdict(exercise_id, INCORRECT, f"The check could not use your answer ({type(error).__name__}: {error}).")
    except Exception as error:  # a learner's object can fail in any way; say so instead of a traceback
        return Verdict(exercise_id, INCORRECT, f"The check could not use your answer ({type(error).__name__}: {error}).")
    return Verdict(exercise_id, CORRECT, message or "Well done.")


def _log(verdict: Verdict) -> None:
    path = os.environ.get("RAYCOURSE_GRADE_LOG")
    if not path:
        return
    record = {**asdict(verdict), "time": time.time(), "notebook": os.environ.get("RAYCOURSE_NOTEBOOK", "")}
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def strict() -> bool:
    """True when ``RAYCOURSE_STRICT`` is set to 1/true/yes (CI on the solutions)."""
    return os.environ.get("RAYCOURSE_STRICT", "").strip().lower() in {"1", "true", "yes"}


def show(verdict: Verdict) -> None:
    """Display a verdict as rich HTML in Jupyter, or as a line of text elsewhere."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython ships with the course
        shell = None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from IPython.display import display

        display(verdict)
    else:
        print(verdict)


def check(exercise_id: str, **answer: Any) -> Verdict:
    """Grade, show, and log one exercise; in strict mode raise unless correct.

    Returns the verdict so a learner can inspect it; the check cells end with
    ``;`` so Jupyter does not show it twice.
    """
    verdict = grade(exercise_id, **answer)
    show(verdict)
    _log(verdict)
    if strict() and not verdict.passed:
        raise ExerciseNotPassed(str(verdict))
    return verdict


# --- Small, shared evidence checks -------------------------------------------------


def is_object_ref(value: Any) -> bool:
    import ray

    return isinstance(value, ray.ObjectRef)


def expect_values(actual: Any, expected: list[Any], what: str = "results") -> None:
    """Raise :class:`Incorrect` unless ``actual`` equals ``expected`` as a list of plain values.

    The hints cover the usual slips: ObjectRefs instead of values (forgot
    ``ray.get``), a single ObjectRef for the whole list, the wrong length.
    """
    if is_object_ref(actual):
        raise Incorrect(f"`{what}` is an ObjectRef (a future). Call ray.get(...) on it to fetch the values.")
    if actual is None or actual is Ellipsis:
        raise NotAttempted(f"`{what}` is not set yet.")
    try:
        values = list(actual)
    except TypeError:
        raise Incorrect(f"`{what}` should be a list of {len(expected)} values, got {type(actual).__name__}.") from None
    if any(is_object_ref(v) for v in values):
        raise Incorrect(
            f"`{what}` holds ObjectRefs, not values. Call ray.get(list_of_refs) once, on the whole list, to fetch them."
        )
    if len(values) != len(expected):
        raise Incorrect(f"`{what}` has {len(values)} items; expected {len(expected)}.")
    if values != list(expected):
        raise Incorrect(f"`{what}` is {values!r}; expected {list(expected)!r}.")
