"""Helpers for the hands-on Ray course.

Lessons use a handful of names from here::

    from raycourse import start, check
    start(num_cpus=4)                       # quiet, warm, idempotent Ray
    check("01.parallel_calls", results=results, since=start_time)

and the modules ``raycourse.timing`` (task intervals from ``ray.timeline()``)
and ``raycourse.plots`` (bokeh charts, including the task timeline).
"""
from .grading import check
from .session import CourseSetupError, start, stop

# ``raycourse.grading.grade`` grades one answer; ``python -m raycourse.grade`` grades a class.
__all__ = ["check", "start", "stop", "CourseSetupError"]
__version__ = "0.1.0"
