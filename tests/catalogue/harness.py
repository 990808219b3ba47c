"""Run a learner's answer the way a notebook would, then grade it: the engine of the adversarial catalogue.

Each case is the code a learner might type into an exercise cell. :func:`judge`
runs the lesson's earlier cells and then the answer, each as one recorded cell
run (:func:`raycourse.record.cell`) in a fresh namespace, exactly as the
notebook's kernel would, and then grades the exercise from that namespace with
the one-line check the lesson uses. So the catalogue exercises the checks end to
end: the journal, Ray's records, and the hint a learner would read.
"""
from __future__ import annotations

import gc
import re
import textwrap
from dataclasses import dataclass, field

from raycourse import record
from raycourse.grading import CORRECT, INCORRECT, NOT_ATTEMPTED, Verdict, grade

WRONG, RIGHT, STARTER = "wrong", "right", "starter"


@dataclass(frozen=True)
class Answer:
    """One learner answer: what they typed, and the verdict and hint words it must get."""

    label: str  # what the answer does, e.g. "ray.get inside the loop"
    code: str  # the exercise cell as the learner wrote it
    status: str  # CORRECT, INCORRECT or NOT_ATTEMPTED
    hints: tuple[str, ...] = ()  # words the message must contain (case-insensitive)
    before: tuple[str, ...] = ()  # cells the learner ran before this one (e.g. an earlier wrong attempt)
    name: str = field(default="", compare=False)

    @property
    def kind(self) -> str:
        return {CORRECT: RIGHT, NOT_ATTEMPTED: STARTER}.get(self.status, WRONG)


def right(label: str, code: str, *hints: str, before: tuple[str, ...] = ()) -> Answer:
    return Answer(label, code, CORRECT, hints, before)


def wrong(label: str, code: str, *hints: str, before: tuple[str, ...] = ()) -> Answer:
    return Answer(label, code, INCORRECT, hints, before)


def starter(label: str, code: str, *hints: str, before: tuple[str, ...] = ()) -> Answer:
    return Answer(label, code, NOT_ATTEMPTED, hints, before)


def run_cell(namespace: dict, code: str) -> None:
    """Run ``code`` as one notebook cell in ``namespace``; an exception is kept, as a failed cell would show it."""
    source = textwrap.dedent(code).strip("\n")
    try:
        with record.cell(namespace, source):
            exec(compile(source, "<cell>", "exec"), namespace)
    except Exception as error:  # a learner's cell may raise; the check then judges what is left
        namespace["__cell_error__"] = error


def judge(exercise: str, setup: str | list[str], answer: Answer) -> Verdict:
    """Run ``setup`` cells, ``answer.before`` cells and the answer in a fresh namespace; grade the exercise.

    Then the answer's actors are ended: each is a process of its own, and hundreds of answers' idle
    actors would fill a two-core machine (a namespace of functions is a reference cycle: collect it too).
    """
    namespace: dict = {"__name__": "__learner__"}
    if not exercise.startswith("09."):
        _free_kept_workers()
    try:
        for code in ([setup] if isinstance(setup, str) else list(setup)) + list(answer.before) + [answer.code]:
            run_cell(namespace, code)
        return grade(exercise, namespace=namespace)
    finally:
        end_actors(namespace)


def _free_kept_workers() -> None:
    """End the capstone's kept workers before another lesson's answer runs.

    They reserve one CPU each and stay between lesson 09's cases (starting them is slow); when pytest-randomly
    ran lesson 09's file first in this process, another lesson's tasks found no CPU free and waited forever.
    """
    import ray

    if ray.is_initialized():
        from raycourse.lessons.dispatch.kept import kept_actors, make_room

        if kept_actors()["workers"]:  # only then: another holder of CPUs would make every case wait make_room's 30 s
            make_room(ray.cluster_resources().get("CPU", 0.0))


def end_actors(namespace: dict) -> None:
    """Kill the actors the namespace holds (directly, or in a list, tuple or dict), then forget it."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        for value in list(namespace.values()):
            items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
            for item in list(items):
                if isinstance(item, ray.actor.ActorHandle):
                    try:
                        ray.kill(item)
                    except Exception:  # already gone
                        pass
    namespace.clear()
    gc.collect()


# Words that mean an exception's text reached the learner instead of a hint.
CRASH_TEXT = re.compile(r"Traceback|File \"|line \d+, in|object has no attribute|NoneType|unsupported operand|"
                        r"max\(\) arg is an empty|list index out of range|a defect in the course")


def assert_verdict(verdict: Verdict, answer: Answer) -> None:
    """The verdict has the expected status, the hint words, and no crash text or unformatted large numbers."""
    message = verdict.message
    assert verdict.status == answer.status, f"{answer.label!r}: expected {answer.status}, got {verdict}"
    for word in answer.hints:
        assert word.lower() in message.lower(), f"{answer.label!r}: hint lacks {word!r}: {message}"
    assert not CRASH_TEXT.search(message), f"{answer.label!r}: crash text reached the learner: {message}"
    assert not re.search(r"(?<![\d.,\w-])\d{5,}(?![\d.,\w])", message.replace("`", " ")), \
        f"{answer.label!r}: a large number without thousands separators: {message}"


def ids(answers: list[Answer]) -> list[str]:
    return [f"{a.kind}:{a.label}" for a in answers]
