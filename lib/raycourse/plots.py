"""The course's bokeh plots: line comparisons, mean with spread, bars, and a task timeline.

Each function builds a figure, shows it in the notebook (unless ``show=False``)
and returns it, so a lesson cell stays one line and tests can inspect the
figure without a browser. :func:`timeline` replaces the task timeline of
Ray 0.x's long-removed experimental UI: it draws the intervals Ray recorded
(see :mod:`raycourse.timing`), one row per worker process.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from bokeh.models import ColumnDataSource, HoverTool, Whisker
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from .timing import Interval

_notebook_ready = False


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def load_inline() -> None:
    """Load BokehJS into the notebook page from this machine, once per kernel (no CDN: offline-safe).

    ``raycourse.start()`` calls it, so every lesson loads the same BokehJS first;
    the Game of Life pictures add HoloViews and Panel on top (see ``life.visuals``).
    """
    global _notebook_ready
    if _notebook_ready or not _in_notebook():
        return
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE

    output_notebook(resources=INLINE, hide_banner=True)
    _notebook_ready = True


def show(fig: Any) -> Any:
    """Show a bokeh figure (or layout) in the notebook; return it."""
    return _show(fig, True)


def _show(fig: Any, show: bool) -> Any:
    if show and _in_notebook():
        from bokeh.io import show as bokeh_show

        load_inline()
        bokeh_show(fig)
    return fig


def _check_lengths(x: Sequence[Any], series: Mapping[str, Sequence[float]]) -> None:
    for label, ys in series.items():
        if len(ys) != len(x):
            raise ValueError(f"series {label!r} has {len(ys)} values but there are {len(x)} x values")


def lines(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    log_x: bool = False,
    log_y: bool = False,
    show: bool = True,
) -> Any:
    """One line with markers per named series, e.g. serial vs Ray time against N."""
    _check_lengths(x, series)
    fig = figure(
        title=title, x_axis_label=x_label, y_axis_label=y_label, width=640, height=360,
        x_axis_type="log" if log_x else "linear", y_axis_type="log" if log_y else "linear",
        tools="pan,wheel_zoom,box_zoom,reset,hover,save",
    )
    for (label, ys), colour in zip(series.items(), Category10_10):
        fig.line(list(x), list(ys), legend_label=label, line_width=2, color=colour)
        fig.scatter(list(x), list(ys), legend_label=label, size=7, color=colour)
    fig.legend.location = "top_left"
    return _show(fig, show)


def mean_std(
    x: Sequence[float],
    means: Sequence[float],
    stds: Sequence[float],
    reference: float | None = None,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    log_x: bool = False,
    show: bool = True,
) -> Any:
    """Means with one-standard-deviation whiskers, and an optional reference line (e.g. pi)."""
    _check_lengths(x, {"means": means, "stds": stds})
    fig = figure(title=title, x_axis_label=x_label, y_axis_label=y_label, width=640, height=360,
                 x_axis_type="log" if log_x else "linear")
    source = ColumnDataSource(dict(x=list(x), mean=list(means),
                                   lower=[m - s for m, s in zip(means, stds)], upper=[m + s for m, s in zip(means, stds)]))
    fig.scatter("x", "mean", source=source, size=8, legend_label="mean")
    fig.add_layout(Whisker(source=source, base="x", lower="lower", upper="upper"))
    low, high = min(source.data["lower"]), max(source.data["upper"])
    if reference is not None:
        low, high = min(low, reference), max(high, reference)
    pad = 0.08 * (high - low or abs(high) or 1.0)
    fig.y_range.start, fig.y_range.end = low - pad, high + pad  # every whisker in view, the widest included
    if reference is not None:
        fig.line([min(x), max(x)], [reference, reference], color="gray", line_dash="dashed", legend_label=f"{reference:.5g}")
    return _show(fig, show)


def bars(labels: Sequence[str], values: Sequence[float], title: str = "", y_label: str = "", show: bool = True) -> Any:
    """A bar per label, e.g. seconds per strategy."""
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels but {len(values)} values")
    fig = figure(x_range=list(labels), title=title, y_axis_label=y_label, width=640, height=340, tools="hover,save")
    fig.vbar(x=list(labels), top=list(values), width=0.7, color=[Category10_10[i % 10] for i in range(len(labels))])
    fig.y_range.start = 0
    fig.xaxis.major_label_orientation = 0.6 if max((len(s) for s in labels), default=0) > 10 else 0
    return _show(fig, show)


def _empty(title: str, text: str, width: int = 720) -> Any:
    """A small figure that says there is nothing to draw (starter code that ran no task)."""
    fig = figure(title=title, width=width, height=90, tools="", toolbar_location=None, x_range=(0, 1), y_range=(0, 1))
    fig.text(x=[0.01], y=[0.5], text=[text], text_baseline="middle", text_font_size="12pt")
    fig.axis.visible = fig.grid.visible = False
    return fig


NOTHING_YET = "Nothing to draw yet: did the cell above submit tasks with .remote()?"


def nothing_yet(title: str, text: str = NOTHING_YET, width: int = 720) -> Any:
    """The placeholder a lesson shows instead of a chart that would mislead (the starter ran no Ray task yet)."""
    return _empty(title, text, width)


def timeline_figure(spans: Sequence[Interval], title: str = "Tasks as Ray ran them", x_max: float | None = None,
                    marked: Sequence[str] = (), origin: float | None = None, width: int = 720) -> Any:
    """The figure :func:`timeline` shows (one row per worker process); ``marked`` task ids are outlined in red."""
    spans = list(spans)
    if not spans:
        return _empty(f"{title}: no Ray tasks found", NOTHING_YET, width)
    origin = min(s.start for s in spans) if origin is None else origin
    workers = sorted({s.worker for s in spans}, key=lambda w: min(s.start for s in spans if s.worker == w))
    rows = {w: f"worker {i + 1}" for i, w in enumerate(workers)}
    names = sorted({s.name for s in spans})
    colour = {n: Category10_10[i % 10] for i, n in enumerate(names)}
    flagged = set(marked)
    source = ColumnDataSource(dict(
        row=[rows[s.worker] for s in spans], left=[s.start - origin for s in spans], right=[s.end - origin for s in spans],
        name=[s.name for s in spans], duration=[round(s.duration, 3) for s in spans], color=[colour[s.name] for s in spans],
        edge=["#d00000" if s.task_id in flagged else "white" for s in spans],
        edge_width=[3 if s.task_id in flagged else 1 for s in spans],
    ))
    end = max(s.end for s in spans) - origin
    fig = figure(y_range=list(reversed(rows.values())), title=title, x_axis_label="seconds since the first task started",
                 width=width, height=max(160, 34 * len(rows) + 90), tools="xpan,xwheel_zoom,reset,save",
                 x_range=(0, max(end, x_max or 0) * 1.02 or 1))
    fig.hbar(y="row", left="left", right="right", height=0.7, color="color", legend_field="name", source=source,
             line_color="edge", line_width="edge_width")
    fig.add_tools(HoverTool(tooltips=[("task", "@name"), ("start", "@left{0.00} s"), ("seconds", "@duration")]))
    legend = fig.legend[0]
    fig.center = [item for item in fig.center if item is not legend]
    fig.add_layout(legend, "right")  # beside the rows, never over the last one
    legend.click_policy = "hide"
    return fig


def timeline(spans: Sequence[Interval], title: str = "Tasks as Ray ran them", show: bool = True,
             x_max: float | None = None, marked: Sequence[str] = ()) -> Any:
    """A Gantt chart: one row per worker process, one bar per task, coloured by function.

    ``x_max`` fixes the time axis (seconds), so two timelines meant to be compared share a scale.
    """
    return _show(timeline_figure(spans, title, x_max=x_max, marked=marked), show)


def timelines(runs: Mapping[str, Sequence[Interval]], show: bool = True) -> Any:
    """Several timelines one above the other, on one time axis (``{title: spans}``)."""
    from bokeh.layouts import column

    longest = max((max(s.end for s in spans) - min(s.start for s in spans) for spans in runs.values() if spans),
                  default=1.0)
    figures = [timeline_figure(spans, title, x_max=longest) for title, spans in runs.items()]
    return _show(column(*figures), show)


def compare(actual: Sequence[Interval], expected: Sequence[Interval], marked: Sequence[str] = (),
            actual_title: str = "What your code did", expected_title: str = "The shape the exercise asks for") -> Any:
    """Evidence for a verdict: the learner's timeline (offending tasks outlined in red) above a sketch of the goal.

    Not shown: returned for :class:`raycourse.grading.Incorrect` to carry.
    """
    from bokeh.layouts import column

    spans = [s for s in (list(actual) + list(expected)) if s is not None]
    longest = max((max(s.end for s in group) - min(s.start for s in group) for group in (actual, expected) if group),
                  default=1.0) if spans else 1.0
    return column(timeline_figure(actual, actual_title, x_max=longest, marked=marked, width=640),
                  timeline_figure(expected, expected_title, x_max=longest, width=640))


def sketch(rows: Sequence[Sequence[tuple[float, float]]], name: str = "task") -> list[Interval]:
    """Intervals for an expected shape: ``rows[w]`` lists (start, end) seconds for worker row ``w``."""
    return [Interval(name, f"sketch-{w}-{k}", f"sketch-{w:03d}", start, end)
            for w, row in enumerate(rows) for k, (start, end) in enumerate(row)]
