"""How the journal learns what the driver does: thin wrappers around Ray's driver-side calls, and IPython's cell events.

Each wrapper calls Ray unchanged, then appends one small record to
:data:`raycourse.record.JOURNAL` (see :mod:`raycourse.record` for why). They keep
no ``ObjectRef``, actor handle or value alive, and hide themselves from tracebacks
(``__tracebackhide__``), so a learner's error still points at the learner's line.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Mapping

from .record import JOURNAL, MAX_ITEMS, Fetch, Put, Submission, Wait, _is_ref, describe_error, stamped, summarize, witness

_installed = False
_ipython_registered: set[int] = set()


def _ids(refs: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    items = refs if isinstance(refs, (list, tuple)) else [refs]
    tasks, objects = [], []
    for ref in items:
        if _is_ref(ref):
            tasks.append(ref.task_id().hex())
            objects.append(ref.hex())
        else:
            tasks.append("")
            objects.append("")
    return tuple(tasks), tuple(objects)


def _returned_refs(result: Any) -> list[Any]:
    if _is_ref(result):
        return [result]
    if isinstance(result, (list, tuple)):
        return [r for r in result if _is_ref(r)]
    return []


def _options_of(options: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("num_cpus", "num_gpus", "resources", "memory", "name", "num_returns", "max_concurrency", "lifetime",
            "max_restarts", "scheduling_strategy", "label_selector")
    return {k: options[k] for k in keep if k in options and options[k] is not None}


def _record_submission(kind: str, target: Any, name: str, args: Any, kwargs: Any, options: Mapping[str, Any],
                       result: Any, actor_id: str = "") -> None:
    where = JOURNAL._where()
    if where is None:
        return
    refs = _returned_refs(result)
    kwargs = dict(kwargs or {})
    summaries = tuple(summarize(a) for a in list(args or [])[:MAX_ITEMS]) + tuple(summarize(v) for v in kwargs.values())
    JOURNAL.add(Submission(
        JOURNAL.next_seq(), where, time.time(), kind, target, name, tuple(r.task_id().hex() for r in refs),
        tuple(r.hex() for r in refs), actor_id, summaries, tuple(kwargs), _options_of(options),
        threading.current_thread() is threading.main_thread(),
    ))


def _function_name(remote_function: Any) -> str:
    function = getattr(remote_function, "_function", None)
    return getattr(function, "__name__", None) or str(getattr(remote_function, "_function_name", "?")).rsplit(".", 1)[-1]


def _class_name(actor_class: Any) -> str:
    meta = getattr(actor_class, "__ray_metadata__", None)
    return getattr(getattr(meta, "modified_class", None), "__name__", None) or getattr(actor_class, "__name__", "?")


def install() -> None:
    """Wrap Ray's driver-side calls so they are journaled (idempotent; Ray's behaviour is unchanged)."""
    global _installed
    if _installed:
        return
    import ray
    import ray.actor
    import ray.remote_function

    remote_function_remote = ray.remote_function.RemoteFunction._remote

    def task_remote(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        __tracebackhide__ = True
        result = remote_function_remote(self, args=args, kwargs=kwargs, **options)
        _record_submission("task", self, _function_name(self), args, kwargs, options, result)
        return result

    actor_class_remote = ray.actor.ActorClass._remote

    def actor_remote(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        __tracebackhide__ = True
        handle = actor_class_remote(self, args=args, kwargs=kwargs, **options)
        actor_id = handle._actor_id.hex() if isinstance(handle, ray.actor.ActorHandle) else ""
        _record_submission("actor", self, _class_name(self), args, kwargs, options, None, actor_id)
        return handle

    method_remote = ray.actor.ActorMethod._remote

    def method_call(self: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        __tracebackhide__ = True
        result = method_remote(self, args=args, kwargs=kwargs, **options)
        actor = getattr(self, "_actor", None)
        if actor is None and hasattr(self, "_actor_ref"):  # Ray keeps a weak reference to the handle
            actor = self._actor_ref()
        actor_id = actor._actor_id.hex() if actor is not None else ""
        descriptor = getattr(actor, "_ray_actor_creation_function_descriptor", None)
        cls = getattr(descriptor, "class_name", "") if descriptor is not None else ""
        name = f"{cls}.{self._method_name}" if cls else self._method_name
        _record_submission("method", None, name, args, kwargs, options, result, actor_id)
        return result

    get, wait, put = ray.get, ray.wait, ray.put

    def journaled_get(object_refs: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        where = JOURNAL._where()
        if where is None:
            return get(object_refs, *args, **kwargs)
        start = time.time()
        tasks, objects = _ids(object_refs)
        single = not isinstance(object_refs, (list, tuple))
        try:
            result = get(object_refs, *args, **kwargs)
        except BaseException as error:
            JOURNAL.add(Fetch(JOURNAL.next_seq(), where, start, time.time(), tasks, objects, None, (), 0, single,
                              f"{type(error).__name__}", kwargs.get("timeout")))
            raise
        values = [result] if single else list(result) if isinstance(result, list) else [result]
        end = time.time()
        with stamped(end):
            summaries, ids = tuple(summarize(v) for v in values[:MAX_ITEMS]), tuple(witness(v) for v in values[:MAX_ITEMS])
            JOURNAL.add(Fetch(JOURNAL.next_seq(), where, start, end, tasks, objects, summaries, ids, witness(result),
                              single, "", kwargs.get("timeout")))
        return result

    def journaled_wait(object_refs: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        where = JOURNAL._where()
        start = time.time()
        result = wait(object_refs, *args, **kwargs)
        if where is not None:
            ready_tasks, _ = _ids(list(result[0]))
            tasks, _ = _ids(list(object_refs))
            num_returns = kwargs.get("num_returns", args[0] if args else 1)
            JOURNAL.add(Wait(JOURNAL.next_seq(), where, start, time.time(), tasks, ready_tasks,
                             int(num_returns) if isinstance(num_returns, int) else 1, kwargs.get("timeout")))
        return result

    def journaled_put(value: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        ref = put(value, *args, **kwargs)
        where = JOURNAL._where()
        if where is not None:
            nbytes = int(getattr(value, "nbytes", 0) or 0)
            JOURNAL.add(Put(JOURNAL.next_seq(), where, time.time(), ref.hex(), type(value).__name__, nbytes, witness(value)))
        return ref

    for wrapper, original in ((journaled_get, get), (journaled_wait, wait), (journaled_put, put)):
        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        wrapper.__doc__ = original.__doc__
        wrapper.__name__ = original.__name__
    ray.remote_function.RemoteFunction._remote = task_remote
    ray.actor.ActorClass._remote = actor_remote
    ray.actor.ActorMethod._remote = method_call
    ray.get, ray.wait, ray.put = journaled_get, journaled_wait, journaled_put
    _installed = True


def watch_cells(shell: Any = None) -> bool:
    """Register IPython's cell events so every record knows its cell run (idempotent); False outside IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover
            return False
        shell = get_ipython()
    if shell is None or id(shell) in _ipython_registered:
        return shell is not None

    def pre_run_cell(info: Any) -> None:
        JOURNAL.begin_cell(getattr(info, "raw_cell", "") or "", shell.user_ns, getattr(info, "cell_id", "") or "")

    def post_run_cell(result: Any) -> None:
        problem = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        error = describe_error(problem) if isinstance(problem, BaseException) else ""
        JOURNAL.end_cell(shell.user_ns, failed=not getattr(result, "success", True), error=error)

    shell.events.register("pre_run_cell", pre_run_cell)
    shell.events.register("post_run_cell", post_run_cell)
    _ipython_registered.add(id(shell))
    # The cell running now (the set-up cell) began before we listened: open it, so it closes normally.
    if not JOURNAL.cells or JOURNAL.cells[-1].end is not None:
        JOURNAL.begin_cell("", shell.user_ns)
    return True
