"""Find learner code that reaches into the grader, Ray or IPython: a tripwire for "needs review".

Grading runs in the learner's own kernel (the checks read what that kernel asked
of Ray), so code in the notebook could, in principle, tamper with the checks:
replace ``ray.get``, patch a course class, register an IPython hook that writes a
verdict first, fabricate journal records, or patch ``time.time``. The grader
closes the easy doors at run time (see :mod:`.sentinel`), but no in-process
defence is complete. So every learner cell is also read, statically, for the
constructs such attempts need; a notebook with any of them is marked "needs
review" instead of silently "correct". A course exercise never needs them, so an
honest answer is flagged only when it does something unusual (a shell command,
``getattr`` with a computed name).

The scan reads the code IPython would run (``%magics`` and ``!shell`` lines
transformed first). A cell that does not parse cannot run, so it cannot tamper.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Iterable

# Modules of the course a learner's code never needs (the grader, the journal, the checks, the tools).
COURSE_INTERNALS = ("raycourse.grading", "raycourse.record", "raycourse.checks", "raycourse.tools",
                    "raycourse.session", "raycourse.history")
# Modules whose import alone says "introspection or patching of the running process".
SUSPECT_MODULES = {"ctypes", "gc", "inspect", "importlib", "builtins", "__builtin__", "linecache", "ipykernel",
                   "jupyter_client", "zmq", "traitlets", "_thread", "marshal"}
# Attribute names used to read or rewrite functions, frames and classes from the inside.
INTROSPECTION = {"__code__", "__globals__", "__closure__", "__defaults__", "__kwdefaults__", "__dict__", "__class__",
                 "__bases__", "__mro__", "__subclasses__", "__builtins__", "__setattr__", "__delattr__",
                 "__getattribute__", "__wrapped__", "__func__", "__self__", "__module__", "__qualname__",
                 "cell_contents", "f_back", "f_locals", "f_globals", "f_builtins", "f_code", "gi_frame", "cr_frame",
                 "tb_frame", "co_consts", "_getframe", "settrace", "setprofile", "addaudithook", "meta_path",
                 "path_hooks", "displayhook", "excepthook", "modules"}
# IPython and kernel internals: event hooks, input/AST transformers, the display and message machinery.
IPYTHON_HOOKS = {"events", "display_pub", "display_formatter", "displayhook", "history_manager",
                 "input_transformers_cleanup", "input_transformers_post", "ast_transformers", "get_parent",
                 "iopub_socket", "compile"}
IPYTHON_INTERNALS = IPYTHON_HOOKS | {"kernel", "user_ns", "user_global_ns", "run_cell", "run_cell_async", "ex", "ev",
                                     "run_code", "safe_execfile", "push"}
# Names IPython binds to cell sources and outputs (the check cells' sources among them).
HISTORY_NAMES = re.compile(r"^(In|Out|_ih|_oh|_dh|_i+|_i\d+|_\d+|__+)$")
DANGEROUS_BUILTINS = {"eval", "exec", "compile", "__import__", "globals", "vars", "breakpoint"}
# Magics that run code the scan cannot see (another file, a shell, a macro) or replay history.
OPAQUE_MAGICS = {"run", "load", "loadpy", "load_ext", "reload_ext", "aimport", "autoreload", "writefile", "file",
                 "script", "bash", "sh", "python", "python2", "python3", "pypy", "perl", "ruby", "system", "sx",
                 "history", "hist", "recall", "rerun", "macro", "store", "edit", "debug", "pdb", "js", "javascript",
                 "html", "capture", "time", "timeit", "prun"}
HARMLESS_MAGICS = {"time", "timeit", "capture", "prun"}  # run the cell's own (scanned) code
SUSPECT_STRINGS = ("_raycourse_grader", "vnd.raycourse", "raycourse.grading", "raycourse.record", "raycourse.tools",
                   "raycourse.checks", "RAYCOURSE_", "RAY_JOB_CONFIG")
# Roots whose attributes a learner may read but never replace.
PROTECTED_ROOTS = {"ray", "raycourse", "time", "sys", "os", "builtins", "IPython", "numpy", "np", "math", "random",
                   "json", "threading", "concurrent", "multiprocessing", "types", "functools"}


@dataclass(frozen=True)
class Finding:
    """One suspicious construct: the learner's cell number (1-based), the line in it, and what it does."""

    cell: int
    line: int
    what: str

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: {self.what}"


