"""The guard's snapshot of the course inside a graded kernel, and its repair: see :mod:`.sentinel`.

:class:`Guard` is taken before any learner code runs; :meth:`Guard.repair` puts back
everything that differs from it and says what it found (nothing, for an honest
notebook). Course state that its own functions rebind (``global _current``) is
left alone: it is state, not definitions; so is what a library swaps for itself
(the journal's wrappers around ``ray.get``, Ray's own ``print`` for progress bars).
"""
from __future__ import annotations

import copy
import dis
import importlib
import pkgutil
import re
import sys
import types
from typing import Any

# Third-party and standard modules whose functions the checks call (their bindings are snapshotted).
WATCHED = ("builtins", "time", "json", "hmac", "math", "statistics", "random", "inspect", "contextlib", "io", "types",
           "functools", "itertools", "threading", "dataclasses", "collections", "copy", "traceback", "re", "os",
           "numpy", "ray", "ray.remote_function", "ray.actor", "ray._private.worker", "ray._private.state",
           "ray._private.services", "ray._private.grpc_utils", "ray.core.generated.gcs_service_pb2_grpc",
           "IPython", "IPython.core.getipython", "IPython.display", "IPython.core.display_functions")
WATCHED_CLASSES = (("ray.remote_function", "RemoteFunction"), ("ray.actor", "ActorClass"), ("ray.actor", "ActorMethod"),
                   ("ray.actor", "ActorHandle"), ("ray._private.state", "GlobalState"),
                   ("ray.core.generated.gcs_service_pb2_grpc", "TaskInfoGcsServiceStub"))
_LIBRARIES = {"ray", "IPython", "ipykernel", "tqdm", "matplotlib_inline", "bokeh"}  # whose own swaps are expected
_KERNEL_MANAGED = {("builtins", "input"), ("builtins", "raw_input")}  # ipykernel rebinds these for every request
_CELL_FILE = re.compile(r"(ipykernel_\d+[/\\]\d+\.py|<ipython-input-[^>]*>)$")


