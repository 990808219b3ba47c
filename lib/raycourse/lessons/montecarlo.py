"""Monte Carlo estimates of pi, the running example of lesson 01, and the lesson's pictures.

Throw points uniformly into the unit square; the fraction inside the quarter
circle tends to pi/4. Memory grows with the number of points thrown at once,
which is why lesson 01 splits large estimates into fixed-size blocks.

The pictures keep the lesson's cells to one line and never mislead: each shows
the "Nothing to draw yet" placeholder until the exercise it depends on has run
Ray tasks. :func:`darts` animates points computed by Ray tasks in the browser
alone (a timer in BokehJS, started when the page is ready): no kernel
connection and no internet needed, so it works offline and in a static export.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np

P_INSIDE = math.pi / 4  # the chance that a random point of the unit square lies in the quarter circle
INSIDE, OUTSIDE = "#0072B2", "#D55E00"  # Okabe-Ito blue and vermillion: told apart with any colour vision
SPEED_SIZES = (250_000, 1_000_000, 4_000_000, 16_000_000)


def count_inside(num_samples: int, seed: int | None = None) -> int:
    """How many of ``num_samples`` random points in the unit square fall inside the quarter circle."""
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    rng = np.random.default_rng(seed)
    xy = rng.random((num_samples, 2))
    return int(np.count_nonzero((xy * xy).sum(axis=1) <= 1.0))


def estimate_pi(num_samples: int, seed: int | None = None) -> float:
    """Estimate pi from ``num_samples`` points, all drawn at once (memory grows with N)."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    return 4.0 * count_inside(num_samples, seed) / num_samples


def standard_error(num_samples: int) -> float:
    """One standard deviation of the estimate: 4 * sqrt(p (1 - p) / N) with p = pi / 4."""
    p = np.pi / 4
    return float(4 * np.sqrt(p * (1 - p) / num_samples))


def throw_darts(num_darts: int, seed: int | None = None) -> np.ndarray:
    """``num_darts`` random points of the unit square, as an array of shape (num_darts, 2): the darts to draw."""
    if num_darts < 1:
        raise ValueError(f"num_darts must be >= 1, got {num_darts}")
    return np.random.default_rng(seed).random((num_darts, 2))


# --- the animated darts --------------------------------------------------------------------------

_ANIMATE = """
const tick = 50, frames = Math.max(1, Math.round(seconds * 1000 / tick)), hold = Math.round(2000 / tick);
let frame = 0, rounds = 0;
function draw(f) {
  for (let s = 0; s < sources.length; s++) {
    const total = xs[s].length, n = Math.min(total, Math.ceil(total * f / frames));
    sources[s].data = {x: xs[s].slice(0, n), y: ys[s].slice(0, n), where: wheres[s].slice(0, n)};
    titles[s].text = n ? `${names[s]}: pi ≈ ${(4 * hits[s][n] / n).toFixed(4)} (${n.toLocaleString("en-US")} darts)`
                       : `${names[s]}: the first darts are on their way`;
  }
}
const timer = setInterval(() => {
  frame += 1;
  if (frame > frames + hold) {
    frame = 0;
    rounds += 1;
    if (rounds >= max_rounds) { clearInterval(timer); draw(frames); return; }
  }
  draw(Math.min(frame, frames));
}, tick);
"""


def _points(simulation: Any, index: int) -> np.ndarray:
    points = np.asarray(simulation, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"simulation {index + 1} should be an array of (x, y) points of shape (n, 2), "
                         f"got shape {points.shape}")
    if points.min() < 0 or points.max() > 1:
        raise ValueError(f"simulation {index + 1} has points outside the unit square [0, 1] x [0, 1]")
    return points


