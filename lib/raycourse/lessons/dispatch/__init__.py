"""Pull-based work distribution for the capstone: the actors (:mod:`.actors`) and the run harness (:mod:`.run`).

``actors`` holds the pieces a run is made of (dispatcher, sinks, monitor, worker); ``run``
wires them together and reports. ``run`` imports ``actors``, never the other way round.
"""
from .actors import (DONE, Collector, Dispatcher, Efficiency, FilePickler, Progress, PullWorker, RunStopped, Task,
                     TaskMonitor, Timed, close_pickler, efficiency, predict, pull_loop, read_pickles, sleep_units, spans,
                     timed)
from .run import RunReport, Workers, run_pull

__all__ = ["DONE", "Collector", "Dispatcher", "Efficiency", "FilePickler", "Progress", "PullWorker", "RunStopped", "Task",
           "TaskMonitor", "Timed", "close_pickler", "efficiency", "predict", "pull_loop", "read_pickles", "sleep_units",
           "spans", "timed", "RunReport", "Workers", "run_pull"]
