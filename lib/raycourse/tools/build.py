"""Generate the learners' ``notebooks/`` from the hand-edited ``solutions/``.

Answers are marked in code cells of a solution notebook::

    ### BEGIN SOLUTION
    results = ray.get([slow_function.remote(i) for i in range(4)])
    ### STARTER
    # results = [slow_function(i) for i in range(4)]
    ### END SOLUTION

The generator keeps everything outside the markers, drops the solution lines,
and uncomments the starter lines (one ``# `` after the indentation). Without a
``### STARTER`` part the answer is simply removed. In markdown cells, text
between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` becomes an
invitation to answer. Both folders are written without outputs.

    raycourse-build            # rewrite notebooks/ (and clean solutions/)
    raycourse-build --check    # exit 1 if anything would change
    raycourse-build --from-percent draft.py solutions/NN_topic.ipynb
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

BEGIN, STARTER, END = "### BEGIN SOLUTION", "### STARTER", "### END SOLUTION"
MD_BEGIN, MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
MD_PLACEHOLDER = "*Write your answer here.*"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class MarkerError(ValueError):
    """A solution cell's markers are unbalanced or out of order."""


def _uncomment(line: str) -> str:
    match = re.match(r"^(\s*)# ?(.*)$", line)
    if not match:
        raise MarkerError(f"starter line is not commented out: {line!r}")
    return match[1] + match[2] if match[2] else ""


def strip_code(source: str, where: str = "cell") -> str:
    """Return the learner's version of a code cell's source."""
    out: list[str] = []
    state = "outside"
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if state != "outside":
                raise MarkerError(f"{where}, line {number}: {BEGIN} inside another solution block")
            state = "solution"
        elif marker == STARTER:
            if state != "solution":
                raise MarkerError(f"{where}, line {number}: {STARTER} outside a solution block")
            state = "starter"
        elif marker == END:
            if state == "outside":
                raise MarkerError(f"{where}, line {number}: {END} without {BEGIN}")
            state = "outside"
        elif state == "outside":
            out.append(line)
        elif state == "starter":
            out.append(_uncomment(line))
    if state != "outside":
        raise MarkerError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(out).rstrip("\n")


def strip_markdown(source: str, where: str = "cell") -> str:
    pattern = re.compile(re.escape(MD_BEGIN) + r".*?" + re.escape(MD_END), re.DOTALL)
    result = pattern.sub(MD_PLACEHOLDER, source)
    if MD_BEGIN in result or MD_END in result:
        raise MarkerError(f"{where}: unbalanced {MD_BEGIN} / {MD_END}")
    return result


def _clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop outputs, execution counts and per-user metadata so diffs stay readable."""
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict({k: v for k, v in cell.get("metadata", {}).items() if k == "tags"})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def student_version(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    nb = nbformat.from_dict(solution)
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        if cell.cell_type == "code":
            cell.source = strip_code(cell.source, where)
        elif cell.cell_type == "markdown":
            cell.source = strip_markdown(cell.source, where)
    return _clean(nb)


def _text(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def build(root: Path, check_only: bool = False, only: list[str] | None = None) -> list[str]:
    """Regenerate ``notebooks/`` (and clean ``solutions/``); return the paths that changed or would.

    ``only``: lesson names or numbers (``"03"``, ``"03_ray_wait"``) to build; the others are not touched.
    """
    changed: list[str] = []
    solutions, notebooks = root / "solutions", root / "notebooks"
    notebooks.mkdir(exist_ok=True)
    expected: dict[Path, str] = {}
    for path in sorted(solutions.glob("*.ipynb")):
        if only and not any(path.stem == o or path.stem.startswith(o + "_") for o in only):
            continue
        solution = nbformat.read(path, as_version=4)
        expected[path] = _text(_clean(nbformat.from_dict(solution)))
        expected[notebooks / path.name] = _text(student_version(solution, path.name))
    for path, text in expected.items():
        if not path.exists() or path.read_text() != text:
            changed.append(str(path.relative_to(root)))
            if not check_only:
                path.write_text(text)
    for orphan in sorted(set(notebooks.glob("*.ipynb")) - set(expected)) if not only else []:
        changed.append(f"{orphan.relative_to(root)} (no solution)")
        if not check_only:
            orphan.unlink()
    return changed


def from_percent(script: Path, target: Path) -> None:
    """Create a notebook from a ``# %%`` percent script (an authoring convenience)."""
    cells = []
    kind, lines = None, []

    def flush() -> None:
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(re.sub(r"^# ?", "", line) for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif text:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in script.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    for index, cell in enumerate(nb.cells):
        cell.id = f"{target.stem[:2]}-{index:03d}"
    target.write_text(_text(_clean(nb)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raycourse-build", description="Generate notebooks/ from solutions/.")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the course folder (default: here)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if notebooks/ has drifted")
    parser.add_argument("--from-percent", nargs=2, metavar=("SCRIPT", "NOTEBOOK"), type=Path)
    parser.add_argument("--only", action="append", default=None, metavar="LESSON",
                        help="build only this lesson (e.g. 03 or 03_ray_wait); repeatable")
    args = parser.parse_args(argv)
    if args.from_percent:
        from_percent(*args.from_percent)
        return 0
    if not (args.root / "solutions").is_dir():
        print(f"no solutions/ folder in {args.root}", file=sys.stderr)
        return 2
    try:
        changed = build(args.root, check_only=args.check, only=args.only)
    except MarkerError as error:
        print(f"marker error: {error}", file=sys.stderr)
        return 2
    for path in changed:
        print(("would change: " if args.check else "wrote: ") + path)
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