def darts_figure(simulations: Sequence[Any], seconds: float = 8.0, max_rounds: int = 60) -> Any:
    """A row of squares, one per simulation, where the darts land one after another with a running estimate.

    The figure first holds every dart (what a static copy shows); when the page is
    ready a BokehJS timer empties it and lets the darts land over ``seconds``,
    holds the final picture two seconds, and starts again (``max_rounds`` times).
    """
    from bokeh.document import Document
    from bokeh.events import DocumentReady
    from bokeh.layouts import row
    from bokeh.models import ColumnDataSource, CustomJS
    from bokeh.plotting import figure
    from bokeh.transform import factor_cmap, factor_mark

    if not simulations:
        raise ValueError("darts needs at least one simulation (an array of points)")
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    arc = np.linspace(0, math.pi / 2, 60)
    figures, sources, xs, ys, wheres, hits, names = [], [], [], [], [], [], []
    for index, simulation in enumerate(simulations):
        points = _points(simulation, index)
        inside = (points * points).sum(axis=1) <= 1.0
        x, y = [round(float(v), 4) for v in points[:, 0]], [round(float(v), 4) for v in points[:, 1]]
        where = ["inside" if hit else "outside" for hit in inside]
        name = f"#{index + 1}"  # the title fits its 300-pixel square: "#1: pi ≈ 3.1416 (1,000 darts)"
        source = ColumnDataSource(dict(x=x, y=y, where=where))
        fig = figure(width=300, height=330, x_range=(0, 1), y_range=(0, 1), tools="", toolbar_location=None,
                     match_aspect=True, title=f"{name}: pi ≈ {4 * inside.mean():.4f} ({len(points):,} darts)")
        fig.line(np.cos(arc), np.sin(arc), color="#333333", line_width=2)
        legend = {"legend_field": "where"} if index == 0 else {}  # one legend is enough for the row
        fig.scatter("x", "y", source=source, size=5, alpha=0.8, **legend,
                    color=factor_cmap("where", [INSIDE, OUTSIDE], ["inside", "outside"]),
                    marker=factor_mark("where", ["circle", "triangle"], ["inside", "outside"]))
        if index == 0:
            fig.legend.location, fig.legend.background_fill_alpha = "bottom_left", 0.85
        fig.xaxis.ticker = fig.yaxis.ticker = [0, 0.5, 1]
        figures.append(fig)
        sources.append(source)
        xs.append(x)
        ys.append(y)
        wheres.append(where)
        hits.append([0] + np.cumsum(inside).tolist())
        names.append(name)
    layout = row(*figures)
    document = Document()  # the page-ready event belongs to a document, so the layout gets its own
    document.add_root(layout)
    document.js_on_event(DocumentReady, CustomJS(args=dict(
        sources=sources, titles=[f.title for f in figures], xs=xs, ys=ys, wheres=wheres, hits=hits, names=names,
        seconds=float(seconds), max_rounds=int(max_rounds)), code=_ANIMATE))
    return layout


def darts(simulations: Sequence[Any], seconds: float = 8.0) -> None:
    """Show :func:`darts_figure` in the notebook: the darts of each simulation landing, with pi estimated live."""
    _show_with_document(darts_figure(simulations, seconds))


def _show_with_document(layout: Any) -> None:
    """Show ``layout`` in the notebook together with its own document, whose page-ready event starts the timer.

    ``bokeh.io.show`` copies a figure into a new, bare document for the notebook and
    so drops document events; this is the same embedding (inline BokehJS, the
    notebook's own Bokeh output type) with the layout's document kept. Outside a
    notebook it does nothing: there is no page to animate.
    """
    from bokeh.core.json_encoder import serialize_json
    from bokeh.core.templates import DOC_NB_JS
    from bokeh.embed.elements import div_for_render_item
    from bokeh.embed.util import OutputDocumentFor, standalone_docs_json_and_render_items
    from bokeh.io.notebook import EXEC_MIME_TYPE, HTML_MIME_TYPE, JS_MIME_TYPE, publish_display_data

    from .. import plots

    if not plots._in_notebook():
        return
    plots.load_inline()
    with OutputDocumentFor([layout]):
        docs_json, [item] = standalone_docs_json_and_render_items([layout])
    script = DOC_NB_JS.render(docs_json=serialize_json(docs_json), render_items=serialize_json([item.to_json()]))
    publish_display_data({HTML_MIME_TYPE: div_for_render_item(item)})
    publish_display_data({JS_MIME_TYPE: script, EXEC_MIME_TYPE: ""}, metadata={EXEC_MIME_TYPE: {"id": layout.id}})


