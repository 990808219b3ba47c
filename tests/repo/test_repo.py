"""Static checks on the repository: drift, hygiene, pins, Binder layout. No Ray needed."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from raycourse.tools import build, pins

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
STOP_ALL = "ray" + " stop"  # spelled apart so this file does not itself trip hygiene greps
DEPRECATED = ["include_webui", "ray.experimental.ui", "ObjectID", "timeout_ms", "num_return_vals"]


def code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_there_are_lessons():
    assert SOLUTIONS and [p.name for p in SOLUTIONS] == [p.name for p in NOTEBOOKS]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", p.name) for p in SOLUTIONS)


def test_notebooks_do_not_drift_from_solutions():
    changed = build.build(ROOT, check_only=True)
    assert changed == [], f"run `make notebooks`: {changed}"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_hygiene(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") for c in code), "outputs are committed"
    source = "\n".join(code_cells(path))
    for old in DEPRECATED:
        assert old not in source, f"uses the removed API {old}"
    assert STOP_ALL not in source
    assert "ray.shutdown()" in code_cells(path)[-1], "the last code cell must shut Ray down"
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for heading in ["What you will learn", "What you need", "Summary"]:
        assert heading in text, f"missing '{heading}'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_learner_notebooks_contain_no_answers(path):
    text = path.read_text()
    for marker in [build.BEGIN, build.STARTER, build.END, build.MD_BEGIN, build.MD_END]:
        assert marker not in text


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_exercise_has_a_check_that_exists(path):
    from raycourse.grading import registered

    ids = re.findall(r'raycourse\.check\(\s*"([^"]+)"', "\n".join(code_cells(path)))
    lesson = path.name[:2]
    assert all(i.startswith(lesson + ".") for i in ids)
    assert sorted(ids) == registered(lesson), "every registered check is used once, and only registered ids are used"
    headings = re.findall(r"## Exercise (\d\d\.\w+)", path.read_text())
    assert sorted(headings) == sorted(ids), "each exercise heading names its check id"


def test_no_deprecated_api_or_ray_stop_in_lib():
    for source in (ROOT / "lib").rglob("*.py"):
        text = source.read_text()
        for old in DEPRECATED:
            assert old not in text, f"{source} uses {old}"
        assert STOP_ALL not in text, f"{source} mentions the command that stops every Ray on the machine"


def test_environment_pins_everything_and_only_there():
    python_version, pinned = pins.read_pins(ROOT / "environment.yml")
    assert python_version == "3.11"
    names = {p.name.lower() for p in pinned}
    assert {"ray", "numpy", "jupyterlab", "bokeh", "holoviews", "ipywidgets", "nbval", "pytest"} <= names
    ray_pin = next(p for p in pinned if p.name == "ray")
    assert ray_pin.requirement.startswith("ray[default]==")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dependency in project["dependencies"]:
        name = re.split(r"[\[<>=! ]", dependency, 1)[0].lower()
        assert name in names, f"pyproject depends on {name}, which environment.yml does not pin"
        assert not re.search(r"[<>=]", dependency), "versions belong in environment.yml only"
    others = [p for p in ROOT.glob("*requirements*.txt")] + list(ROOT.glob("binder/*"))
    assert not others, f"pins must live in environment.yml only, found {others}"


def _imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_every_imported_package_is_pinned():
    """What lib/, the lessons and the tests import is pinned (or comes with a pinned package)."""
    _, pinned = pins.read_pins(ROOT / "environment.yml")
    provided = {p.name.lower().replace("-", "_") for p in pinned} | {"raycourse"}
    # Dependencies of pinned packages, imported directly: psutil (ray[default]), IPython (ipykernel).
    provided |= {"psutil", "ipython"}
    files = [p.read_text() for p in [*(ROOT / "lib").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]]
    files += ["\n".join(code_cells(p)) for p in SOLUTIONS]
    imported = set().union(*(_imported_modules(text) for text in files))
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "__future__"}
    aliases = {"yaml": "pyyaml"}
    missing = sorted(m for m in third_party if aliases.get(m, m).lower() not in provided)
    local = {p.stem for p in (ROOT / "tests").rglob("*.py")} | {"conftest"}
    assert [m for m in missing if m not in local] == [], "imported but not pinned in environment.yml"


def test_binder_layout():
    assert (ROOT / "environment.yml").is_file()
    assert not (ROOT / "binder").exists(), "a binder/ folder would make Binder ignore the root files"
    post_build = (ROOT / "postBuild").read_text().splitlines()
    assert post_build[0].startswith("#!") and "set -e" in post_build[1:3]
    env_text = (ROOT / "environment.yml").read_text()
    assert not re.search(r"^\s*-\s*-[re]\b", env_text, re.M), "no -r/-e lines: they defeat Binder's cache"
    readme = (ROOT / "README.md").read_text()
    assert "mybinder.org" in readme and "urlpath=lab/tree/notebooks/00_setup.ipynb" in readme
    assert "make lab" in readme and "make test" in readme


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_pins_script_runs_with_bare_python():
    out = subprocess.run([sys.executable, "-I", str(ROOT / "lib/raycourse/pins.py"), "requirements", str(ROOT / "environment.yml")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert "ray[default]==2.60.0" in out


def test_the_workshop_cluster_offers_what_every_lesson_declares():
    """`make workshop` must satisfy each lesson's raycourse.start(...) on a shared cluster."""
    from raycourse.workshop import COURSE_CUSTOM_RESOURCES, COURSE_RESOURCES

    for path in SOLUTIONS:
        for call in ast.walk(ast.parse("\n".join(code_cells(path)))):
            if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "raycourse.start"):
                continue
            args = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in {"num_cpus", "num_gpus", "resources"}}
            assert args.get("num_cpus", 4) <= COURSE_RESOURCES["CPU"], path.name
            assert args.get("num_gpus", 0) <= COURSE_RESOURCES["GPU"], path.name
            for name, amount in args.get("resources", {}).items():
                assert COURSE_CUSTOM_RESOURCES.get(name, 0) >= amount, f"{path.name} needs {name}: {amount}"