def _codes(code: types.CodeType, into: set[types.CodeType]) -> set[types.CodeType]:
    into.add(code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _codes(const, into)
    return into


def _functions_of(namespace: dict[str, Any], module_name: str) -> list[types.FunctionType]:
    """Functions defined in a module: top-level, and in its classes (methods, properties, static/class methods)."""
    found = []
    for value in list(namespace.values()):
        if isinstance(value, types.FunctionType) and value.__module__ == module_name:
            found.append(value)
        elif isinstance(value, type) and value.__module__ == module_name:
            for member in list(vars(value).values()):
                inner = getattr(member, "__func__", member)
                for part in (inner, getattr(member, "fget", None), getattr(member, "fset", None)):
                    if isinstance(part, types.FunctionType):
                        found.append(part)
    return found


_STORES = {dis.opmap["STORE_GLOBAL"], dis.opmap["DELETE_GLOBAL"]}


def _state_names(functions: list[types.FunctionType]) -> set[str]:
    """Names a module's own functions rebind (``global x; x = ...``): its runtime state.

    Read straight from the bytecode (two bytes an instruction): ``dis`` is too slow for numpy's thousands.
    """
    names: set[str] = set()
    for function in functions:
        for code in _codes(function.__code__, set()):
            raw, extended = code.co_code, 0
            for index in range(0, len(raw), 2):
                opcode, argument = raw[index], raw[index + 1] | extended
                extended = argument << 8 if opcode == dis.EXTENDED_ARG else 0
                if opcode in _STORES and argument < len(code.co_names):
                    names.add(code.co_names[argument])
    return names


class Guard:
    """The snapshot and its comparisons; :meth:`repair` restores and says what it found changed."""

    def __init__(self, lesson: str) -> None:
        import raycourse

        try:
            names = [m.name for m in pkgutil.walk_packages(raycourse.__path__, "raycourse.", onerror=lambda name: None)]
        except Exception:  # a package that fails to import while walking: snapshot what did import
            names = []
        for name in names:
            if not name.startswith("raycourse.tools") and not name.endswith("__main__"):
                try:
                    importlib.import_module(name)
                except Exception:  # a lesson helper that needs what this machine lacks: not ours to judge
                    pass
        for name in (f"raycourse.checks.lesson{lesson}", "ray", *WATCHED):
            try:
                importlib.import_module(name)
            except Exception:
                pass
        self.course = {n: m for n, m in list(sys.modules.items()) if isinstance(m, types.ModuleType)
                       and (n == "raycourse" or n.startswith("raycourse.")) and not n.startswith("raycourse.tools.")
                       and n != "raycourse.tools"}
        for own in (__name__, f"{__package__}.sentinel"):  # the guard's own code is protected like the course's
            if own in sys.modules:
                self.course[own] = sys.modules[own]
        self.watched = {n: sys.modules[n] for n in WATCHED if n in sys.modules}
        self.functions: list[tuple[types.FunctionType, Any, Any, Any]] = []
        self.names: dict[str, dict[str, Any]] = {}
        self.constants: dict[tuple[str, str], Any] = {}
        self.classes: list[tuple[type, dict[str, Any]]] = []
        self.course_codes: set[types.CodeType] = set()
        for name, module in self.course.items():
            namespace = vars(module)
            functions = _functions_of(namespace, name)
            state = _state_names(functions)
            self.names[name] = {k: v for k, v in namespace.items() if k not in state}
            for key, value in namespace.items():
                if key.isupper() and not key.startswith("_") and isinstance(value, (list, dict, set)):
                    try:
                        self.constants[(name, key)] = copy.deepcopy(value)
                    except Exception:  # an odd constant: its binding is still restored
                        pass
                if isinstance(value, type) and value.__module__ == name:
                    self.classes.append((value, dict(vars(value))))
            for function in functions:
                self.functions.append((function, function.__code__, function.__defaults__, function.__kwdefaults__))
                _codes(function.__code__, self.course_codes)
        for name, module in self.watched.items():
            state = _state_names(_functions_of(vars(module), name))  # what the library itself rebinds as it runs
            self.names[name] = {k: v for k, v in vars(module).items() if (callable(v) or isinstance(v, types.ModuleType))
                                and (name, k) not in _KERNEL_MANAGED and k not in state}
            for value in self.names[name].values():
                if isinstance(value, types.FunctionType):
                    self.functions.append((value, value.__code__, value.__defaults__, value.__kwdefaults__))
        for module_name, class_name in WATCHED_CLASSES:
            cls = getattr(self.watched.get(module_name), class_name, None)
            if isinstance(cls, type):
                self.classes.append((cls, dict(vars(cls))))
        import raycourse.grading as grading

        self.grading = grading
        self.registry, self.titles = dict(grading._REGISTRY), dict(grading._TITLES)
        self.state = getattr(sys.modules.get("ray._private.state"), "state", None)
        self.state_dict = dict(vars(self.state)) if self.state is not None else {}
        self.shell = _shell()
        self.hooks = self._hooks()
        self.streams = (sys.stdout, sys.stderr, sys.displayhook)

    # what counts as the course's own, or the learner's
    def is_course(self, value: Any) -> bool:
        code = getattr(getattr(value, "__func__", value), "__code__", None)
        return code is not None and code in self.course_codes

    def expected(self, value: Any) -> bool:
        """A change the libraries make themselves: the course's wrappers, or a library function put in place
        by the library (Ray's ``tqdm_ray`` swaps ``print`` when a worker first prints a progress bar)."""
        if self.is_course(value):
            return True
        function = getattr(value, "__func__", value)
        return (isinstance(function, types.FunctionType) and not self.from_cell(function)
                and str(function.__module__).split(".")[0] in _LIBRARIES)

    def from_cell(self, value: Any) -> bool:
        """Was ``value`` (a function or method) written in a notebook cell?"""
        code = getattr(getattr(value, "__func__", value), "__code__", None)
        if code is None:
            return True  # a partial, a builtin or a callable object registered as a hook: not library code
        cells = getattr(getattr(self.shell, "compile", None), "_filename_map", {}) if self.shell else {}
        return code.co_filename in cells or bool(_CELL_FILE.search(code.co_filename))

    def _hooks(self) -> dict[str, Any]:
        shell = self.shell
        if shell is None:
            return {}
        hooks = {f"event {e}": list(c) for e, c in getattr(shell.events, "callbacks", {}).items()}
        for name in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            hooks[name] = list(getattr(shell, name, []))
        for name in ("display_pub", "displayhook", "display_formatter", "compile"):
            hooks[name] = getattr(shell, name, None)
        return hooks

    # the comparisons
    def repair(self) -> list[str]:
        """Restore the snapshot; return what had been changed (empty for an honest notebook)."""
        found: list[str] = []
        for name, module in {**self.course, **self.watched}.items():
            if sys.modules.get(name) is not module:
                found.append(f"sys.modules[{name!r}] was replaced")
                sys.modules[name] = module
        for name, saved in self.names.items():
            module = self.course.get(name) or self.watched[name]
            allowed = self.is_course if name in self.course else self.expected  # a library may swap its own names
            namespace = vars(module)
            for key, value in saved.items():
                current = namespace.get(key, _MISSING)
                if current is not value and not allowed(current):
                    found.append(f"`{name}.{key}` was replaced")
                    namespace[key] = value
        for (name, key), value in self.constants.items():
            current = vars(self.course[name]).get(key)
            try:
                same = current == value
            except Exception:
                same = False
            if not same:
                found.append(f"the contents of `{name}.{key}` were changed")
                if isinstance(current, (list, dict, set)) and type(current) is type(value):
                    fresh = copy.deepcopy(value)
                    current.clear()
                    current.extend(fresh) if isinstance(current, list) else current.update(fresh)
                else:
                    vars(self.course[name])[key] = copy.deepcopy(value)
        for function, code, defaults, kwdefaults in self.functions:
            if function.__code__ is not code or function.__defaults__ is not defaults or function.__kwdefaults__ is not kwdefaults:
                found.append(f"the code of `{function.__module__}.{function.__qualname__}` was changed")
                function.__code__, function.__defaults__, function.__kwdefaults__ = code, defaults, kwdefaults
        for cls, saved in self.classes:
            current = dict(vars(cls))
            for key in set(current) | set(saved):
                if key.startswith("_abc_") or current.get(key, _MISSING) is saved.get(key, _MISSING):
                    continue
                allowed = self.is_course if cls.__module__.startswith("raycourse") else self.expected
                if key in saved and allowed(current.get(key)):
                    continue  # the journal's own wrapper (RemoteFunction._remote and friends)
                found.append(f"`{cls.__module__}.{cls.__qualname__}.{key}` was changed")
                if key in saved:
                    type.__setattr__(cls, key, saved[key])
                else:
                    type.__delattr__(cls, key)
        found += self._repair_registry() + self._repair_ray_state() + self._repair_shell()
        return found

    def _repair_registry(self) -> list[str]:
        found = []
        registry, titles = self.grading._REGISTRY, self.grading._TITLES
        for exercise_id, function in list(registry.items()):
            saved = self.registry.get(exercise_id)
            new_lesson = saved is None and str(getattr(function, "__module__", "")).startswith("raycourse.checks.") \
                and function.__module__ not in self.course and not self.from_cell(function)
            if function is not saved and not new_lesson:
                found.append(f"the check registered for {exercise_id} was replaced")
                registry.pop(exercise_id)
        for exercise_id, function in self.registry.items():
            if registry.get(exercise_id) is not function:
                registry[exercise_id] = function
                titles[exercise_id] = self.titles.get(exercise_id, exercise_id)
        return found

    def _repair_ray_state(self) -> list[str]:
        """Ray's record reader (``ray._private.state.state``) must not carry functions written in a cell."""
        found = []
        if self.state is not None:
            for key, value in list(vars(self.state).items()):
                if callable(value) and self.state_dict.get(key) is not value and self.from_cell(value):
                    found.append(f"Ray's task-record reader `{key}` was replaced")
                    vars(self.state).pop(key)
        return found

    def _repair_shell(self) -> list[str]:
        found = []
        if (sys.stdout, sys.stderr, sys.displayhook) != self.streams:
            found.append("sys.stdout, sys.stderr or sys.displayhook was replaced")
            sys.stdout, sys.stderr, sys.displayhook = self.streams
        if sys.gettrace() is not None or sys.getprofile() is not None:
            found.append("a trace or profile function (sys.settrace/setprofile) was installed")
            sys.settrace(None)
            sys.setprofile(None)
        shell = self.shell
        if shell is None:
            return found
        for event, callbacks in getattr(shell.events, "callbacks", {}).items():
            saved = self.hooks.get(f"event {event}", [])
            for callback in list(callbacks):
                if callback not in saved and self.from_cell(callback) and not self.is_course(callback):
                    found.append(f"an IPython `{event}` hook was registered")
                    callbacks.remove(callback)
        for name in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            current = getattr(shell, name, [])
            extra = [t for t in current if t not in self.hooks[name]]
            if extra:
                found.append(f"IPython's `{name}` was changed")
                current[:] = self.hooks[name]
        for name in ("display_pub", "displayhook", "display_formatter", "compile"):
            if getattr(shell, name, None) is not self.hooks[name]:
                found.append(f"IPython's `{name}` was replaced")
                setattr(shell, name, self.hooks[name])
        return found


_MISSING = object()


def _shell() -> Any:
    try:
        from IPython import get_ipython

        return get_ipython()
    except ImportError:  # pragma: no cover - IPython ships with the course
        return None
