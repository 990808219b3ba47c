"""Every solution notebook survives Run All twice in a row in one kernel, with strict checks.

A learner re-runs everything all the time: the set-up cell must be idempotent,
`ray.shutdown()` at the end must not break a second run, and every check must
still pass on the second pass.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_run_all_twice(path, monkeypatch):
    monkeypatch.setenv("RAYCOURSE_STRICT", "1")
    monkeypatch.delenv("RAYCOURSE_GRADE_LOG", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for run in (1, 2):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, index)  # raises CellExecutionError, naming the cell, on any error
