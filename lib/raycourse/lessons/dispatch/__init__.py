"""Pull-based work distribution for the capstone, in the order a run uses it.

:mod:`.measure` (timed work, intervals, efficiency, predictions), :mod:`.actors` (the task, DONE, the
dispatcher and its books, the course's worker), :mod:`.sinks` (collector, file), :mod:`.report` (what a
run did), :mod:`.kept` (actors kept between runs) and :mod:`.run` (the harness that wires them together
and watches a run). Imports only go forward in that list: none of the others imports ``run``.
"""
from .actors import DONE, Dispatcher, DispatcherFailed, DispatcherProxy, Event, PullWorker, RunStopped, Task
from .kept import RunError, release_workers
from .measure import Efficiency, Slowed, Timed, efficiency, predict, schedule, sleep_units, spans, timed
from .report import RunReport
from .run import run_pull
from .sinks import Collector, FilePickler, read_pickles

__all__ = ["DONE", "Collector", "Dispatcher", "DispatcherFailed", "DispatcherProxy", "Efficiency", "Event",
           "FilePickler", "PullWorker", "RunError", "RunReport", "RunStopped", "Slowed", "Task", "Timed",
           "efficiency", "predict", "read_pickles", "release_workers", "run_pull", "schedule",
           "sleep_units", "spans", "timed"]
