"""Checks for lesson 01 (tasks): parallel calls and pi in blocks (samples for a precision and the crossing point
are in ``lesson01_precision`` and ``lesson01_crossing``).

Evidence is structural, never a wall-clock window: the journal of the cell (or
of the check's own call of the learner's function) says which tasks were
submitted with which arguments, what ``ray.get`` returned for which task, and
whether the driver waited before everything was submitted. Values are tied to
those fetches (provenance), sizes and seeds to those arguments. The statistics
of random points are judged with six-sigma bounds, so a correct answer never
fails by chance.
"""
from __future__ import annotations

import ast
import math
import random
from typing import Any, Callable, Sequence

from .. import plots, timing
from ..grading import Incorrect, NotAttempted, exercise
from ..lessons import montecarlo
from ..record import Submission, refs_in
from .evidence import (args_of, call, concurrency_allowed, cpu_slots, expect_values, holds_ref, is_remote_function,
                       number, parallel_without_ray, plural, run_of, same_values)
from .evidence import is_ref as is_object_ref
from .submitted import ids_of, keyed, real, require_parallel, whole, work_of


# --- 01.parallel_calls ---------------------------------------------------------------------------


@exercise("01.parallel_calls", "Run four one-second calls of slow_function in parallel")
def parallel_calls(results: Any, slow_function: Any) -> str:
    """Structure from the journal (all four submitted before the first wait), values from what ray.get returned."""
    run = run_of("results")
    elsewhere = parallel_without_ray(run.source)
    if not is_remote_function(slow_function):
        if elsewhere:
            raise Incorrect(f"You ran the calls in parallel with {elsewhere} in the notebook's own process. This "
                            "exercise is about Ray: decorate slow_function with @ray.remote and submit it with .remote().")
        if same_values(results, [0, 1, 2, 3]):
            raise NotAttempted("`slow_function` still runs in the notebook, one call after another. Decorate it with "
                               "@ray.remote, submit all four calls with .remote(), then ray.get the list once.")
        raise Incorrect("`slow_function` is a plain Python function: decorate it with @ray.remote.")
    if holds_ref(results):
        raise Incorrect("`results` holds ObjectRefs (futures), not values: call ray.get once, on the list of refs.")
    values = expect_values(results, [0, 1, 2, 3])
    fetched = run.fetched_from(slow_function)
    if not fetched:
        if run.submissions(slow_function):
            raise Incorrect("The cell submitted slow_function tasks but never fetched their results with ray.get: "
                            "`results` was computed in the notebook. Set results = ray.get(list_of_refs).")
        raise Incorrect("No slow_function task ran in the cell that set `results`: the values were computed in the "
                        "notebook. Submit slow_function.remote(i) for each i and ray.get the refs.")
    if len(fetched) != 4 or sorted(args_of(s)[0] for s, _ in fetched if args_of(s)) != [0, 1, 2, 3]:
        raise Incorrect(f"`results` came from {len(fetched)} slow_function task(s); submit exactly one per i in "
                        "range(4) and fetch all four.")
    if [v for _, v in sorted(fetched, key=lambda sv: args_of(sv[0])[0])] != values:
        raise Incorrect("`results` does not hold what the tasks returned, in order: keep the list ray.get gives you.")
    task_ids = [t for s, _ in fetched for t in s.task_ids]
    waited = run.blocking_before(task_ids)
    spans = run.tasks(slow_function)
    if waited:
        raise Incorrect(
            "The cell waited for results (a ray.get inside the loop) before it had submitted all four tasks, so they "
            "could not all run at once. First submit all four with .remote(), then call ray.get once on the list.",
            evidence=plots.compare([s for s in spans if s.task_id in task_ids], _ideal(spans)))
    cpus = max([dict(s.resources).get("CPU", 1.0) for s in spans] + [1.0])
    if concurrency_allowed(4, cpus) < concurrency_allowed(4):  # the reservation, not the cluster's size, limits it
        raise Incorrect(f"Each slow_function task reserves {cpus:g} CPUs, so only {concurrency_allowed(4, cpus)} fit "
                        f"at once on {cpu_slots()} CPUs. A task that sleeps needs one CPU: drop num_cpus.")
    overlapped = timing.max_concurrency([s for s in spans if s.task_id in task_ids])
    return (f"All four tasks were submitted before the first ray.get, and Ray ran up to {overlapped} of them at the "
            "same time; `results` holds what they returned.")


