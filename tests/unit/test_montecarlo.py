"""Lesson 01's Monte Carlo helpers: the estimates, the animated darts figure, and the charts that wait for Ray.

No Ray is needed: the figures are built and inspected in Python (the animation's
timer lives in the page; the browser test watches it move).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from bokeh.events import DocumentReady
from bokeh.models import ColumnDataSource, CustomJS

from raycourse import plots
from raycourse.lessons import montecarlo


def test_counts_and_estimates_are_reproducible_and_plausible():
    assert montecarlo.count_inside(10_000, seed=3) == montecarlo.count_inside(10_000, seed=3)
    assert montecarlo.count_inside(0) == 0
    assert abs(montecarlo.estimate_pi(200_000, seed=1) - math.pi) < 6 * montecarlo.standard_error(200_000)
    assert montecarlo.standard_error(100) == pytest.approx(10 * montecarlo.standard_error(10_000))
    with pytest.raises(ValueError):
        montecarlo.count_inside(-1)
    with pytest.raises(ValueError):
        montecarlo.estimate_pi(0)


def test_throw_darts_gives_points_of_the_unit_square():
    points = montecarlo.throw_darts(500, seed=2)
    assert points.shape == (500, 2) and points.min() >= 0 and points.max() < 1
    assert np.array_equal(points, montecarlo.throw_darts(500, seed=2))
    with pytest.raises(ValueError, match="num_darts"):
        montecarlo.throw_darts(0)


def _sources(layout) -> list[ColumnDataSource]:
    return [next(r.data_source for r in fig.renderers if "where" in r.data_source.data) for fig in layout.children]


def test_darts_figure_has_one_square_per_simulation_with_every_dart_classified():
    simulations = [montecarlo.throw_darts(300, seed) for seed in range(3)]
    layout = montecarlo.darts_figure(simulations, seconds=4)
    assert len(layout.children) == 3
    for fig, source, points in zip(layout.children, _sources(layout), simulations):
        inside = (points ** 2).sum(axis=1) <= 1
        # Before the page's timer starts, the figure holds every dart: what a static copy shows.
        assert len(source.data["x"]) == 300
        assert source.data["where"] == ["inside" if hit else "outside" for hit in inside]
        assert f"{4 * inside.mean():.4f}" in fig.title.text and "300 darts" in fig.title.text
        assert fig.x_range.start == 0 and fig.x_range.end == 1


def test_darts_animation_starts_when_the_document_is_ready_with_the_prefix_counts():
    simulations = [montecarlo.throw_darts(200, seed) for seed in (5, 6)]
    layout = montecarlo.darts_figure(simulations, seconds=3, max_rounds=7)
    callbacks = layout.document.callbacks._js_event_callbacks[DocumentReady.event_name]
    assert len(callbacks) == 1 and isinstance(callbacks[0], CustomJS)
    args, code = callbacks[0].args, callbacks[0].code
    assert "setInterval" in code and "clearInterval" in code
    assert args["seconds"] == 3 and args["max_rounds"] == 7
    assert args["sources"] == _sources(layout)
    assert args["titles"] == [fig.title for fig in layout.children]
    for hits, points in zip(args["hits"], simulations):
        inside = (points ** 2).sum(axis=1) <= 1
        assert hits[0] == 0 and len(hits) == 201
        assert hits[-1] == int(inside.sum()) and hits[57] == int(inside[:57].sum())


@pytest.mark.parametrize("bad, message", [
    ([], "at least one simulation"),
    ([np.zeros((10, 3))], "shape"),
    ([np.full((10, 2), 1.5)], "outside the unit square"),
])
def test_darts_figure_says_what_is_wrong_with_its_input(bad, message):
    with pytest.raises(ValueError, match=message):
        montecarlo.darts_figure(bad)
    with pytest.raises(ValueError, match="seconds"):
        montecarlo.darts_figure([montecarlo.throw_darts(5)], seconds=0)


def test_darts_embeds_its_own_document_so_the_timer_reaches_the_page(monkeypatch):
    published = []
    monkeypatch.setattr(plots, "_in_notebook", lambda: True)
    monkeypatch.setattr(plots, "load_inline", lambda: None)
    monkeypatch.setattr("bokeh.io.notebook.publish_display_data", lambda data, metadata=None: published.append(data))
    montecarlo.darts([montecarlo.throw_darts(50, seed=1)])
    html, script = published[0]["text/html"], published[1]["application/javascript"]
    assert "data-root-id" in html
    assert "document_ready" in script and "setInterval" in script  # the page-ready callback travels with the doc


def test_darts_outside_a_notebook_shows_nothing_and_does_not_fail():
    assert montecarlo.darts([montecarlo.throw_darts(10, seed=1)]) is None


def _text_of(fig) -> str:
    """The words a figure writes on its canvas (the placeholder's text glyphs)."""
    return json.dumps([list(r.data_source.data.get("text", [])) for r in fig.renderers], default=str)


def test_time_to_estimate_draws_nothing_until_ray_tasks_ran():
    """The serial starter runs no Ray task: a placeholder, never a "parallel blocks (Ray)" line."""
    fig = montecarlo.speed_figure(lambda n, b: montecarlo.estimate_pi(n))
    assert "Nothing to compare yet" in _text_of(fig) and "01.pi_blocks" in _text_of(fig)


def test_overhead_and_spread_charts_wait_for_the_exercise():
    sizes = [1_000, 10_000, 100_000, 1_000_000]
    empty = montecarlo.overhead_figure(sizes, [0.1] * 4, [])
    assert "Nothing to draw yet" in _text_of(empty)
    drawn = montecarlo.overhead_figure(sizes, [0.1, 0.2, 0.3, 0.4], np.array([0.2, 0.2, 0.2, 0.2]))
    assert "Nothing" not in _text_of(drawn) and len(drawn.renderers) == 4  # a line and markers per series
    assert "Nothing to draw yet" in _text_of(montecarlo.spread_figure([], 0.002))
    assert "Nothing to draw yet" in _text_of(montecarlo.spread_figure(None, 0.002))
    estimates = [math.pi + d for d in (-0.003, -0.001, 0.0, 0.002, 0.004)]
    spread = montecarlo.spread_figure(estimates, 0.002)
    assert f"{np.std(estimates, ddof=1):.5f}" in spread.title.text and "5 trials" in spread.title.text


def test_time_serial_remembers_what_it_measured():
    sizes = [1_000, 2_000, 3_000]
    times = montecarlo.time_serial(sizes, calls=2)
    assert len(times) == 3 and all(t > 0 for t in times)
    assert montecarlo.serial_measurement(sizes) == (times, 2)
    assert montecarlo.serial_measurement([1_000, 2_000]) is None
    assert montecarlo.serial_measurement(["not", "numbers"]) is None
    with pytest.raises(ValueError):
        montecarlo.time_serial([0, 10])
