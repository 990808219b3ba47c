"""Checks for lesson 06 (tree reduce): a general ``tree_reduce(refs, op)``.

The check calls the learner's function itself, several times, with inputs it
draws now: random counts (an odd one, an even one that is no power of two, 2
and 1), random letters as values, and inputs that become ready in an order it
chooses (each waits for the one before it in that order, so no machine load can
change it). Its ``op`` concatenates strings: associative, not commutative.

Everything is judged from the driver's journal, not from timings: every
``op.remote`` records which refs it received, so the check rebuilds the exact
tree (who combines whom). From that tree: every input used once (the odd
leftover carried over, not dropped), n - 1 calls, the inputs in their positions
(left operand first), the depth (a balanced tree needs ceil(log2 n) levels, a
chain n - 1), and no ``ray.get``/``ray.wait`` before the last ``op`` was
submitted (no waiting between levels). The returned value must be what
``ray.get`` fetched for the root of that tree.
"""
from __future__ import annotations

import dis
import math
import random
import string
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import plots, timing
from ..grading import Incorrect, NotAttempted, exercise
from ..record import Fetch, Submission, Wait
from .evidence import Run, call_keeping_run, holds_ref, is_ref, learner_error, parallel_without_ray, plural, run_of, short

OP_SECONDS = 0.1  # each combine sleeps this long, so a timeline of the learner's tree shows its levels
GATE_SECONDS = 0.3  # the first input is ready only after this: the learner's code is waiting by then
STEP_SECONDS = 0.05  # then one input after another, in the order the check chose
CALL_TIMEOUT = 120.0  # seconds a call of the learner's function may take

# The lesson's starter, as learners find it: untouched, it is "not attempted"; any other driver-side code is wrong.
STARTER = '''
def tree_reduce(refs, op):
    # In the notebook, one value after another, and op is never used.
    values = ray.get(refs)
    result = values[0]
    for value in values[1:]:
        result = result + value
    return result
'''

_remote: dict[str, Any] = {}


def _leaf(token: str, after: Any) -> str:
    """One input: ready after the input before it (``after``, already resolved by Ray) and a short pause."""
    time.sleep(GATE_SECONDS if after is None else STEP_SECONDS)
    return token


def _concat(a: str, b: str) -> str:
    """The check's op: string concatenation, associative but not commutative."""
    time.sleep(OP_SECONDS)
    return a + b


def _tasks() -> tuple[Any, Any]:
    """The check's remote functions, made once per kernel: the learner's op calls are found by this object."""
    import ray

    if not _remote:
        _remote["leaf"] = ray.remote(_leaf)
        _remote["op"] = ray.remote(_concat)
    return _remote["leaf"], _remote["op"]


def _inputs(n: int) -> tuple[list[Any], str, list[int]]:
    """``n`` refs to random letters that become ready in a random order (not by position); the expected result."""
    leaf, _ = _tasks()
    tokens = random.sample(string.ascii_letters, n)
    order = list(range(n))
    while n > 1 and order[0] < order[1]:  # the first two ready are out of position: completion order shows
        random.shuffle(order)
    refs: list[Any] = [None] * n
    previous = None
    for position in order:
        refs[position] = previous = leaf.remote(tokens[position], previous)
    return refs, "".join(tokens), order


# --- the tree the learner built, rebuilt from the journal ---------------------------------------


@dataclass
class Tree:
    """The op calls of one ``tree_reduce`` call, as a graph over object ids."""

    n: int
    calls: list[Submission]
    leaves: dict[str, int]  # object id -> input position
    children: dict[str, list[str]] = field(default_factory=dict)  # op result -> the refs it combined
    values: int = 0  # arguments that were values, not refs
    foreign: int = 0  # refs that are neither an input nor an op result
    nested: int = 0  # refs inside a list

    @classmethod
    def of(cls, run: Run, op: Any, refs: list[Any]) -> "Tree":
        tree = cls(len(refs), run.submissions(op), {r.hex(): i for i, r in enumerate(refs)})
        made: set[str] = set()
        for submission in tree.calls:
            kids = []
            for summary in submission.args:
                if isinstance(summary, tuple) and summary and summary[0] == "ref":
                    kids.append(summary[1])
                    if summary[1] not in tree.leaves and summary[1] not in made:
                        tree.foreign += 1
                elif isinstance(summary, tuple) and summary and summary[0] in ("list", "tuple", "dict"):
                    tree.nested += 1
                else:
                    tree.values += 1
            if submission.object_ids:
                tree.children[submission.object_ids[0]] = kids
                made.add(submission.object_ids[0])
        return tree

    def uses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kids in self.children.values():
            for kid in kids:
                counts[kid] = counts.get(kid, 0) + 1
        return counts

    def roots(self) -> list[str]:
        used = self.uses()
        return [node for node in self.children if node not in used]

    def depth(self, node: str) -> int:
        kids = self.children.get(node)
        return 0 if not kids else 1 + max(self.depth(k) for k in kids)

    def positions(self, node: str) -> list[int]:
        """The inputs under ``node``, left to right."""
        if node in self.leaves:
            return [self.leaves[node]]
        return [p for kid in self.children.get(node, []) for p in self.positions(kid)]


