"""Verdicts, the registry of exercise checks, and how a check finds the learner's answer.

A check is a function registered under an exercise id (``"01.parallel_calls"``).
Its parameters name what it needs from the notebook, the way otter-grader's
``grader.check("q1")`` does: ``def parallel_calls(ctx, results, slow_function)``
receives the notebook's ``results`` and ``slow_function`` (and, if its first
parameter is called ``ctx``, a :class:`Context`). It returns a short success
message (a :class:`Passed` may carry a picture too), or raises :class:`NotAttempted` (the starter code is untouched) or
:class:`Incorrect` (with a hint naming the actual mistake, and optionally a
picture of what the learner's code did).

So a check cell is one line, ``raycourse.check("01.parallel_calls")``: no
variables to pass, no timers. What ran when is read from :mod:`raycourse.record`
(the driver's journal) and :mod:`raycourse.timing` (Ray's own records).

:func:`grade` turns a check's outcome into a :class:`Verdict` and never raises:
a learner's Run All must reach the end. :func:`check` grades, hands the verdict
to the listeners (the grade log ``RAYCOURSE_GRADE_LOG``, the learner's progress,
the class board), returns it for Jupyter to show, and raises
:class:`ExerciseNotPassed` if ``RAYCOURSE_STRICT=1`` and it is not correct.

Check modules live in :mod:`raycourse.checks` (one per lesson); an id's prefix
names its lesson, and the module is imported on first use.
"""
from __future__ import annotations

import contextlib
import html
import importlib
import inspect
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .defects import log_defect

CORRECT, NOT_ATTEMPTED, INCORRECT = "correct", "not attempted", "incorrect"
STATUSES = (CORRECT, NOT_ATTEMPTED, INCORRECT)
_ICONS = {CORRECT: ("✔", "#1a7f37", "#e6f4ea"), NOT_ATTEMPTED: ("○", "#6e5600", "#fff8c5"),
          INCORRECT: ("✘", "#b42318", "#fdecea")}  # in every common font (emoji are not)


class NotAttempted(Exception):
    """Raised by a check when the learner's answer is still the starter code."""


class Incorrect(Exception):
    """Raised by a check with a hint naming the mistake; ``evidence`` is an optional picture of what ran."""

    def __init__(self, message: str, evidence: Any = None) -> None:
        super().__init__(message)
        self.evidence = evidence


class Passed(str):
    """A success message that also carries a picture of what ran, shown when the learner asks for it."""

    evidence: Any = None

    def __new__(cls, message: str, evidence: Any = None) -> "Passed":
        made = super().__new__(cls, message)
        made.evidence = evidence
        return made


class ExerciseNotPassed(AssertionError):
    """Raised by :func:`check` in strict mode when a verdict is not correct."""


def _message_html(message: str) -> str:
    """Escape, then show `backticked` names as code."""
    escaped = html.escape(message)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


