"""Exercise checks, one module per lesson (``lessonNN.py``), registered on import.

Each check receives the learner's answer as keyword arguments, returns a short
success message, or raises ``NotAttempted`` / ``Incorrect`` with a hint.
"""
