"""The solutions -> notebooks generator."""
from __future__ import annotations

import nbformat
import pytest

from raycourse.tools import build

SOLVED = """import ray
### BEGIN SOLUTION
results = ray.get([f.remote(i) for i in range(4)])
### STARTER
# results = [f(i) for i in range(4)]
#
# # a comment the learner should see
### END SOLUTION
print(results)"""


def test_strip_code_keeps_starter_uncommented():
    assert build.strip_code(SOLVED) == "import ray\nresults = [f(i) for i in range(4)]\n\n# a comment the learner should see\nprint(results)"


def test_strip_code_keeps_indentation_and_drops_answer_without_starter():
    source = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### STARTER\n    # return None\n    ### END SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    assert build.strip_code(source) == "def f():\n    return None"


@pytest.mark.parametrize(
    "source, problem",
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("### END SOLUTION", "without"),
        ("### STARTER\n# x", "outside a solution block"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
        ("### BEGIN SOLUTION\n### STARTER\nx = 1\n### END SOLUTION", "not commented out"),
    ],
)
def test_marker_errors_are_reported(source, problem):
    with pytest.raises(build.MarkerError, match=problem):
        build.strip_code(source)


def test_markdown_answers_become_a_prompt():
    text = "Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->\nNext."
    assert build.strip_markdown(text) == f"Why?\n{build.MD_PLACEHOLDER}\nNext."


def test_build_writes_clean_notebooks_and_detects_drift(tmp_path):
    (tmp_path / "solutions").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SOLVED), nbformat.v4.new_markdown_cell("# T")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nb.cells[0].execution_count = 3
    nbformat.write(nb, tmp_path / "solutions" / "01_x.ipynb")
    assert build.build(tmp_path) == ["solutions/01_x.ipynb", "notebooks/01_x.ipynb"]
    assert build.build(tmp_path, check_only=True) == []
    student = nbformat.read(tmp_path / "notebooks" / "01_x.ipynb", as_version=4)
    assert student.cells[0].outputs == [] and student.cells[0].execution_count is None
    assert "ray.get" not in student.cells[0].source
    (tmp_path / "notebooks" / "99_orphan.ipynb").write_text("{}")
    assert build.build(tmp_path, check_only=True) == ["notebooks/99_orphan.ipynb (no solution)"]


def test_cli_check_exit_codes(tmp_path, capsys):
    assert build.main(["--root", str(tmp_path)]) == 2
    (tmp_path / "solutions").mkdir()
    assert build.main(["--root", str(tmp_path), "--check"]) == 0


def test_a_failed_cell_reports_the_end_of_its_traceback_without_colours():
    from raycourse.tools import execute

    cell = nbformat.v4.new_code_cell("1/0")
    frames = [f"\x1b[0;32mFile <cell>:{n}\x1b[0m" for n in range(30)]
    cell.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                           traceback=frames + ["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"])]
    tail = execute.traceback_tail(cell, lines=5)
    assert tail[-1] == "ZeroDivisionError: division by zero" and len(tail) == 5 and "\x1b" not in "".join(tail)
    outcome = execute.Outcome("x.ipynb", [1.0], "run 1, cell 0: ZeroDivisionError", trace=tail)
    assert "    | ZeroDivisionError: division by zero" in outcome.line()
    assert execute.traceback_tail(nbformat.v4.new_code_cell("1")) == []
