"""The workloads the lessons drive: Monte Carlo pi, the object store, the Game of Life, dispatch, self-play.

Lessons import these by name, e.g. ``from raycourse.lessons import montecarlo``; the
checks import them too, so a check knows the right answer without trusting the learner's code.
"""