def _is_starter(fn: Any) -> bool:
    """True if ``fn`` is the lesson's starter, whatever its formatting and comments (compared as bytecode)."""
    namespace: dict[str, Any] = {}
    exec(compile(STARTER, "<starter>", "exec"), namespace)

    def shape(code: Any) -> list[tuple[str, Any]]:
        return [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname not in ("RESUME", "CACHE", "NOP")]

    code = getattr(fn, "__code__", None)
    return code is not None and shape(code) == shape(namespace["tree_reduce"].__code__)


def _blocking(run: Run, before_seq: int) -> list[Fetch | Wait]:
    """``ray.get``/``ray.wait`` calls made before the last op was submitted (a zero-timeout poll does not wait)."""
    return [r for r in run.fetches() + run.waits()
            if r.seq < before_seq and not (isinstance(r, Wait) and r.timeout == 0)]


def _ideal(n: int, seconds: float) -> list[timing.Interval]:
    """The balanced tree's shape: n // 2 combines, then half as many, ... one row per combine of a level."""
    rows: list[list[tuple[float, float]]] = []
    width, level = n, 0
    while width > 1:
        pairs = width // 2
        for k in range(pairs):
            if k >= len(rows):
                rows.append([])
            rows[k].append((level * seconds, (level + 1) * seconds))
        width, level = pairs + width % 2, level + 1
    return plots.sketch(rows, name="op")


