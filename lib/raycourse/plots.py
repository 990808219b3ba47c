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


def _show(fig: Any, show: bool) -> Any:
    global _notebook_ready
    if show:
        from bokeh.io import output_notebook
        from bokeh.io import show as bokeh_show

        if not _notebook_ready:
            # Inline BokehJS: plots must draw without internet (a workshop room, a firewall);
            # the default loads it from a CDN and leaves offline learners with empty cells.
            from bokeh.resources import INLINE

            output_notebook(resources=INLINE, hide_banner=True)
            _notebook_ready = True
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


def timeline(spans: Sequence[Interval], title: str = "Tasks as Ray ran them", show: bool = True) -> Any:
    """A Gantt chart: one row per worker process, one bar per task, coloured by function."""
    spans = list(spans)
    if not spans:  # a learner's starter code ran no task: say so in the plot, don't raise
        fig = figure(title=f"{title}: no Ray tasks found", width=720, height=90, tools="", toolbar_location=None,
                     x_range=(0, 1), y_range=(0, 1))
        fig.text(x=[0.01], y=[0.5], text=["Nothing to draw yet: did the cell above submit tasks with .remote()?"],
                 text_baseline="middle", text_font_size="12pt")
        fig.axis.visible = fig.grid.visible = False
        return _show(fig, show)
    origin = min(s.start for s in spans)
    workers = sorted({s.worker for s in spans}, key=lambda w: min(s.start for s in spans if s.worker == w))
    rows = {w: f"worker {i + 1}" for i, w in enumerate(workers)}
    names = sorted({s.name for s in spans})
    colour = {n: Category10_10[i % 10] for i, n in enumerate(names)}
    source = ColumnDataSource(dict(
        row=[rows[s.worker] for s in spans], left=[s.start - origin for s in spans], right=[s.end - origin for s in spans],
        name=[s.name for s in spans], duration=[round(s.duration, 3) for s in spans], color=[colour[s.name] for s in spans],
    ))
    fig = figure(y_range=list(reversed(rows.values())), title=title, x_axis_label="seconds since the first task started",
                 width=720, height=max(160, 40 * len(rows) + 80), tools="xpan,xwheel_zoom,reset,save")
    fig.hbar(y="row", left="left", right="right", height=0.7, color="color", legend_field="name", source=source,
             line_color="white")
    fig.add_tools(HoverTool(tooltips=[("task", "@name"), ("start", "@left{0.00} s"), ("seconds", "@duration")]))
    fig.legend.location = "bottom_right"
    return _show(fig, show)