def _ideal(spans: list[timing.Interval]) -> list[timing.Interval]:
    """Four one-second tasks side by side: the shape the exercise asks for."""
    return plots.sketch([[(0.0, 1.0)] for _ in range(4)], name="slow_function")


# --- 01.pi_blocks --------------------------------------------------------------------------------

_STARTER_PI = "def estimate_pi_parallel(num_samples, block_size):\n    return montecarlo.estimate_pi(num_samples)\n"


def _is_pi_starter(source: str) -> bool:
    """The cell still defines ``estimate_pi_parallel`` as the starter does (comments and spacing aside)."""
    def body(text: str) -> str | None:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return None
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "estimate_pi_parallel":
                return ast.dump(ast.Module(body=[s for s in node.body if not (
                    isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))], type_ignores=[]))
        return None

    mine = body(source)
    return mine is not None and mine == body(_STARTER_PI)


def _pi_inputs() -> list[tuple[int, int]]:
    """Three (num_samples, block_size) pairs chosen now: uneven blocks, even blocks, and N smaller than a block."""
    pick = random.SystemRandom()
    block = pick.randrange(40_000, 120_000)
    uneven = block * pick.randint(3, 5) + pick.randrange(block // 5, 4 * block // 5)
    block2 = pick.randrange(40_000, 120_000)
    block3 = pick.randrange(60_000, 150_000)
    return [(uneven, block), (block2 * pick.randint(3, 5), block2), (pick.randrange(block3 // 4, 3 * block3 // 4), block3)]


def _block_sizes(num_samples: int, block_size: int) -> list[int]:
    return [min(block_size, num_samples - start) for start in range(0, num_samples, block_size)]


def _pi_without_tasks(value: Any, source: str, what: str) -> None:
    """Raise the verdict for a call that started no Ray task at all."""
    kind = parallel_without_ray(source)
    if kind:
        raise Incorrect(f"`{what}` ran no Ray task: you used {kind} in the notebook's own process. Submit one Ray "
                        "task per block with .remote() instead.")
    if real(value) and abs(value - math.pi) < 1e-12:
        raise Incorrect("estimate_pi_parallel returns pi itself without running any Ray task: estimate it from the "
                        "counts of the blocks' tasks.")
    if _is_pi_starter(source):
        raise NotAttempted("estimate_pi_parallel is still the serial starter (all points at once, in the notebook). "
                           "Submit one Ray task per block and combine their counts.")
    raise Incorrect(f"`{what}` ran no Ray task: the blocks were counted in the notebook. Submit one task per block "
                    "with .remote() and ray.get their counts.")


def _sizes_from_arguments(blocks: Sequence[Submission], expected: list[int]) -> tuple[Any, list[int] | None]:
    """The argument that holds each block's size, and the sizes in submission order (None, None if none does)."""
    rows = [keyed(s) for s in blocks]
    common = set(rows[0]).intersection(*rows[1:]) if rows else set()
    for key in sorted(common, key=str):
        values = [k[key] for k in rows]
        if all(whole(v) for v in values) and sorted(values) == sorted(expected):
            return key, values
    return None, None


def _judge_sizes(blocks: Sequence[Submission], num_samples: int, block_size: int, what: str) -> tuple[Any, list[int] | None]:
    expected = _block_sizes(num_samples, block_size)
    key, sizes = _sizes_from_arguments(blocks, expected)
    if sizes is not None:
        return key, sizes
    rows = [keyed(s) for s in blocks]
    for k in set(rows[0]).intersection(*rows[1:]):
        values = [row[k] for row in rows]
        if not all(whole(v) for v in values):
            continue
        if all(v == num_samples for v in values) and len(values) > 1:
            raise Incorrect(f"In `{what}` every block task drew all {number(num_samples)} points: give each block "
                            "its own size (block_size, the last one the remainder), so memory per task stays fixed.")
        if all(v == block_size for v in values) and expected[-1] != block_size:
            raise Incorrect(f"In `{what}` every block drew {number(block_size)} points, the last one too, so "
                            f"{number(len(values) * block_size)} points were drawn instead of {number(num_samples)}. "
                            f"The last block should draw only the remaining {number(expected[-1])}.")
    return None, None  # sizes not passed as an argument: the counts tell (below)


def _seed_keys(blocks: Sequence[Submission], size_key: Any, num_samples: int, block_size: int) -> list[Any]:
    rows = [keyed(s) for s in blocks]
    common = set(rows[0]).intersection(*rows[1:]) if rows else set()
    return [k for k in common if k != size_key and all(whole(row[k]) for row in rows)
            and not all(row[k] in (num_samples, block_size) for row in rows)]


def _counts(values: list[Any], sizes: list[int]) -> list[float] | None:
    """Points inside per block, from what the blocks returned: counts, fractions or estimates (None if unreadable)."""
    counts = []
    for value, size in zip(values, sizes):
        if not real(value):
            return None
        if float(value).is_integer() and value > 4:
            counts.append(float(value))
        elif 0 <= value <= 1:
            counts.append(value * size)
        elif value <= 4:
            counts.append(value * size / 4)
        else:
            counts.append(float(value))
    return counts


def _pi_provenance(value: float, counts: list[float], sizes: list[int], num_samples: int, block_size: int,
                   what: str) -> None:
    expected = 4 * sum(counts) / num_samples
    if math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
        return
    guesses = [
        (sum(4 * c / n for c, n in zip(counts, sizes)) / len(sizes),
         "the plain mean of the blocks' estimates, but the last block is smaller, so it must count less. Add the "
         "counts and divide by num_samples (or weight each block's estimate by its size)"),
        (4 * sum(counts) / (len(sizes) * block_size),
         "divided by blocks × block_size, but the last block is smaller: divide the total count by num_samples"),
        (4 * sum(counts) / block_size, "divided by block_size: divide the total count by num_samples"),
        (sum(counts) / num_samples, "forgot the factor 4: pi ≈ 4 × (points inside) / (all points)"),
    ]
    for guess, mistake in guesses:
        if math.isclose(value, guess, rel_tol=1e-9):
            raise Incorrect(f"`{what}` returned {value:.6f}: you {mistake}.")
    raise Incorrect(f"`{what}` returned {value:.6f}, but the counts your block tasks returned give "
                    f"4 × {number(sum(counts))} / {number(num_samples)} = {expected:.6f}. Compute the estimate from "
                    "the values ray.get returned, not in the notebook.")


def _one_pi_call(fn: Callable[..., Any], num_samples: int, block_size: int, source: str) -> int:
    """Call the learner's function once on these inputs and judge what it did; return the number of blocks."""
    what = f"estimate_pi_parallel({number(num_samples)}, {number(block_size)})"
    value, run = call(fn, num_samples, block_size, what=what, timeout=90)
    work = work_of(run)
    if not work:
        _pi_without_tasks(value, source, what)
    if is_object_ref(value) or holds_ref(value):
        raise Incorrect("estimate_pi_parallel returned an ObjectRef: ray.get the block counts, then combine them "
                        "into one number.")
    if hasattr(value, "dtype") and getattr(value, "shape", None) == ():
        value = value.item()  # a numpy number
    if not real(value):
        raise Incorrect(f"estimate_pi_parallel should return a number, got {type(value).__name__}.")
    value = float(value)
    combines = [s for s in work if any(refs_in(a) for a in s.args)]  # tasks that add up the blocks' refs
    blocks = [s for s in work if s not in combines]
    expected = _block_sizes(num_samples, block_size)
    if len(blocks) == 1 and len(expected) > 1:
        raise Incorrect(f"For `{what}` one task drew all {number(num_samples)} points, so its memory grows with N. "
                        f"Split the work into {len(expected)} blocks of at most block_size points.")
    if len(blocks) != len(expected):
        raise Incorrect(f"For `{what}` expected {plural(len(expected), 'block')} (math.ceil(num_samples / "
                        f"block_size), the last one {number(expected[-1])} points), but your function started "
                        f"{plural(len(blocks), 'task')}.")
    size_key, sizes = _judge_sizes(blocks, num_samples, block_size, what)
    rows = [keyed(s) for s in blocks]
    for key in _seed_keys(blocks, size_key, num_samples, block_size):
        seeds = [row[key] for row in rows]
        if len(set(seeds)) < len(seeds):
            same = "the same seed" if len(set(seeds)) == 1 else "repeated seeds"
            raise Incorrect(f"In `{what}` the blocks were submitted with {same} ({', '.join(map(str, seeds))}), so "
                            "they draw the same points and count the same darts twice. Give every block its own seed.")
    require_parallel(run, blocks, "block tasks",
                      "Submit every block first (a list of refs), then ray.get the list once.")
    block_ids = ids_of(blocks)
    fetched = run.fetched(block_ids)
    if len(fetched) < len(block_ids):
        combined = run.fetched(ids_of(combines))
        if combines and len(combined) == 1 and real(next(iter(combined.values()))):
            total = next(iter(combined.values()))
            _pi_provenance(value, _counts([total], [num_samples]) or [], [num_samples], num_samples, block_size, what)
            return len(blocks)
        raise Incorrect(f"In `{what}` your function never fetched the counts of "
                        f"{plural(len(block_ids) - len(fetched), 'block task')}: ray.get every block's result and "
                        "build the estimate from those values.")
    values = [fetched[t] for t in block_ids]
    if sizes is None:  # the sizes are not an argument: read them from the counts (largest count, largest block)
        order = sorted(range(len(values)), key=lambda i: values[i] if real(values[i]) else 0)
        sizes = [0] * len(values)
        for i, size in zip(order, sorted(expected)):
            sizes[i] = size
    counts = _counts(values, sizes)
    if counts is None:
        raise Incorrect(f"In `{what}` the block tasks returned {type(values[0]).__name__} values: each block should "
                        "return its count of points inside (a number), so only numbers travel back to the notebook.")
    for count, size in zip(counts, sizes):
        if not montecarlo.plausible_count(round(count), size):
            raise Incorrect(f"In `{what}` a block of {number(size)} points reported {number(count)} inside, which "
                            f"{number(size)} random points cannot give: does each block draw exactly its own number "
                            "of points (block_size, the last one the remainder)?")
    full = [c for c, n in zip(counts, sizes) if n == block_size]
    if len(full) >= 3 and len(set(full)) == 1:
        raise Incorrect(f"In `{what}` all {len(full)} full blocks counted exactly {number(full[0])} points inside: "
                        "they draw the same points. Pass each block its own seed (and use it), or no seed at all.")
    _pi_provenance(value, counts, sizes, num_samples, block_size, what)
    return len(blocks)


@exercise("01.pi_blocks", "Estimate pi in fixed-size blocks, in parallel")
def pi_blocks(estimate_pi_parallel: Callable[[int, int], Any]) -> str:
    """Calls the learner's function on three inputs chosen now and reads the tasks each call started."""
    if not callable(estimate_pi_parallel):
        raise Incorrect("`estimate_pi_parallel` should be a function taking (num_samples, block_size).")
    source = run_of("estimate_pi_parallel").source
    inputs = _pi_inputs()
    blocks = [_one_pi_call(estimate_pi_parallel, n, b, source) for n, b in inputs]
    (n1, b1), (n2, b2), (n3, b3) = inputs
    return (f"Three calls with sizes chosen just now ({number(n1)} in blocks of {number(b1)}, {number(n2)} in blocks "
            f"of {number(b2)}, {number(n3)} in one block of {number(b3)}) ran {blocks[0]}, {blocks[1]} and "
            f"{blocks[2]} parallel block tasks, each with its own seed and size, and returned 4 × (their counts) / N.")
