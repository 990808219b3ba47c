"""The grader's guard inside a graded kernel: a snapshot of the course, and verdicts the grader can verify.

The course's checks read what the learner's own kernel asked of Ray, so they
must run in that kernel, next to the learner's code. :func:`install` runs first,
in a cell the grader executes silently (no ``In[]`` entry, no IPython input
hooks) before any learner cell, and:

* imports the course (every ``raycourse`` module but the tools), Ray and the
  lesson's checks, and snapshots what the checks rely on: module names and
  ``sys.modules`` entries, function code and defaults, class dictionaries
  (``Verdict`` included), ``UPPER_CASE`` constants, the check registry, and the
  functions of Ray, the standard library and numpy the checks call;
* keeps a keyed HMAC whose key it sends to the grader over the kernel's own
  messages (a display output the grader intercepts: it never reaches the
  notebook, a file, an environment variable or the cell's source);
* registers ``checker(nonce)`` under ``sys.modules["_raycourse_grader"]``. Each
  check cell the grader runs (silently, with a fresh nonce) calls it. It
  restores the snapshot, notes every difference it had to repair (and every
  IPython hook, transformer, trace function or replaced display machinery that
  is not the course's), grades, checks again (the learner's code ran during the
  check), and sends the verdict signed with the HMAC and bound to the nonce.

A replaced checker cannot sign; a forged verdict without a valid signature, or a
second one, is reported. What this cannot stop is code that digs the HMAC
object out of the running process (frames, closures, ``gc``): the static scan
(:mod:`.scan`) flags the constructs that needs, and the README states the limit.
The snapshot and its repair live in :mod:`.snapshot`.
"""
from __future__ import annotations

import functools
import hmac
import json
import os
import sys
import threading
import types
from typing import Any, Callable

from .snapshot import Guard

VERDICT_MIME = "application/vnd.raycourse.verdict+json"
KEY_MIME = "application/vnd.raycourse.grader-key+json"
CHECKER_MODULE = "_raycourse_grader"
_INNER_WRITE = "_raycourse_inner_write"  # where a capped stream keeps the write method IPython sets


def _publisher(shell: Any) -> Callable[[dict[str, Any]], None]:
    """Send a display output through the kernel's own publisher, bypassing the display formatters."""
    publish = shell.display_pub.publish if shell is not None and getattr(shell, "display_pub", None) else None
    return (lambda data: publish(data=data, metadata={})) if publish else (lambda data: None)


def _cap_output(limit: int) -> None:
    """Stop a cell from sending more than ``limit`` characters of stdout/stderr in total to the grader.

    IPython wraps ``sys.stdout.write`` for every cell (to keep the output in its history) and sets back,
    on the stream, the method it found when the cell ends; a wrapper set on the stream in one cell is gone
    in the next. So the stream's class gets a ``write`` property: what IPython sets is kept behind it, and
    what it returns is always capped (an inner capped call, IPython's wrapper calling the one it found,
    passes through uncounted). A stream whose class cannot take it gets a wrapper of its own; the grader's
    cap on its side holds either way.
    """
    budget = {"left": limit, "told": False}
    inside = threading.local()

    def capped_call(write: Callable[[str], Any], text: str) -> Any:
        if getattr(inside, "depth", 0):
            return write(text)
        inside.depth = 1
        try:
            if budget["left"] <= 0:
                if not budget["told"]:
                    budget["told"] = True
                    write(f"\n[the grader kept only the first {limit:,} characters of printed output]\n")
                return len(text)
            budget["left"] -= len(text)
            return write(text if budget["left"] >= 0 else text[: len(text) + budget["left"]])
        finally:
            inside.depth = 0

    patched: set[type] = set()
    for stream in (sys.stdout, sys.stderr):
        cls, write = type(stream), getattr(stream, "write", None)
        if write is None or cls in patched:
            continue
        original = getattr(cls, "write", None)

        def get(self: Any, _original: Any = original) -> Callable[..., Any]:
            inner = self.__dict__.get(_INNER_WRITE)
            target = inner if inner is not None else functools.partial(_original, self)
            return lambda text, *args, **kwargs: capped_call(lambda t: target(t, *args, **kwargs), text)

        def put(self: Any, value: Any) -> None:
            self.__dict__[_INNER_WRITE] = value

        try:
            cls.write = property(get, put, lambda self: self.__dict__.pop(_INNER_WRITE, None))
            patched.add(cls)
        except (AttributeError, TypeError):  # a built-in stream class: wrap this stream only
            try:
                stream.write = lambda text, _write=write: capped_call(_write, text)
            except (AttributeError, TypeError):
                pass


def install(lesson: str, output_limit: int = 2_000_000, publish: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Snapshot the course, send the grader its key, register the checker (see the module docstring)."""
    import hashlib

    if output_limit > 0:
        _cap_output(output_limit)
    guard = Guard(lesson)
    send = publish or _publisher(guard.shell)
    key = os.urandom(32)
    mac = hmac.new(key, digestmod=hashlib.sha256)
    send({KEY_MIME: {"key": key.hex()}, "text/plain": ""})
    del key
    grade, show, namespace_of = guard.grading.grade, guard.grading.show, guard.grading.notebook_namespace
    verdict_type, dumps, module_type = guard.grading.Verdict, json.dumps, types.ModuleType

    def checker(nonce: str) -> Callable[..., None]:
        def check(exercise_id: str, **given: Any) -> None:
            found = guard.repair()
            if sys.modules.get(CHECKER_MODULE) is not grader or getattr(grader, "checker", None) is not checker:
                found.append("the grader's checker was replaced")
                sys.modules[CHECKER_MODULE], grader.checker = grader, checker
            verdict = grade(exercise_id, namespace_of(), **given)
            found += guard.repair()
            if type(verdict) is not verdict_type:
                found.append("the check returned something that is not the course's Verdict")
                verdict = verdict_type(exercise_id, guard.grading.INCORRECT, "The check's verdict was tampered with.")
            record = {"nonce": nonce, "exercise": exercise_id, "status": str(verdict.status),
                      "message": str(verdict.message), "tampered": sorted(set(found))}
            body = dumps(record, sort_keys=True)
            signature = mac.copy()
            signature.update(body.encode("utf-8"))
            send({VERDICT_MIME: {"body": body, "mac": signature.hexdigest()}, "text/plain": ""})
            show(verdict)

        return check

    grader = module_type(CHECKER_MODULE, "The class grader's checker (see raycourse.tools.classroom.sentinel).")
    grader.checker = checker
    sys.modules[CHECKER_MODULE] = grader
    guard.hooks = guard._hooks()  # the output cap and the grader's own state are part of the baseline
    _forget_source(guard.shell)


def _forget_source(shell: Any) -> None:
    """Drop this cell's source from IPython's line cache (it is no secret, but nothing needs it)."""
    import linecache

    for name, entry in list(linecache.cache.items()):
        lines = entry[2] if len(entry) > 2 else []
        if any("sentinel.install(" in line for line in lines or []):
            linecache.cache.pop(name, None)


def verify(key_hex: str, payload: Any) -> dict[str, Any] | None:
    """The verdict record in ``payload`` if its signature is valid for ``key_hex``, else None (grader side)."""
    try:
        body, signature = payload["body"], payload["mac"]
        expected = hmac.new(bytes.fromhex(key_hex), body.encode("utf-8"), "sha256").hexdigest()
        if hmac.compare_digest(expected, str(signature)):
            record = json.loads(body)
            return record if isinstance(record, dict) else None
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return None


__all__ = ["CHECKER_MODULE", "KEY_MIME", "VERDICT_MIME", "Guard", "install", "verify"]
