"""Write a class's grades: a CSV for spreadsheets and an HTML page for people.

:mod:`.run` produces one :class:`Row` per learner, lesson and exercise. The CSV
is the machine-readable record (columns ``learner, lesson, exercise, status,
message``); the HTML report is what an instructor reads: a summary of counts,
then one colour-coded table per learner. Every name and message comes from a
learner's files, so the HTML is escaped, and CSV cells that a spreadsheet would
run as a formula (starting with ``= + - @``, a tab or a carriage return) are
prefixed with ``'``. :func:`folders` gives each learner one readable folder for
the executed notebooks: Unicode letters kept, a short hash where names collide.
"""
from __future__ import annotations

import csv
import hashlib
import html
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ...grading import CORRECT, INCORRECT, NOT_ATTEMPTED

ERROR = "error"
NEEDS_REVIEW = "needs review"  # the check said correct, but the notebook reached into the grader or Ray
STATUSES = (CORRECT, NEEDS_REVIEW, INCORRECT, NOT_ATTEMPTED, ERROR)
COLUMNS = ("learner", "lesson", "exercise", "status", "message")
_STYLE = {  # status -> (text colour, background); the same palette as the verdicts in notebooks
    CORRECT: ("#1a7f37", "#e6f4ea"),
    NOT_ATTEMPTED: ("#6e5600", "#fff8c5"),
    INCORRECT: ("#b42318", "#fdecea"),
    ERROR: ("#ffffff", "#8e24aa"),
    NEEDS_REVIEW: ("#0b4f8a", "#dbeafe"),
}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Row:
    """One learner's result for one exercise (``exercise`` is empty when the lesson is unknown)."""

    learner: str
    lesson: str
    exercise: str
    status: str
    message: str
    notebook: str = ""  # the executed notebook, relative to the output folder, if one was written


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: one that would start a formula gets a leading ``'``."""
    return f"'{value}" if value.startswith(_FORMULA) else value


def write_csv(rows: list[Row], path: Path) -> None:
    """One line per row; UTF-8 with a header, readable by any spreadsheet, never a formula."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([safe_cell(v) for v in (row.learner, row.lesson, row.exercise, row.status, row.message)])


def _readable(name: str) -> str:
    """Letters and digits of any script, spaces, ``- _ .``; nothing a path or a shell would read specially."""
    text = unicodedata.normalize("NFC", name)
    text = "".join(c if c.isalnum() or c in " -_." else "_" for c in text)
    text = re.sub(r"_+", "_", re.sub(r"\s+", " ", text)).strip(" ._")
    return text[:60].rstrip(" ._") or "learner"


def folders(learners: list[str]) -> dict[str, str]:
    """learner -> a folder name unique among them (case-insensitively), readable, with a short hash if needed."""
    wanted: dict[str, list[str]] = {}
    for learner in sorted(set(learners)):
        wanted.setdefault(_readable(learner).casefold(), []).append(learner)
    chosen = {}
    for names in wanted.values():
        for learner in names:
            base = _readable(learner)
            suffix = hashlib.sha1(learner.encode("utf-8")).hexdigest()[:6]
            chosen[learner] = base if len(names) == 1 and base == learner.strip() else f"{base}-{suffix}"
    return chosen


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


def _learner_table(learner: str, rows: list[Row], anchor: str) -> str:
    correct = sum(row.status == CORRECT for row in rows)
    graded = sum(1 for row in rows if row.exercise)
    body = []
    for row in rows:
        link = f' <a href="{html.escape(quote(row.notebook))}">notebook</a>' if row.notebook else ""
        body.append(
            f'<tr data-status="{html.escape(row.status)}"><td>{html.escape(row.lesson)}</td>'
            f"<td>{html.escape(row.exercise)}</td><td>{_badge(row.status)}</td>"
            f"<td>{html.escape(row.message)}{link}</td></tr>"
        )
    return (
        f'<h2 id="{anchor}">{html.escape(learner)} <small>{correct} of {graded} correct</small></h2>'
        '<table class="learner"><tr><th>lesson</th><th>exercise</th><th>status</th><th>message</th></tr>'
        f"{''.join(body)}</table>"
    )


def write_html(rows: list[Row], path: Path, title: str = "Ray course: grades") -> None:
    """A self-contained page: summary of counts, then one table per learner."""
    learners: dict[str, list[Row]] = {}
    for row in rows:
        learners.setdefault(row.learner, []).append(row)
    anchors = {name: f"learner-{i}" for i, name in enumerate(sorted(learners), 1)}
    sections = "".join(_learner_table(name, learners[name], anchors[name]) for name in sorted(learners))
    index = " · ".join(f'<a href="#{anchors[n]}">{html.escape(n)}</a>' for n in sorted(learners))
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
Every verdict comes from the course's own checks, run on each learner's notebook in a fresh kernel.
"needs review" means the check passed but the notebook's code reached into the grader, Ray or IPython: read it before counting it.</p>
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
