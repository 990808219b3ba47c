"""The course's package pins, read from ``environment.yml``.

``environment.yml`` is the only file that names versions: Binder and conda read
it directly, and ``make`` feeds its pip list to pip. This module must run with a
bare ``python3`` (no third-party imports) because the Makefile calls it before
anything is installed::

    python3 lib/raycourse/pins.py requirements environment.yml > requirements.txt

Lesson 00 uses :func:`compare_installed` to tell a learner when their
environment differs from the one the course was tested with.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

_REQ = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(?P<version>[^\s#;]+)$")


@dataclass(frozen=True)
class Pin:
    requirement: str  # as written, e.g. "ray[default]==2.60.0"
    name: str  # distribution name, e.g. "ray"
    version: str


def find_environment_file(start: Path | None = None) -> Path | None:
    """Find ``environment.yml`` in ``start`` or a parent (notebooks run from ``notebooks/``)."""
    here = (start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        candidate = folder / "environment.yml"
        if candidate.is_file():
            return candidate
    return None


def read_pins(path: str | Path) -> tuple[str | None, list[Pin]]:
    """Return (python version, pip pins) from an environment file.

    Only the small subset of YAML that ``environment.yml`` uses is understood:
    ``- python=X.Y`` and the list under ``- pip:``. Anything under ``pip:`` that
    is not ``name==version`` is rejected, so an unpinned package cannot slip in.
    """
    python_version = None
    pins: list[Pin] = []
    in_pip = False
    pip_indent = -1
    for lineno, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if in_pip and indent <= pip_indent:
            in_pip = False
        if item.startswith("- python="):
            python_version = item.split("=", 1)[1].strip()
        elif item == "- pip:":
            in_pip, pip_indent = True, indent
        elif in_pip and item.startswith("- "):
            requirement = item[2:].strip()
            match = _REQ.match(requirement)
            if not match:
                raise ValueError(f"{path}:{lineno}: '{requirement}' is not pinned as name==version")
            pins.append(Pin(requirement, match["name"], match["version"]))
    return python_version, pins


def compare_installed(path: str | Path | None = None) -> list[str]:
    """Describe every difference between the pins and what is installed (empty list: all match)."""
    env_file = Path(path) if path else find_environment_file()
    if env_file is None:
        return ["environment.yml not found: cannot compare versions (run from the course folder)"]
    python_version, pins = read_pins(env_file)
    problems = []
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python_version and running != python_version:
        problems.append(f"python: pinned {python_version}, running {running}")
    for pin in pins:
        try:
            installed = metadata.version(pin.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{pin.name}: pinned {pin.version}, not installed")
            continue
        if installed != pin.version:
            problems.append(f"{pin.name}: pinned {pin.version}, installed {installed}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"requirements", "check"}:
        print("usage: pins.py requirements|check ENVIRONMENT_YML", file=sys.stderr)
        return 2
    command, path = argv
    if not Path(path).is_file():
        print(f"pins.py: no such file: {path}", file=sys.stderr)
        return 2
    if command == "requirements":
        for pin in read_pins(path)[1]:
            print(pin.requirement)
        return 0
    problems = compare_installed(path)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