@dataclass(frozen=True)
class Verdict:
    exercise: str
    status: str
    message: str
    evidence: Any = field(default=None, compare=False, repr=False)  # a bokeh figure, shown below the verdict

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
            f"<b>{icon} {html.escape(self.exercise)}: {self.status}</b><br>{_message_html(self.message)}</div>"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        display(HTML(self._repr_html_()))
        if self.evidence is not None:
            from . import plots

            plots.show(self.evidence)

    def to_record(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every field, and a deep copy of a bokeh figure (the evidence)
        # raises "Cannot get a property value ... before HasProps.__init__".
        return {"exercise": self.exercise, "status": self.status, "message": self.message}


@dataclass
class Context:
    """What a check may ask beyond the named answers: the exercise id and the notebook's namespace."""

    exercise: str
    namespace: Mapping[str, Any]

    def cell_of(self, name: str) -> Any:
        """The latest cell run that (re)assigned ``name`` (a :class:`raycourse.record.CellRun`), or None."""
        from .record import JOURNAL

        return JOURNAL.last_cell_setting(name)


Check = Callable[..., str | None]
_REGISTRY: dict[str, Check] = {}
_TITLES: dict[str, str] = {}
_LISTENERS: list[Callable[[Verdict], None]] = []


def exercise(exercise_id: str, title: str = "") -> Callable[[Check], Check]:
    """Register a check function under ``exercise_id`` (decorator)."""

    def register(function: Check) -> Check:
        if exercise_id in _REGISTRY and _REGISTRY[exercise_id].__qualname__ != function.__qualname__:
            raise ValueError(f"exercise id {exercise_id!r} registered twice")
        _REGISTRY[exercise_id] = function
        _TITLES[exercise_id] = title or function.__doc__ or exercise_id
        return function

    return register


def listen(listener: Callable[[Verdict], None]) -> None:
    """Call ``listener(verdict)`` after every :func:`check` (the progress store and the class board do)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def _load_lesson(exercise_id: str) -> None:
    """Import a lesson's check modules (``lessonNN.py`` and its parts, ``lessonNN_*.py``), which register on import."""
    import pkgutil

    import raycourse.checks as package

    lesson = exercise_id.split(".", 1)[0]
    if lesson.isdigit():
        for module in pkgutil.iter_modules(package.__path__):
            if module.name == f"lesson{lesson}" or module.name.startswith(f"lesson{lesson}_"):
                importlib.import_module(f"raycourse.checks.{module.name}")


def registered(lesson: str | None = None) -> list[str]:
    """All exercise ids known (importing every lesson's checks), optionally of one lesson."""
    import pkgutil

    import raycourse.checks as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("lesson"):
            importlib.import_module(f"raycourse.checks.{module.name}")
    return sorted(i for i in _REGISTRY if lesson is None or i.startswith(f"{lesson}."))


def title(exercise_id: str) -> str:
    _load_lesson(exercise_id)
    return _TITLES.get(exercise_id, exercise_id)


def _assigns(source: str, name: str) -> bool:
    """Whether a cell's code binds ``name`` (by assignment, loop, import, def or class)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return re.search(rf"\b{re.escape(name)}\s*(=[^=]|\+=)", source) is not None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == name:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
    return False


def _missing(name: str) -> Exception:
    from .record import JOURNAL

    for run in reversed(JOURNAL.cells):
        if run.end is not None and run.failed and run.error and _assigns(run.source, name):
            return Incorrect(f"The cell that sets `{name}` stopped with an error before setting it ({run.error}). "
                             "Read the error under that cell, fix your code, and run the cell again.")
        if run.end is not None and name in run.assigned:
            break
    if name in JOURNAL.ever_assigned:
        return Incorrect(f"`{name}` no longer exists in this notebook (renamed or deleted?). Keep the names the "
                         "exercise uses, and run its cell again.")
    return NotAttempted(f"`{name}` is not defined yet: run the exercise's cell (the one above this check) first.")


def _answer(function: Check, exercise_id: str, namespace: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The check's arguments: the Context, then each named answer from ``given`` or the namespace."""
    arguments: dict[str, Any] = {}
    for position, (name, parameter) in enumerate(inspect.signature(function).parameters.items()):
        if position == 0 and name == "ctx":
            arguments[name] = Context(exercise_id, namespace)
        elif name in given:
            arguments[name] = given[name]
        elif parameter.default is not inspect.Parameter.empty:
            continue  # a knob for tests, never read from the notebook
        elif name in namespace:
            arguments[name] = namespace[name]
        else:
            raise _missing(name)
    unknown = set(given) - set(arguments)
    if unknown:
        raise Incorrect(f"The check cell was changed: {exercise_id} takes no `{sorted(unknown)[0]}`. "
                        "Restore it from the course: raycourse.check(\"" + exercise_id + "\").")
    return arguments


def grade(exercise_id: str, namespace: Mapping[str, Any] | None = None, **given: Any) -> Verdict:
    """Run the check for ``exercise_id`` against ``namespace`` (and names ``given``); never raises.

    Whatever the check or the learner's code prints meanwhile is kept out of the cell.
    """
    from . import record

    _load_lesson(exercise_id)
    function = _REGISTRY.get(exercise_id)
    if function is None:
        return Verdict(exercise_id, INCORRECT, f"There is no exercise called {exercise_id!r}; was the check cell edited?")
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), record.paused():
            message = function(**_answer(function, exercise_id, namespace or {}, given))
    except NotAttempted as signal:
        return Verdict(exercise_id, NOT_ATTEMPTED, str(signal) or "Replace the starter code with your answer.")
    except Incorrect as hint:
        return Verdict(exercise_id, INCORRECT, str(hint), getattr(hint, "evidence", None))
    except Exception as error:  # a defect of the check: say so plainly, keep the details for maintainers
        log_defect(exercise_id, error)
        if strict():
            raise
        return Verdict(exercise_id, INCORRECT, "The check could not judge this answer (a defect in the course's "
                       f"check, not necessarily in your code: {type(error).__name__}). Please report it; meanwhile "
                       "compare your cell with the exercise's steps.")
    return Verdict(exercise_id, CORRECT, str(message or "Well done."), getattr(message, "evidence", None))


def _log(verdict: Verdict) -> None:
    path = os.environ.get("RAYCOURSE_GRADE_LOG")
    if not path:
        return
    record = {**verdict.to_record(), "time": time.time(), "notebook": os.environ.get("RAYCOURSE_NOTEBOOK", "")}
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def strict() -> bool:
    """True when ``RAYCOURSE_STRICT`` is set to 1/true/yes (CI on the solutions)."""
    return os.environ.get("RAYCOURSE_STRICT", "").strip().lower() in {"1", "true", "yes"}


def notebook_namespace(depth: int = 2) -> Mapping[str, Any]:
    """The notebook's variables: IPython's user namespace, else the calling frame's globals."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    except ImportError:  # pragma: no cover - IPython ships with the course
        pass
    frame = inspect.currentframe()
    for _ in range(depth):
        frame = frame.f_back if frame is not None else None
    return frame.f_globals if frame is not None else {}


def announce(verdict: Verdict) -> None:
    """Hand a verdict to the grade log and every listener; a failing listener never breaks the check."""
    _log(verdict)
    for listener in list(_LISTENERS):
        try:
            listener(verdict)
        except Exception:  # progress files or the class board must never cost a learner their verdict
            pass


def check(exercise_id: str, evidence: bool = False, **given: Any) -> Verdict:
    """Grade one exercise from the notebook's own variables, announce the verdict and return it.

    Jupyter shows the returned verdict as the cell's result, with a picture of what
    your code did when the verdict is incorrect (and, with ``evidence=True``, when it
    is correct too, if the check drew one). In strict mode a verdict that is not
    correct is shown, then raised.
    """
    verdict = grade(exercise_id, notebook_namespace(), **given)
    if verdict.passed and not evidence and verdict.evidence is not None:
        verdict = Verdict(verdict.exercise, verdict.status, verdict.message)
    announce(verdict)
    if strict() and not verdict.passed:
        show(verdict)
        raise ExerciseNotPassed(str(verdict))
    return verdict


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
