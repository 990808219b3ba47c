"""Write a class's grades: a CSV for spreadsheets and an HTML page for people.

:mod:`raycourse.grade` produces one :class:`Row` per learner, lesson and
exercise. The CSV is the machine-readable record (columns ``learner, lesson,
exercise, status, message``); the HTML report is what an instructor reads: a
summary of counts, then one colour-coded table per learner. Every message
comes from a learner's notebook or its error output, so it is HTML-escaped.
"""
from __future__ import annotations

import csv
import html
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ...grading import CORRECT, INCORRECT, NOT_ATTEMPTED

ERROR = "error"
STATUSES = (CORRECT, INCORRECT, NOT_ATTEMPTED, ERROR)
COLUMNS = ("learner", "lesson", "exercise", "status", "message")
_STYLE = {  # status -> (text colour, background); the same palette as the verdicts in notebooks
    CORRECT: ("#1a7f37", "#e6f4ea"),
    NOT_ATTEMPTED: ("#6e5600", "#fff8c5"),
    INCORRECT: ("#b42318", "#fdecea"),
    ERROR: ("#ffffff", "#8e24aa"),
}


@dataclass(frozen=True)
class Row:
    """One learner's result for one exercise (``exercise`` is empty when the lesson is unknown)."""

    learner: str
    lesson: str
    exercise: str
    status: str
    message: str
    notebook: str = ""  # the executed notebook, relative to the output folder, if one was written


def write_csv(rows: list[Row], path: Path) -> None:
    """One line per row; UTF-8 with a header, readable by any spreadsheet."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row.learner, row.lesson, row.exercise, row.status, row.message])


def _badge(status: str) -> str:
    colour, background = _STYLE.get(status, ("#000", "#eee"))
    return (
        f'<span class="status" data-status="{html.escape(status)}" '
        f'style="color:{colour};background:{background}">{html.escape(status)}</span>'
    )


def _counts_table(rows: list[Row]) -> str:
    total = Counter(row.status for row in rows)
    head = "".join(f"<th>{_badge(s)}</th>" for s in STATUSES)
    lines = [f"<tr><th>all exercises</th>{''.join(f'<td>{total.get(s, 0)}</td>' for s in STATUSES)}</tr>"]
    by_exercise: dict[tuple[str, str], Counter] = {}
    for row in rows:
        if row.exercise:
            by_exercise.setdefault((row.lesson, row.exercise), Counter())[row.status] += 1
    for (_, exercise), counts in sorted(by_exercise.items()):
        cells = "".join(f"<td>{counts.get(s, 0)}</td>" for s in STATUSES)
        lines.append(f"<tr><th>{html.escape(exercise)}</th>{cells}</tr>")
    return f'<table class="summary"><tr><th></th>{head}</tr>{"".join(lines)}</table>'


def _learner_table(learner: str, rows: list[Row]) -> str:
    correct = sum(row.status == CORRECT for row in rows)
    graded = sum(1 for row in rows if row.exercise)
    body = []
    for row in rows:
        link = f' <a href="{html.escape(row.notebook)}">notebook</a>' if row.notebook else ""
        body.append(
            f'<tr data-status="{html.escape(row.status)}"><td>{html.escape(row.lesson)}</td>'
            f"<td>{html.escape(row.exercise)}</td><td>{_badge(row.status)}</td>"
            f"<td>{html.escape(row.message)}{link}</td></tr>"
        )
    return (
        f'<h2 id="{html.escape(learner)}">{html.escape(learner)} <small>{correct} of {graded} correct</small></h2>'
        '<table class="learner"><tr><th>lesson</th><th>exercise</th><th>status</th><th>message</th></tr>'
        f"{''.join(body)}</table>"
    )


def write_html(rows: list[Row], path: Path, title: str = "Ray course: grades") -> None:
    """A self-contained page: summary of counts, then one table per learner."""
    learners: dict[str, list[Row]] = {}
    for row in rows:
        learners.setdefault(row.learner, []).append(row)
    sections = "".join(_learner_table(name, learners[name]) for name in sorted(learners))
    index = " · ".join(f'<a href="#{html.escape(n)}">{html.escape(n)}</a>' for n in sorted(learners))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }}
td {{ max-width: 60em; white-space: pre-wrap; }}
.status {{ border-radius: 4px; padding: 1px 6px; font-weight: bold; white-space: nowrap; }}
small {{ color: #666; font-weight: normal; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(learners)} learners, {len(rows)} results, generated {html.escape(time.strftime("%Y-%m-%d %H:%M"))}.
Every verdict comes from the course's own checks, run on each learner's notebook in a fresh kernel.</p>
<h2>Summary</h2>
{_counts_table(rows)}
<p>{index}</p>
{sections}
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def summary_line(rows: list[Row]) -> str:
    """``"12 correct, 3 incorrect, 2 not attempted, 1 error"`` for the terminal."""
    counts = Counter(row.status for row in rows)
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES)
