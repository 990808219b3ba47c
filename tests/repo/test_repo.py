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
    # Dependencies of pinned packages, imported directly: psutil and yaml (ray[default]), IPython and zmq
    # (ipykernel), jsonschema (nbformat), prometheus_client (jupyter_server, ray[default]), traitlets (nbclient).
    provided |= {"psutil", "ipython", "pyyaml", "zmq", "jsonschema", "prometheus_client", "traitlets"}
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
    out = subprocess.run([sys.executable, "-I", str(ROOT / "lib/raycourse/tools/pins.py"), "requirements",
                          str(ROOT / "environment.yml")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert "ray[default]==2.60.0" in out


def test_the_workshop_cluster_offers_what_every_lesson_declares():
    """`make workshop` must satisfy each lesson's raycourse.start(...) on a shared cluster."""
    from raycourse.tools.workshop import COURSE_CUSTOM_RESOURCES, COURSE_RESOURCES

    for path in SOLUTIONS:
        for call in ast.walk(ast.parse("\n".join(code_cells(path)))):
            if not (isinstance(call, ast.Call) and ast.unparse(call.func) == "raycourse.start"):
                continue
            args = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in {"num_cpus", "num_gpus", "resources"}}
            assert args.get("num_cpus", 4) <= COURSE_RESOURCES["CPU"], path.name
            assert args.get("num_gpus", 0) <= COURSE_RESOURCES["GPU"], path.name
            for name, amount in args.get("resources", {}).items():
                assert COURSE_CUSTOM_RESOURCES.get(name, 0) >= amount, f"{path.name} needs {name}: {amount}"


# --- the shape of every lesson (CONTRIBUTING.md) ---------------------------------------------------

CHECK_CELL = re.compile(r'raycourse\.check\("(\d\d\.\w+)"\)')


def markdown_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("path", SOLUTIONS + NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_check_cell_is_one_short_line(path):
    for source in code_cells(path):
        if "raycourse.check(" in source:
            line = source.strip()
            assert CHECK_CELL.fullmatch(line), f"a check cell must be just raycourse.check(\"NN.name\"): {line!r}"
            assert len(line) < 60


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_no_grading_plumbing_in_lessons(path):
    code = "\n".join(code_cells(path))
    assert not re.search(r"\bsince\b", code), "timing plumbing (`since`) belongs in lib/, not in a lesson"
    for word in ["expect=", "timeout=4", "isinstance(", "RAYCOURSE_"]:
        assert word not in code, f"plumbing in a lesson cell: {word}"
    text = "\n".join(markdown_cells(path))
    for leftover in ["crash course", "Anyscale", "benchmarks/", "lib/raycourse"]:
        assert leftover not in text, f"lesson text mentions {leftover!r}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_lesson_has_the_course_shape(path):
    text = "\n".join(markdown_cells(path))
    code = code_cells(path)
    assert text.startswith(f"# {path.name[:2]} ·"), "the title is '# NN · ...'"
    for heading in ["What you will do", "What you will learn", "What you need", "## Summary", "Further reading"]:
        assert heading in text, f"missing {heading!r}"
    reading = text[text.index("Further reading"):]
    assert "https://docs.ray.io/" in reading, "Further reading names pages of the Ray documentation"
    assert "raycourse.start(" in code[0], "the first code cell starts Ray"
    assert code[-1].strip() == "ray.shutdown()" and "raycourse.progress()" in code[-2]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_figures_exist_and_are_small(path):
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", "\n".join(markdown_cells(path))):
        image = (path.parent / target).resolve()
        assert image.is_file(), f"{target} is referenced but missing"
        assert image.stat().st_size < 300 * 1024, f"{target} is over 300 KB"


def _import_graph() -> dict[str, set[str]]:
    """Every raycourse module and the raycourse modules it imports (anywhere in it, lazy imports included)."""
    base = ROOT / "lib"
    modules = {".".join(p.relative_to(base).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (base / "raycourse").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    root = ".".join(parent + ([node.module] if node.module else []))
                else:
                    root = node.module or ""
                targets = [root] + [f"{root}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target and target != name and target.startswith("raycourse"):
                    found.add(target)
        graph[name] = found
    return graph


def test_the_package_has_no_import_cycle():
    graph = _import_graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            # A package's __init__ re-exporting its submodules is not a cycle with them.
            if nxt == node.rsplit(".", 1)[0] and node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                if not (nxt.count(".") < node.count(".") and node.startswith(nxt + ".")):
                    raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            elif not state.get(nxt):
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if not state.get(module):
            visit(module, [module])


def test_lib_modules_are_small():
    big = {p.relative_to(ROOT).as_posix(): n for p in (ROOT / "lib").rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 450}
    assert not big, f"modules over ~400 lines (split them by what they hold): {big}"


def test_the_readme_map_matches_the_package():
    readme = (ROOT / "README.md").read_text()
    tree = readme[readme.index("raycourse/\n"):]
    tree = tree[: tree.index("```")]
    package = ROOT / "lib" / "raycourse"
    for entry in package.iterdir():
        if entry.name.startswith(("_", ".")) or entry.suffix not in (".py", ""):
            continue
        if entry.is_dir() and not (entry / "__init__.py").exists():
            continue
        name = entry.name if entry.suffix == ".py" else entry.name + "/"
        assert name in tree, f"README's map of the package lacks {name}"
    for listed in re.findall(r"^\s+([a-z_]+(?:\.py|/))", tree, re.M):
        assert (package / listed.rstrip("/")).exists(), f"README's map names {listed}, which does not exist"


def test_console_commands_are_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"raycourse-grade", "raycourse-workshop", "raycourse-build", "raycourse-execute"} <= set(scripts)