def _ipython_to_python(source: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # a cell IPython itself cannot transform fails when run: read it as plain Python
        return source


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a chain of attributes on a name, else ""."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    if isinstance(node, ast.Call) and _dotted(node.func) == "get_ipython":
        return ".".join(["get_ipython()", *reversed(parts)])
    return ""


def _constant_text(node: ast.AST) -> str | None:
    """The value of a string built only from constants (``"__clo" + "sure__"``, f-strings of constants)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _constant_text(node.left), _constant_text(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values):
        return "".join(str(v.value) for v in node.values)
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, cell: int, aliases: dict[str, str], assigned: set[str] | None = None) -> None:
        self.cell, self.aliases, self.found = cell, aliases, []
        self.assigned = assigned or set()  # names the learner binds (``for _i in ...`` is not IPython's ``_i``)

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append(Finding(self.cell, getattr(node, "lineno", 1), what))

    def resolve(self, dotted: str) -> str:
        """Replace a local alias by the module it stands for (``np.x`` -> ``numpy.x``)."""
        head, _, rest = dotted.partition(".")
        full = self.aliases.get(head, head)
        return f"{full}.{rest}" if rest else full

    # imports
    def _module(self, node: ast.AST, name: str) -> None:
        if name.startswith(COURSE_INTERNALS):
            self.flag(node, f"imports `{name}` (the grader's internals)")
        elif name.split(".")[0] in SUSPECT_MODULES:
            self.flag(node, f"imports `{name}` (introspection of the running kernel)")
        elif name.startswith(("ray._", "ray.core", "ray.experimental.state")):
            self.flag(node, f"imports `{name}` (Ray's internals)")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(node, alias.name)
            self.aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self._module(node, module)
        for alias in node.names:
            full = f"{module}.{alias.name}" if module else alias.name
            if module and not module.startswith(COURSE_INTERNALS):
                self._module(node, full)
            if full == "ray.timeline":
                self.flag(node, "imports `ray.timeline` (Ray's records, which the checks read)")
            self.aliases[alias.asname or alias.name] = full

    # names and attributes
    def visit_Name(self, node: ast.Name) -> None:
        if (HISTORY_NAMES.match(node.id) and node.id not in {"_", "__"} and isinstance(node.ctx, ast.Load)
                and node.id not in self.assigned):
            self.flag(node, f"reads `{node.id}` (IPython's record of cell sources and outputs)")
        elif node.id in DANGEROUS_BUILTINS:
            self.flag(node, f"uses `{node.id}` (runs or reaches code the scan cannot read)")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self.resolve(_dotted(node)) if _dotted(node) else ""
        if node.attr in INTROSPECTION and not (node.attr == "modules" and not dotted.startswith("sys.")):
            self.flag(node, f"uses `{node.attr}` (reads or rewrites code, frames or classes from the inside)")
        elif (node.attr in IPYTHON_INTERNALS and dotted.startswith("get_ipython()")) or (
                node.attr in IPYTHON_HOOKS and node.attr != "compile"):
            self.flag(node, f"uses `{node.attr}` of IPython (event hooks, transformers, the kernel's messages)")
        elif dotted.startswith(COURSE_INTERNALS):
            self.flag(node, f"uses `{dotted}` (the grader's internals)")
        elif dotted.startswith("ray.timeline") or dotted == "ray.timeline":
            self.flag(node, "uses `ray.timeline` (Ray's records, which the checks read)")
        elif dotted.split(".")[0] in {"ray", "raycourse"} and any(p.startswith("_") for p in dotted.split(".")[1:]):
            self.flag(node, f"uses `{dotted}` (a private part of {dotted.split('.')[0]})")
        if isinstance(node.ctx, (ast.Store, ast.Del)) and dotted.split(".")[0] in PROTECTED_ROOTS:
            verb = "replaces" if isinstance(node.ctx, ast.Store) else "deletes"
            self.flag(node, f"{verb} `{dotted}` (code the course and the checks rely on)")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call) and _dotted(node.value.func) == "get_ipython":
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.aliases[target.id] = "get_ipython()"  # ip = get_ipython(); ip.kernel ...
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        dotted = self.resolve(_dotted(node.value)) if _dotted(node.value) else ""
        if isinstance(node.ctx, (ast.Store, ast.Del)) and dotted.split(".")[0] in PROTECTED_ROOTS:
            self.flag(node, f"changes an entry of `{dotted}` (state the course and the checks rely on)")
        key = _constant_text(node.slice)
        if dotted.endswith("environ") and key and key.startswith(("RAYCOURSE", "RAY_")):
            self.flag(node, f"touches the environment variable `{key}` (the grader's or Ray's settings)")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self._text(node, node.value)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        text = _constant_text(node)
        if text is not None:
            self._text(node, text)
        else:
            self.generic_visit(node)

    def _text(self, node: ast.AST, text: str) -> None:
        if any(s in text for s in SUSPECT_STRINGS):
            self.flag(node, f"names the grader's internals in a string ({text[:40]!r})")
        elif text in INTROSPECTION or text in IPYTHON_HOOKS - {"compile"}:
            self.flag(node, f"names `{text}` in a string (an attribute reached indirectly)")

    def visit_Call(self, node: ast.Call) -> None:
        name = self.resolve(_dotted(node.func)) if _dotted(node.func) else ""
        short = name.rsplit(".", 1)[-1]
        if short in {"getattr", "setattr", "delattr", "hasattr"} and name in {short, f"builtins.{short}"}:
            attribute = _constant_text(node.args[1]) if len(node.args) > 1 else None
            target = self.resolve(_dotted(node.args[0])) if node.args and _dotted(node.args[0]) else ""
            if attribute is None and len(node.args) > 1:
                self.flag(node, f"calls `{short}` with a computed attribute name")
            elif short in {"setattr", "delattr"} and (target.split(".")[0] in PROTECTED_ROOTS or not target):
                self.flag(node, f"calls `{short}` on `{target or 'an object'}` (rewrites it from the outside)")
        elif name.endswith(("run_line_magic", "run_cell_magic")) and node.args:
            magic = (_constant_text(node.args[0]) or "?").lstrip("%")
            if magic in OPAQUE_MAGICS and magic not in HARMLESS_MAGICS:
                self.flag(node, f"runs the `%{magic}` magic (code the scan cannot read)")
            elif magic in HARMLESS_MAGICS:  # %time, %%capture ...: the code they run is the cell's own, read it too
                body = _constant_text(node.args[-1]) if len(node.args) > 1 else None
                if body:
                    self.found += scan_cell(self.cell, body, self.aliases, self.assigned | _bound(_parse(body) or ast.Module([], [])))
        elif name.endswith(("get_ipython().system", "get_ipython().getoutput")):
            self.flag(node, "runs a shell command (`!`): what it does cannot be read here")
        elif name in {"os.kill", "os.killpg", "signal.pthread_kill", "os.system"}:
            self.flag(node, f"calls `{name}` (signals or commands outside the notebook)")
        elif name in {"types.FunctionType", "types.CodeType", "types.CellType", "types.ModuleType"}:
            self.flag(node, f"builds `{name}` objects (replacement code or modules)")
        elif short == "register" and name.endswith("events.register"):
            self.flag(node, "registers an IPython event hook")
        elif short == "open" and node.args:
            path = _constant_text(node.args[0]) or ""
            mode = _constant_text(node.args[1]) if len(node.args) > 1 else "r"
            if any(w in (mode or "") for w in "wax+") and any(s in path for s in ("raycourse", "site-packages", ".venv")):
                self.flag(node, f"writes to `{path}` (the course's own files)")
        self.generic_visit(node)


def _parse(source: str) -> ast.AST | None:
    try:
        return ast.parse(_ipython_to_python(source))
    except (SyntaxError, ValueError):
        return None  # it cannot run, so it cannot tamper


def _bound(tree: ast.AST) -> set[str]:
    """Names a cell binds (assignments, loop targets, function and class names, imports' local names)."""
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return names | {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}


def scan_cell(number: int, source: str, aliases: dict[str, str] | None = None,
              assigned: set[str] | None = None) -> list[Finding]:
    """Findings in one learner cell (``aliases`` carries ``import x as y`` across cells)."""
    tree = _parse(source)
    if tree is None:
        return []
    scanner = _Scanner(number, aliases if aliases is not None else {}, assigned if assigned is not None else _bound(tree))
    scanner.visit(tree)
    return scanner.found


def scan(cells: Iterable[tuple[int, str]]) -> list[Finding]:
    """Findings in the learner's cells, given as (cell number, source), in notebook order."""
    cells = list(cells)
    assigned = set().union(*[_bound(tree) for _, source in cells if (tree := _parse(source)) is not None])
    aliases: dict[str, str] = {}
    found: list[Finding] = []
    for number, source in cells:
        found += scan_cell(number, source, aliases, assigned)
    return found


def summary(findings: list[Finding], limit: int = 6) -> str:
    """``"cell 4, line 2: replaces `ray.get` ...; and 2 more"`` for the report."""
    unique = list(dict.fromkeys(str(f) for f in findings))
    text = "; ".join(unique[:limit])
    return text + (f"; and {len(unique) - limit} more" if len(unique) > limit else "")
