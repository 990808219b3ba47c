"""Evidence checks shared by several lessons' exercises."""
from __future__ import annotations

from typing import Any

from ..grading import Incorrect, NotAttempted


def is_remote_function(fn: Any) -> bool:
    import ray.remote_function

    return isinstance(fn, ray.remote_function.RemoteFunction)


def require_remote(fn: Any, name: str, computed: bool = False) -> None:
    """Raise unless ``fn`` is a remote function.

    ``computed`` tells whether the learner's values are already right: then the
    starter code simply ran in the notebook, and the exercise is not attempted.
    """
    if is_remote_function(fn):
        return
    if callable(fn) and computed:
        raise NotAttempted(f"`{name}` still runs in the notebook. Decorate it with @ray.remote and call {name}.remote(...).")
    if callable(fn):
        raise Incorrect(f"`{name}` is a plain Python function: decorate it with @ray.remote so Ray can run it as a task.")
    raise Incorrect(f"`{name}` should be a function decorated with @ray.remote, got {type(fn).__name__}.")


def require_duration(duration: Any, at_least: float, what: str) -> float:
    """Raise unless ``duration`` is a number of seconds no smaller than the physical minimum."""
    if not isinstance(duration, (int, float)) or isinstance(duration, bool):
        raise Incorrect(f"`duration` should be a number of seconds, got {type(duration).__name__}.")
    if duration < at_least:
        raise Incorrect(
            f"`duration` is {duration:.2f} s, but {what} cannot take less than {at_least:g} s. "
            "Start the timer before submitting and stop it after ray.get returns."
        )
    return float(duration)


def same_values(actual: Any, expected: list[Any]) -> bool:
    """``list(actual) == expected``, False for anything that cannot be compared that way."""
    try:
        return [v for v in actual] == list(expected)
    except Exception:  # arrays, refs, None: not the expected plain list
        return False
