"""A defect of the course's own code (a check, a picture), kept for maintainers and never shown as a traceback.

Learners see a plain sentence where a check could not judge; the details go to the
grade log (``RAYCOURSE_GRADE_LOG``, one JSON line with a ``defect`` key) and, with
``RAYCOURSE_DEBUG=1``, to the kernel's own stderr (the terminal, not the cell).
Standard library only, so any module may report through it.
"""
from __future__ import annotations

import json
import os
import sys
import traceback


def log_defect(where: str, error: BaseException) -> None:
    """Keep ``error`` (raised in ``where``: an exercise id, or a helper's name) for maintainers."""
    if os.environ.get("RAYCOURSE_DEBUG", "").lower() in ("1", "true", "yes"):
        traceback.print_exception(error, file=sys.__stderr__)
    path = os.environ.get("RAYCOURSE_GRADE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"exercise": where, "defect": "".join(traceback.format_exception(error))}) + "\n")
