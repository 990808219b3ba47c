"""Prepare a learner's notebook for grading: read it, tell its lesson, restore the course's check cells.

Used by :mod:`.run`. Kept apart because it needs no kernel: everything here is
plain notebook manipulation and is unit-tested without running anything.

* :func:`read_notebook` turns a file's bytes into a notebook or a :class:`Problem`
  with a reason a person can act on (empty file, invalid JSON, no cells).
* :func:`check_lesson` compares the notebook with the course's reference
  notebooks (``notebooks/NN_topic.ipynb``) by cell ids, unchanged markdown and
  check calls, so a file named 01 that holds lesson 03 is reported, not run.
* :func:`prepare` builds the notebook that runs: outputs dropped, a first cell
  that installs the grader's guard (:mod:`.sentinel`), and each exercise's
  pristine check cell (from the reference) calling the guard's checker with a
  fresh nonce. The grader runs the first cell and the check cells silently.
* :func:`start_arguments` reads the learner's ``raycourse.start(...)`` calls, so
  the grader can give the notebook a shared Ray of exactly that size.
"""
from __future__ import annotations

import ast
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from ... import grading
from .sentinel import CHECKER_MODULE

PLACEHOLDER = "Write your answer here"
_CHECK_CALL = r"""\b(?:check|grade)\(\s*["']{}["']"""
OUTPUT_LIMIT = 2_000_000  # characters of printed output a kernel sends before the guard drops the rest
PROLOGUE = """# raycourse-grade: the grader's guard, installed before any learner code (run silently).
import raycourse.tools.classroom.sentinel as _raycourse_sentinel
_raycourse_sentinel.install({lesson!r}, {limit})
del _raycourse_sentinel
"""


class Problem(Exception):
    """A notebook that cannot be graded; the message is the reason shown in the report."""


def _norm(text: str) -> str:
    return " ".join(text.split()).rstrip(";").strip()


