"""Prepare a learner's notebook for grading: read it, tell its lesson, restore the course's check cells.

Used by :mod:`raycourse.grade` (whose docstring has the threat model). Kept apart
because it needs no kernel: everything here is plain notebook manipulation and is
unit-tested without running anything.

* :func:`read_notebook` turns a file into a notebook or a :class:`Problem` with a
  reason a person can act on (empty file, invalid JSON, no cells).
* :func:`check_lesson` compares the notebook with the course's reference
  notebooks (``notebooks/NN_topic.ipynb``) by cell ids, unchanged markdown and
  check calls, so a file named 01 that holds lesson 03 is reported, not run.
* :func:`discover` finds the learners' files (layouts in :mod:`raycourse.grade`).
* :func:`prepare` builds the notebook that runs: outputs dropped, a hidden first
  cell that snapshots the course's modules, and each exercise's pristine check
  cell (from the reference) wired to the snapshot and to a per-cell token.
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
from .report import ERROR, Row

PLACEHOLDER = "Write your answer here"
_CHECK_CALL = r"""\b(?:check|grade)\(\s*["']{}["']"""
_PROLOGUE = r'''# raycourse.grade: snapshot the course's checks before any learner code runs.
def _raycourse_grader(log_path, lesson):
    import importlib, json, sys, types
    import raycourse.grading as grading
    try:
        importlib.import_module(f"raycourse.checks.lesson{lesson}")
    except ModuleNotFoundError:
        pass
    modules = {n: m for n, m in list(sys.modules.items()) if m is not None and n.split(".")[0] == "raycourse"}
    saved = {n: dict(vars(m)) for n, m in modules.items()}
    functions = [(f, f.__code__, f.__defaults__, f.__kwdefaults__) for names in saved.values() for f in names.values()
                 if isinstance(f, types.FunctionType) and str(f.__module__).startswith("raycourse")]
    registry, grade, show, write, dumps = dict(grading._REGISTRY), grading.grade, grading.show, open, json.dumps

    def restore():
        for name, module in modules.items():
            sys.modules[name] = module
            vars(module).update(saved[name])
        for f, code, defaults, kwdefaults in functions:
            f.__code__, f.__defaults__, f.__kwdefaults__ = code, defaults, kwdefaults
        grading._REGISTRY.clear()
        grading._REGISTRY.update(registry)

    def checker(token):
        def check(exercise_id, **answer):
            restore()
            verdict = grade(exercise_id, **answer)
            record = {"token": token, "exercise": verdict.exercise, "status": verdict.status, "message": verdict.message}
            with write(log_path, "a", encoding="utf-8") as log:
                log.write(dumps(record) + "\n")
            show(verdict)
        return check

    grader = types.ModuleType("_raycourse_grader")
    grader.checker = checker
    sys.modules["_raycourse_grader"] = grader


_raycourse_grader(LOG_PATH, LESSON)
del _raycourse_grader
'''


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


def read_notebook(path: Path) -> Any:
    """The notebook at ``path`` (nbformat 4), or :class:`Problem` saying why it is not one."""
    data = path.read_bytes()
    if not data.strip():
        raise Problem(f"{path.name} is empty ({len(data)} bytes): the notebook was not saved.")
    try:
        raw = json.loads(data.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as error:
        raise Problem(f"{path.name} is not a notebook: invalid JSON ({error.msg} at line {error.lineno}).") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        raise Problem(f"{path.name} is JSON but not a Jupyter notebook (no list of cells).")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as error:  # nbformat raises several types for damaged notebooks
        raise Problem(f"{path.name} is a damaged notebook ({type(error).__name__}: {error}).") from None
    if not any(_source(cell).strip() for cell in nb.cells):
        raise Problem(f"{path.name} has no cells with content: an empty notebook.")
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


def pristine_check(source: str, token: str) -> str:
    """The course's check cell with ``raycourse.check`` replaced by the grader's snapshotted checker."""
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant)]
    call = next(n for n in calls if getattr(n.func, "attr", getattr(n.func, "id", "")) == "check")
    lines = source.encode().splitlines(keepends=True)
    head = b"".join(lines[: call.func.lineno - 1]) + lines[call.func.lineno - 1][: call.func.col_offset]
    tail = lines[call.func.end_lineno - 1][call.func.end_col_offset :] + b"".join(lines[call.func.end_lineno :])
    replacement = f'__import__("sys").modules["_raycourse_grader"].checker("{token}")'
    return "# The course's check cell, run by the grader.\n" + (head.decode() + replacement + tail.decode())


@dataclass
class Plan:
    """The notebook to run, and where each exercise's check is in it."""

    nb: Any
    origin: list[int | None]  # graded cell index -> the learner's cell number (1-based), None if inserted
    tokens: dict[str, str] = field(default_factory=dict)  # exercise -> token its check cell logs
    check_cell: dict[str, int] = field(default_factory=dict)  # exercise -> graded cell index
    notes: dict[str, str] = field(default_factory=dict)  # exercise -> what the grader had to repair
    errors: dict[str, str] = field(default_factory=dict)  # exercise -> why it cannot be graded


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


def prepare(nb: Any, lesson: Lesson, log_path: Path) -> Plan:
    """Strip outputs, put the course's pristine check cells in place, add the snapshot cell first."""
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
    prologue = _PROLOGUE.replace("LOG_PATH", repr(str(log_path))).replace("LESSON", repr(lesson.number))
    plan = Plan(nbformat.v4.new_notebook(metadata=nb.metadata), [None], notes=notes, errors=errors)
    plan.nb.cells.append(nbformat.v4.new_code_cell(prologue))

    def add_checks(exercises: list[str]) -> None:
        for exercise in exercises:
            plan.tokens[exercise] = token = secrets.token_hex(12)
            plan.check_cell[exercise] = len(plan.nb.cells)
            plan.nb.cells.append(nbformat.v4.new_code_cell(pristine_check(_source(lesson.cells[lesson.checks[exercise]]), token)))
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


# --- finding the submissions -----------------------------------------------------------------------


def lesson_of(stem: str, lessons: dict[str, Lesson]) -> tuple[str | None, str]:
    """(lesson number or None, the part of the file name that named it)."""
    for number, lesson in lessons.items():
        if lesson.stem.lower() in stem.lower():
            start = stem.lower().index(lesson.stem.lower())
            return number, stem[start : start + len(lesson.stem)]
    match = re.search(r"(?<!\d)(\d{1,2})(?!\d)", stem)
    return (match.group(1).zfill(2), match.group(1)) if match else (None, "")


def learner_of(relative: Path, token: str, root: Path) -> str:
    """The first folder, else the file name without its lesson part (``alice__01_tasks`` -> ``alice``)."""
    if len(relative.parts) > 1:
        return relative.parts[0]
    stem = relative.stem
    parts = [p for p in stem.split("__") if p] if "__" in stem else [stem.replace(token, " ", 1) if token else stem]
    name = next((p for p in parts if not token or token not in p), parts[0] if parts else "")
    return name.strip(" _-.()") or root.resolve().name


def discover(root: Path, lessons: dict[str, Lesson], wanted: list[str] | None, skip: Path) -> tuple[dict[tuple[str, str], list[Path]], list[Row]]:
    """{(learner, lesson): files} for the lessons to grade, and rows for files that name no known lesson."""
    found: dict[tuple[str, str], list[Path]] = {}
    unknown: list[Row] = []
    for path in sorted(root.rglob("*.ipynb")):
        relative = path.relative_to(root)
        if any(part.startswith((".", "__MACOSX")) for part in relative.parts) or skip in path.resolve().parents:
            continue
        number, token = lesson_of(path.stem, lessons)
        learner = learner_of(relative, token, root)
        if number in lessons and (wanted is None or number in wanted):
            found.setdefault((learner, number), []).append(path)
        elif number not in lessons and wanted is None:
            why = f"lesson {number} is not part of this course" if number else "its name has no lesson number"
            unknown.append(Row(learner, number or "?", "", ERROR, f"{relative} was not graded: {why} (name files NN_topic.ipynb)."))
    return found, unknown


def choose(files: list[Path], lesson: Lesson) -> tuple[Path, str]:
    """The file to grade among a learner's files for one lesson, and a note naming the others."""
    exact = [f for f in files if f.stem == lesson.stem]
    chosen = exact[0] if exact else max(files, key=lambda f: f.stat().st_mtime)
    others = [f.name for f in files if f != chosen]
    return chosen, (f"Graded {chosen.name}; also handed in: {', '.join(others)}." if others else "")
