"""Where a learner stands across the whole course: every verdict, kept on this machine.

Each :func:`raycourse.check` appends one line, ``{"exercise", "status", "time"}``,
to ``progress.jsonl`` in the learner's data folder (``$RAYCOURSE_PROGRESS_DIR``,
else ``$XDG_DATA_HOME/raycourse`` or ``~/.local/share/raycourse``; on macOS
``~/Library/Application Support/raycourse``). Never code, never outputs, never
in the repository. ``RAYCOURSE_PROGRESS_DIR=off`` turns it off.

:func:`progress` reads that file and shows one picture (a grid of every exercise
of every lesson, coloured by its latest verdict) and a short table (latest
verdict, attempts, when it first turned correct). It needs no Ray.
"""
from __future__ import annotations

import html
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .grading import CORRECT, INCORRECT, NOT_ATTEMPTED, Verdict, listen, registered, title

FILE = "progress.jsonl"
COLOURS = {CORRECT: "#1a7f37", INCORRECT: "#b42318", NOT_ATTEMPTED: "#d4a72c", "not yet run": "#d0d7de"}


def folder() -> Path | None:
    """The folder progress is kept in, or None when it is turned off."""
    chosen = os.environ.get("RAYCOURSE_PROGRESS_DIR", "").strip()
    if chosen.lower() in {"off", "0", "none"}:
        return None
    if chosen:
        return Path(chosen).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "raycourse"
    base = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(base) / "raycourse"


def remember(verdict: Verdict) -> None:
    """Append one verdict (id, status, time) to the progress file."""
    where = folder()
    if where is None:
        return
    where.mkdir(parents=True, exist_ok=True)
    with open(where / FILE, "a", encoding="utf-8") as log:
        log.write(json.dumps({"exercise": verdict.exercise, "status": verdict.status, "time": time.time()}) + "\n")


listen(remember)


@dataclass(frozen=True)
class Standing:
    """One exercise's history: latest verdict, attempts (verdicts other than "not attempted"), first success."""

    exercise: str
    title: str
    latest: str
    attempts: int
    first_correct: float | None


def standings() -> list[Standing]:
    """Every exercise of the course, in order, with what the progress file says about it."""
    history: dict[str, list[dict[str, Any]]] = {}
    where = folder()
    path = where / FILE if where is not None else None
    if path is not None and path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                history.setdefault(str(record["exercise"]), []).append(record)
            except (ValueError, KeyError, TypeError):
                continue  # a damaged line: skip it, keep the rest
    rows = []
    for exercise in registered():
        seen = history.get(exercise, [])
        correct = [r["time"] for r in seen if r.get("status") == CORRECT]
        rows.append(Standing(exercise, title(exercise), seen[-1]["status"] if seen else "not yet run",
                             sum(r.get("status") in (CORRECT, INCORRECT) for r in seen),
                             min(correct) if correct else None))
    return rows


class Progress:
    """What :func:`progress` returns: shown in Jupyter as a grid and a table, as text elsewhere."""

    def __init__(self, rows: list[Standing]) -> None:
        self.rows = rows

    @property
    def done(self) -> int:
        return sum(r.latest == CORRECT for r in self.rows)

    def __repr__(self) -> str:
        lines = [f"{self.done} of {len(self.rows)} exercises correct"]
        for r in self.rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.first_correct)) if r.first_correct else ""
            lines.append(f"  {r.exercise:<28} {r.latest:<14} attempts {r.attempts:<3} {when}")
        return "\n".join(lines)

    def figure(self) -> Any:
        """A grid: one row per lesson, one square per exercise, coloured by its latest verdict."""
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.plotting import figure

        lessons = sorted({r.exercise.split(".")[0] for r in self.rows})
        xs, ys, colours, labels, tips = [], [], [], [], []
        for lesson in lessons:
            mine = [r for r in self.rows if r.exercise.startswith(lesson + ".")]
            for i, r in enumerate(mine):
                xs.append(i + 0.5)
                ys.append(f"lesson {lesson}")
                colours.append(COLOURS.get(r.latest, COLOURS["not yet run"]))
                labels.append(r.exercise.split(".", 1)[1])
                tips.append(f"{r.title}: {r.latest}, {r.attempts} attempt(s)")
        width = max(len([r for r in self.rows if r.exercise.startswith(lesson + ".")]) for lesson in lessons)
        source = ColumnDataSource(dict(x=xs, y=ys, colour=colours, label=labels, tip=tips))
        fig = figure(y_range=[f"lesson {lesson}" for lesson in reversed(lessons)], x_range=(0, max(width, 1)),
                     width=720, height=40 + 34 * len(lessons), tools="", toolbar_location=None,
                     title=f"Your progress: {self.done} of {len(self.rows)} exercises correct")
        fig.rect("x", "y", width=0.96, height=0.85, color="colour", source=source, line_color="white")
        fig.text("x", "y", text="label", source=source, text_align="center", text_baseline="middle",
                 text_font_size="8pt", text_color="white")
        fig.add_tools(HoverTool(tooltips="@tip"))
        fig.xaxis.visible = False
        fig.grid.visible = False
        return fig

    def _table_html(self) -> str:
        head = "<tr><th>exercise</th><th>latest verdict</th><th>attempts</th><th>first correct</th></tr>"
        body = []
        for r in self.rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.first_correct)) if r.first_correct else ""
            colour = COLOURS.get(r.latest, COLOURS["not yet run"])
            body.append(f"<tr><td><code>{html.escape(r.exercise)}</code> {html.escape(r.title)}</td>"
                        f'<td style="color:{colour};font-weight:bold">{html.escape(r.latest)}</td>'
                        f"<td>{r.attempts}</td><td>{when}</td></tr>")
        return f'<table class="raycourse-progress">{head}{"".join(body)}</table>'

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        from . import plots

        plots.show(self.figure())
        display(HTML(f"<details><summary>Every exercise, in a table</summary>{self._table_html()}</details>"))


def progress() -> Progress:
    """Your latest verdict, attempts and first success for every exercise of the course (no Ray needed)."""
    return Progress(standings())