def _source(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _snippet(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= 60 else line[:57] + "..."


# --- the course's reference notebooks ---------------------------------------------------------


@dataclass
class Lesson:
    """A course notebook (``notebooks/NN_topic.ipynb``) and the facts used to grade against it."""

    number: str
    stem: str
    cells: list[Any]
    checks: dict[str, int]  # exercise id -> index of its check cell, in notebook order
    expected: list[str]  # ids to grade: the notebook's checks, then any other registered id

    @property
    def cell_ids(self) -> set[str]:
        return {c["id"] for c in self.cells if c.get("id")}

    @property
    def markdown(self) -> set[str]:
        return {_norm(_source(c)) for c in self.cells if c["cell_type"] == "markdown" and PLACEHOLDER not in _source(c)}


def load_course(course: Path) -> dict[str, Lesson]:
    """Every ``NN_topic.ipynb`` in the course's ``notebooks/``, by lesson number."""
    lessons = {}
    for path in sorted((course / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        checks: dict[str, int] = {}
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                for found in re.findall(r"""raycourse\.check\(\s*["']([^"']+)["']""", _source(cell)):
                    checks.setdefault(found, index)
        number = path.name[:2]
        extra = [i for i in grading.registered(number) if i not in checks]
        lessons[number] = Lesson(number, path.stem, nb.cells, checks, list(checks) + extra)
    return lessons


def read_notebook(data: bytes, name: str) -> Any:
    """The notebook in ``data`` (nbformat 4), or :class:`Problem` saying why it is not one."""
    if not data.strip():
        raise Problem(f"{name} is empty ({len(data)} bytes): the notebook was not saved.")
    try:
        raw = json.loads(data.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as error:
        raise Problem(f"{name} is not a notebook: invalid JSON ({error.msg} at line {error.lineno}).") from None
    except RecursionError:
        raise Problem(f"{name} is not a notebook: its JSON is nested too deeply.") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        raise Problem(f"{name} is JSON but not a Jupyter notebook (no list of cells).")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as error:  # nbformat raises several types for damaged notebooks
        raise Problem(f"{name} is a damaged notebook ({type(error).__name__}: {_snippet(str(error))}).") from None
    if not any(_source(cell).strip() for cell in nb.cells):
        raise Problem(f"{name} has no cells with content: an empty notebook.")
    return nb


def likeness(nb: Any, lesson: Lesson) -> float:
    """0..1: how much of ``lesson`` is in ``nb`` (cell ids, unchanged markdown, or its check calls)."""
    ids = {c.get("id") for c in nb.cells}
    text = {_norm(_source(c)) for c in nb.cells if c.cell_type == "markdown"}
    code = "\n".join(_source(c) for c in nb.cells if c.cell_type == "code")
    fractions = [len(ids & lesson.cell_ids) / max(1, len(lesson.cell_ids)), len(text & lesson.markdown) / max(1, len(lesson.markdown))]
    if lesson.checks:
        fractions.append(sum(bool(re.search(_CHECK_CALL.format(re.escape(i)), code)) for i in lesson.checks) / len(lesson.checks))
    return max(fractions)


def check_lesson(nb: Any, named: Lesson, lessons: dict[str, Lesson]) -> None:
    """Raise :class:`Problem` if ``nb`` is not the lesson its file name says."""
    if likeness(nb, named) >= 0.3:
        return
    score, best = max((likeness(nb, lesson), number) for number, lesson in lessons.items())
    if score >= 0.5:
        raise Problem(f"This is lesson {best} ({lessons[best].stem}.ipynb), not lesson {named.number}: was the wrong file handed in?")
    raise Problem(f"This does not look like lesson {named.number} ({named.stem}.ipynb): none of its cells match the course's.")


# --- preparing the notebook that runs ------------------------------------------------------------


def _call_is(node: ast.AST, exercise: str) -> bool:
    """Is ``node`` a statement ``check("exercise", ...)`` / ``raycourse.grade("exercise", ...)``?"""
    call = node.value if isinstance(node, ast.Expr) else None
    if not isinstance(call, ast.Call) or not call.args:
        return False
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    first = call.args[0]
    return name in {"check", "grade"} and isinstance(first, ast.Constant) and first.value == exercise


def _without_checks(source: str, exercises: list[str]) -> str:
    """The learner's check cell minus its check calls: the code the learner added, run before the real check."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    for node in reversed(tree.body):
        if any(_call_is(node, e) for e in exercises):
            del lines[node.lineno - 1 : node.end_lineno]
    return "".join(lines)


def pristine_check(source: str, nonce: str) -> str:
    """The course's check cell with ``raycourse.check`` replaced by the guard's checker for this nonce."""
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant)]
    call = next(n for n in calls if getattr(n.func, "attr", getattr(n.func, "id", "")) == "check")
    lines = source.encode().splitlines(keepends=True)
    head = b"".join(lines[: call.func.lineno - 1]) + lines[call.func.lineno - 1][: call.func.col_offset]
    tail = lines[call.func.end_lineno - 1][call.func.end_col_offset :] + b"".join(lines[call.func.end_lineno :])
    replacement = f'__import__("sys").modules["{CHECKER_MODULE}"].checker("{nonce}")'
    return "# The course's check cell, run by the grader.\n" + (head.decode() + replacement + tail.decode())


@dataclass
class Plan:
    """The notebook to run, and where each exercise's check is in it."""

    nb: Any
    origin: list[int | None]  # graded cell index -> the learner's cell number (1-based), None if inserted
    nonces: dict[str, str] = field(default_factory=dict)  # exercise -> nonce its check cell's verdict carries
    check_cell: dict[str, int] = field(default_factory=dict)  # exercise -> graded cell index
    notes: dict[str, str] = field(default_factory=dict)  # exercise -> what the grader had to repair
    errors: dict[str, str] = field(default_factory=dict)  # exercise -> why it cannot be graded

    @property
    def silent(self) -> set[int]:
        """Cells the grader runs silently: its guard and the course's check cells."""
        return {0, *self.check_cell.values()}

    def learner_cells(self) -> list[tuple[int, str]]:
        """(the learner's cell number, source) of every learner code cell that runs."""
        return [(number, _source(cell)) for cell, number in zip(self.nb.cells, self.origin)
                if number is not None and cell.cell_type == "code"]


def _find_check(nb: Any, lesson: Lesson, exercise: str) -> tuple[str, int] | None:
    """("replace" | "after" | "before", learner cell index) locating exercise's check cell, if possible."""
    ref = lesson.checks[exercise]
    ids = [c.get("id") for c in nb.cells]
    if lesson.cells[ref].get("id") in ids:
        return "replace", ids.index(lesson.cells[ref]["id"])
    pattern = re.compile(_CHECK_CALL.format(re.escape(exercise)))
    calls = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and pattern.search(_source(c))]
    if calls:
        return "replace", calls[-1]
    if ref > 0 and lesson.cells[ref - 1].get("id") in ids:
        return "after", ids.index(lesson.cells[ref - 1]["id"])
    if ref + 1 < len(lesson.cells):
        following = lesson.cells[ref + 1]
        if following.get("id") in ids:
            return "before", ids.index(following["id"])
        texts = [_norm(_source(c)) for c in nb.cells]
        if _norm(_source(following)) and _norm(_source(following)) in texts:
            return "before", texts.index(_norm(_source(following)))
    return None


def prepare(nb: Any, lesson: Lesson) -> Plan:
    """Strip outputs, put the course's pristine check cells in place, add the guard's cell first."""
    where: dict[int, dict[str, list[str]]] = {}
    errors: dict[str, str] = {}
    notes: dict[str, str] = {}
    for exercise in lesson.checks:
        found = _find_check(nb, lesson, exercise)
        if found is None:
            errors[exercise] = "The check cell was deleted and the grader could not tell where it belongs; restore it from the course."
            continue
        how, index = found
        where.setdefault(index, {}).setdefault(how, []).append(exercise)
        pristine = _source(lesson.cells[lesson.checks[exercise]])
        if how != "replace":
            notes[exercise] = "The check cell was missing; the course's check was put back after your answer."
        elif _norm(_source(nb.cells[index])) != _norm(pristine):
            notes[exercise] = "The check cell had been edited; the course's original check was run instead."
    prologue = PROLOGUE.format(lesson=lesson.number, limit=OUTPUT_LIMIT)
    plan = Plan(nbformat.v4.new_notebook(metadata=nb.metadata), [None], notes=notes, errors=errors)
    plan.nb.cells.append(nbformat.v4.new_code_cell(prologue))

    def add_checks(exercises: list[str]) -> None:
        for exercise in exercises:
            plan.nonces[exercise] = nonce = secrets.token_hex(16)
            plan.check_cell[exercise] = len(plan.nb.cells)
            plan.nb.cells.append(nbformat.v4.new_code_cell(pristine_check(_source(lesson.cells[lesson.checks[exercise]]), nonce)))
            plan.origin.append(None)

    for index, cell in enumerate(nb.cells):
        todo = where.get(index, {})
        add_checks(todo.get("before", []))
        source = _source(cell)
        if "replace" in todo:
            source = _without_checks(source, todo["replace"]) if cell.cell_type == "code" else ""
        if source.strip():
            kind = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}.get(cell.cell_type, nbformat.v4.new_raw_cell)
            plan.nb.cells.append(kind(source))
            plan.origin.append(index + 1)
        add_checks(todo.get("replace", []) + todo.get("after", []))
    return plan


# --- what Ray the notebook asks for ---------------------------------------------------------------


def _literal(node: ast.AST) -> Any:
    """A constant, a dict/list of them, or arithmetic on numbers (``400 * 1024**2``); ValueError otherwise."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Pow)):
        left, right = _literal(node.left), _literal(node.right)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)):
            raise ValueError("arithmetic on non-numbers")
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Pow: lambda a, b: a ** b}
        return ops[type(node.op)](left, right)
    return ast.literal_eval(node)


def start_arguments(cells: list[tuple[int, str]]) -> tuple[list[dict[str, Any]] | None, bool]:
    """The literal arguments of each ``raycourse.start(...)`` call in the learner's cells (None if any is not
    literal), and whether the cells call ``ray.init`` without an address (they start a Ray of their own)."""
    from IPython.core.inputtransformer2 import TransformerManager

    calls: list[dict[str, Any]] = []
    literal, own_init = True, False
    for _, source in cells:
        try:
            tree = ast.parse(TransformerManager().transform_cell(source))
        except (SyntaxError, ValueError, IndexError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = f"{getattr(func.value, 'id', '')}.{func.attr}" if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "ray.init" and not any(k.arg == "address" for k in node.keywords):
                own_init = True
            elif name in {"raycourse.start", "start"} or name.endswith(".start") and name.split(".")[0] in {"raycourse", "rc"}:
                try:
                    arguments = {k.arg: _literal(k.value) for k in node.keywords if k.arg}
                    if node.args:
                        arguments["num_cpus"] = _literal(node.args[0])
                    if len(node.args) > 1 or any(k.arg is None for k in node.keywords):
                        raise ValueError("positional arguments beyond num_cpus")
                    calls.append(arguments)
                except (ValueError, TypeError, SyntaxError, ZeroDivisionError, OverflowError):
                    literal = False
    return (calls if literal else None), own_init
