"""Helpers for the hands-on Ray course.

A lesson needs three names from here::

    import raycourse
    raycourse.start(num_cpus=4)          # quiet, warm, recorded Ray (or join RAY_ADDRESS)
    raycourse.check("01.parallel_calls")  # grade an exercise from the notebook's own variables
    raycourse.progress()                 # where you stand across the course

plus ``raycourse.timing`` (what Ray recorded about your tasks) and
``raycourse.plots`` (bokeh charts, including the task timeline).
"""
from .session import prepare_environment

prepare_environment()  # before anything imports Ray: RAY_AUTH_MODE and friends (see raycourse.session)

from .grading import check  # noqa: E402
from .history import progress  # noqa: E402
from .session import CourseSetupError, start, stop  # noqa: E402
from . import classboard  # noqa: E402,F401  (a workshop's class board hears each verdict)

__all__ = ["check", "progress", "start", "stop", "CourseSetupError"]
__version__ = "0.2.0"