# --- measurements the lesson draws ---------------------------------------------------------------

_SERIAL: dict[tuple[int, ...], tuple[list[float], int]] = {}


def _ran_ray_tasks(function: Callable[..., Any], *args: Any) -> tuple[Any, bool]:
    """Call ``function(*args)``; return its value and whether it submitted any Ray task (from the journal)."""
    from .. import record

    with record.scope() as number:
        value = function(*args)
    return value, any(isinstance(r, record.Submission) for r in record.JOURNAL.in_cell(number))


def speed_figure(estimate_pi_parallel: Callable[[int, int], Any], sizes: Sequence[int] = SPEED_SIZES,
                 block_size: int = 1_000_000) -> Any:
    """Time the all-at-once serial estimate against ``estimate_pi_parallel(n, block_size)`` for each n; chart it.

    The placeholder instead, while ``estimate_pi_parallel`` runs no Ray task (the starter).
    """
    from .. import plots

    title = "Time to estimate pi"
    _, ran = _ran_ray_tasks(estimate_pi_parallel, 10_000, 5_000)
    if not ran:
        return plots.nothing_yet(title, "Nothing to compare yet: estimate_pi_parallel ran no Ray task. Solve "
                                 "exercise 01.pi_blocks, then run this cell again.")
    serial, parallel = [], []
    for n in sizes:
        started = time.perf_counter()
        estimate_pi(n)
        serial.append(time.perf_counter() - started)
        started = time.perf_counter()
        _ran_ray_tasks(estimate_pi_parallel, n, block_size)
        parallel.append(time.perf_counter() - started)
    return plots.lines(list(sizes), {"all at once, serial": serial, f"blocks of {block_size:,}, Ray": parallel},
                       title=title, x_label="N (points)", y_label="seconds", log_x=True, log_y=True, show=False)


def time_to_estimate(estimate_pi_parallel: Callable[[int, int], Any], sizes: Sequence[int] = SPEED_SIZES,
                     block_size: int = 1_000_000) -> None:
    """Show :func:`speed_figure`: serial all-at-once against your parallel blocks, as N grows."""
    from .. import plots

    plots.show(speed_figure(estimate_pi_parallel, sizes, block_size))


def time_serial(sizes: Sequence[int], calls: int = 8) -> list[float]:
    """Seconds taken by ``calls`` serial calls of ``count_inside(size)`` in this process, for each size.

    The measurement is remembered, so a check can tell these times from times typed or changed later.
    """
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1 or calls < 1:
        raise ValueError("time_serial needs positive sizes and at least one call per size")
    times = []
    for size in sizes:
        started = time.perf_counter()
        for _ in range(calls):
            count_inside(size)
        times.append(time.perf_counter() - started)
    _SERIAL[tuple(sizes)] = (list(times), calls)
    return times


def serial_measurement(sizes: Sequence[int]) -> tuple[list[float], int] | None:
    """What the latest :func:`time_serial` of these sizes measured (times, calls per size), or None."""
    try:
        return _SERIAL.get(tuple(int(s) for s in sizes))
    except (TypeError, ValueError):
        return None


def _numbers(values: Any) -> list[float] | None:
    """``values`` as a list of finite floats, or None if it is not one (refs, None, text, an empty list)."""
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return numbers if numbers and all(math.isfinite(v) for v in numbers) else None