def _evidence(run: Run, op: Any, n: int) -> Any:
    spans = run.tasks(op, timeout=10)
    seconds = sorted(s.duration for s in spans)[len(spans) // 2] if spans else OP_SECONDS
    return plots.compare(spans, _ideal(n, seconds), expected_title=f"A balanced tree for {n} inputs")


def _count_hint(n: int, made: int, tree: "Tree") -> str:
    extra = " (op also combined a starting value of yours: start from the inputs themselves)" \
        if tree.values or tree.foreign else ""
    return (f"Reducing {n} inputs takes exactly {n - 1} op calls (each call turns two items into one), but "
            f"tree_reduce made {made}{extra}.")


BETWEEN = ("Calling ray.get (or ray.wait) between levels makes every level wait for its slowest input in the "
           "notebook. Pass the refs op.remote returns straight to the next level's op.remote, and ray.get only the "
           "final ref.")


def _judge_arguments(tree: Tree, waited: list[Fetch | Wait], n: int) -> None:
    """Raise if some op call received something other than two refs (an input, or what op returned)."""
    if not (tree.values or tree.foreign or tree.nested):
        return
    if waited:
        raise Incorrect(f"op received values fetched in the notebook (or put back with ray.put), not the refs op "
                        f"returned. {BETWEEN}")
    if tree.nested:
        raise Incorrect("op received refs inside a list: Ray resolves only refs passed directly as arguments. Call "
                        "op.remote(a, b) with two refs.")
    if len(tree.calls) != n - 1:
        raise Incorrect(_count_hint(n, len(tree.calls), tree))
    raise Incorrect("op received values (or refs made elsewhere), not the refs tree_reduce was given and the refs "
                    "op.remote returned. Pass refs, and ray.get only the final ref.")


def _judge_error(error: BaseException, what: str, n: int, run: Run, op: Any, refs: list[Any]) -> None:
    """Turn an exception from the learner's code into the hint for its cause."""
    if isinstance(error, IndexError):
        raise Incorrect(f"`{what}` raised IndexError: a level with an odd number of items has no partner for its "
                        "last item. Carry that item over to the next level unchanged (any count must work, not "
                        "only powers of two).")
    calls = run.submissions(op)
    if calls:
        _judge_arguments(Tree.of(run, op, refs), _blocking(run, max(c.seq for c in calls)), n)
    raise Incorrect(learner_error(what, error))


def _judge_call(tree_reduce: Callable[..., Any], n: int, source: str) -> int:
    """Call ``tree_reduce`` on ``n`` fresh inputs and judge that one call; returns the tree's depth."""
    _, op = _tasks()
    refs, expected, order = _inputs(n)
    what = f"tree_reduce(<{plural(n, 'input')}>, op)"
    value, error, run = call_keeping_run(tree_reduce, refs, op, what=what, timeout=CALL_TIMEOUT)
    calls = run.submissions(op)
    if error is not None:
        _judge_error(error, what, n, run, op, refs)
    if is_ref(value) or holds_ref(value):
        raise Incorrect("tree_reduce returned an ObjectRef: return the value, ray.get of the final ref.")
    if n == 1:
        if calls:
            raise Incorrect(f"With a single input, tree_reduce called op {plural(len(calls), 'time')}: there is "
                            "nothing to combine, so return that input's value.")
        if value != expected:
            raise Incorrect(f"With a single input tree_reduce returned {short(value)}, not its value "
                            f"{expected!r}: return ray.get(refs[0]).")
        return 0
    if not calls:
        others = run.submissions()
        if others:
            raise Incorrect(f"tree_reduce submitted {plural(len(others), 'task')} of `{others[0].name}`, not of the "
                            "`op` it was given. Call op.remote(a, b): the check passes in an op of its own.")
        if _is_starter(tree_reduce):
            raise NotAttempted("tree_reduce is still the starter: it fetches every value and adds them up in the "
                               "notebook. Call op.remote(a, b) on pairs of refs, level by level.")
        elsewhere = parallel_without_ray(source)
        how = f" (with {elsewhere})" if elsewhere else ""
        raise Incorrect(f"tree_reduce never called op.remote: it combined the values in the notebook{how}. Pass "
                        "pairs of refs to op.remote(a, b), level by level, and ray.get only the final ref.")
    tree = Tree.of(run, op, refs)
    waited = _blocking(run, max(c.seq for c in calls))
    _judge_arguments(tree, waited, n)
    uses = tree.uses()
    dropped = [p for oid, p in tree.leaves.items() if oid not in uses]
    if dropped:
        odd = " With an odd number of items, carry the last one over to the next level; do not drop it." \
            if n % 2 or len(dropped) == 1 else ""
        raise Incorrect(f"With {n} inputs, {plural(len(dropped), 'input')} never reached op (position "
                        f"{short(sorted(dropped), 40)}): every input must be combined exactly once.{odd}")
    twice = [p for oid, p in tree.leaves.items() if uses.get(oid, 0) > 1]
    if twice:
        raise Incorrect(f"With {n} inputs, input {short(sorted(twice), 40)} went into op more than once: combine "
                        "each input exactly once.")
    if len(calls) != n - 1:
        raise Incorrect(_count_hint(n, len(calls), tree))
    roots = tree.roots()
    if len(roots) != 1 or any(len(k) != 2 for k in tree.children.values()):
        raise Incorrect("Some op results were never combined further: keep combining until one ref is left, and "
                        "return the value of that one.")
    root = roots[0]
    if tree.positions(root) != list(range(n)):
        if run.waits():
            raise Incorrect(f"The inputs were combined out of order: with op = string concatenation the result "
                            f"would be {_spelled(tree, root, expected)!r}, not {expected!r}. Pairing whatever "
                            "ray.wait returns first follows the order the inputs finish; op is associative but not "
                            "commutative, so pair neighbours by position (0 with 1, 2 with 3, ...).")
        raise Incorrect(f"The operands are in the wrong order: with op = string concatenation the result would be "
                        f"{_spelled(tree, root, expected)!r}, not {expected!r}. Pair neighbours by position, "
                        "the left one first: op.remote(level[i], level[i + 1]).")
    depth, best = tree.depth(root), math.ceil(math.log2(n))
    if depth > best:
        if depth == n - 1:
            raise Incorrect(f"Your reduction is a serial chain: {n} inputs took {depth} levels, each op waiting for "
                            f"the one before. Combine pairs side by side, level by level: {best} levels.",
                            evidence=_evidence(run, op, n))
        raise Incorrect(f"Your tree is {depth} levels deep for {n} inputs; a balanced tree needs {best}. Pair "
                        "neighbours at every level.", evidence=_evidence(run, op, n))
    if waited:
        how = "ray.get" if isinstance(waited[0], Fetch) else "ray.wait"
        raise Incorrect(f"tree_reduce waited ({how}) before it had submitted its last op. {BETWEEN}",
                        evidence=_evidence(run, op, n))
    root_task = next(c.task_ids[0] for c in calls if c.object_ids and c.object_ids[0] == root)
    fetched = run.fetched([root_task])
    if root_task not in fetched:
        raise Incorrect("tree_reduce did not return what the last op call returned: return ray.get(final_ref).")
    if value != fetched[root_task] or value != expected:
        raise Incorrect(f"tree_reduce returned {short(value)}, but the last op call returned "
                        f"{short(fetched[root_task])}: return ray.get(final_ref) unchanged.")
    return depth


def _spelled(tree: Tree, root: str, expected: str) -> str:
    """What the learner's tree would have made of the expected letters."""
    return "".join(expected[p] for p in tree.positions(root))


def _counts() -> list[int]:
    """The input counts of one check: an odd one, an even one that is no power of two, then 2 and 1."""
    return [random.choice([5, 7, 9, 11, 13]), random.choice([6, 10, 12, 14]), 2, 1]


@exercise("06.tree_reduce", "Reduce any number of inputs with a balanced tree of tasks")
def tree_reduce_check(tree_reduce: Any) -> str:
    """Calls ``tree_reduce`` on fresh inputs of several sizes; judges the tree each call built, from the journal."""
    if not callable(tree_reduce):
        raise Incorrect("`tree_reduce` should be a function taking (refs, op).")
    source = run_of("tree_reduce").source
    counts = _counts()
    depths = [_judge_call(tree_reduce, n, source) for n in counts]
    shown = ", ".join(f"{n} inputs in {d} level{'s' if d != 1 else ''}" for n, d in zip(counts, depths) if n > 1)
    return (f"Balanced trees, in order, with no wait between levels: {shown}; a single input came back as it was. "
            "Each call's inputs were combined by position, exactly once.")