def overhead_figure(sizes: Sequence[int], serial_times: Sequence[float], ray_times: Sequence[float]) -> Any:
    """Serial calls against Ray tasks, per task size; the placeholder until ``ray_times`` holds one time per size."""
    from .. import plots

    title = "Eight count_inside calls of each size: serial against Ray"
    ray = _numbers(ray_times)
    serial = _numbers(serial_times)
    if ray is None or serial is None or not (len(ray) == len(serial) == len(sizes)):
        return plots.nothing_yet(title, "Nothing to draw yet: `ray_times` needs one time per size "
                                 "(exercise 01.crossing_point).")
    return plots.lines(list(sizes), {"serial, in this process": serial, "Ray tasks": ray}, title=title,
                       x_label="points per call", y_label="seconds for eight calls", log_x=True, log_y=True, show=False)


def overhead_chart(sizes: Sequence[int], serial_times: Sequence[float], ray_times: Sequence[float]) -> None:
    """Show :func:`overhead_figure`."""
    from .. import plots

    plots.show(overhead_figure(sizes, serial_times, ray_times))


def spread_figure(estimates: Sequence[float], precision: float) -> Any:
    """A histogram of independent estimates of pi, with pi and one standard error (``precision``) either side."""
    from bokeh.models import BoxAnnotation, Span
    from bokeh.plotting import figure

    from .. import plots

    values = _numbers(estimates)
    if values is None or len(values) < 2:
        return plots.nothing_yet("Estimates of pi at that N", "Nothing to draw yet: `estimates` needs the trials' "
                                 "estimates (exercise 01.precision).")
    spread = float(np.std(values, ddof=1))
    counts, edges = np.histogram(values, bins=min(12, max(4, len(values) // 3)))
    fig = figure(width=640, height=320, x_axis_label="estimate of pi", y_axis_label="trials", tools="save",
                 title=f"{len(values)} trials: spread (standard deviation) {spread:.5f}, target {precision:.5f}")
    fig.add_layout(BoxAnnotation(left=math.pi - precision, right=math.pi + precision, fill_color=INSIDE,
                                 fill_alpha=0.12))
    fig.quad(top=counts, bottom=0, left=edges[:-1], right=edges[1:], fill_color=INSIDE, line_color="white",
             fill_alpha=0.8)
    fig.add_layout(Span(location=math.pi, dimension="height", line_color=OUTSIDE, line_width=2, line_dash="dashed"))
    low, high = min(values + [math.pi - 2 * precision]), max(values + [math.pi + 2 * precision])
    fig.x_range.start, fig.x_range.end = low - 0.1 * (high - low), high + 0.1 * (high - low)
    fig.y_range.start = 0
    return fig


def spread_chart(estimates: Sequence[float], precision: float) -> None:
    """Show :func:`spread_figure`: does the trials' spread match the precision you asked for?"""
    from .. import plots

    plots.show(spread_figure(estimates, precision))


def plausible_count(count: Any, num_darts: int) -> bool:
    """Could ``num_darts`` random darts put ``count`` inside? (A whole number, within six standard deviations.)"""
    if isinstance(count, bool) or not isinstance(count, (int, float)) or not math.isfinite(count):
        return False
    sigma = math.sqrt(num_darts * P_INSIDE * (1 - P_INSIDE))
    return float(count).is_integer() and 0 <= count <= num_darts and abs(count - P_INSIDE * num_darts) <= 6 * sigma + 1


def plausible_estimate(estimate: Any, num_darts: int) -> bool:
    """Could ``num_darts`` random darts give this estimate of pi? (Within six standard errors.)"""
    if isinstance(estimate, bool) or not isinstance(estimate, (int, float)) or not math.isfinite(estimate):
        return False
    num_darts = max(int(num_darts), 1)
    return abs(estimate - math.pi) <= 6 * standard_error(num_darts) + 4 / num_darts
