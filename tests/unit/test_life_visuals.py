"""The live game plots build bokeh models without a browser; ray games are handled as they arrive."""
from __future__ import annotations

import numpy as np
import pytest

from raycourse.lessons.life import Game, State, game_actors, run_games, run_ray_games, visuals


def test_points_colour_by_age_and_scale_sizes():
    state = State(np.array([[0, 1], [12, 3]]))
    columns = visuals.points(state, max_age=10, scaled=True, cell_px=10)
    assert list(columns["age"]) == [1, 10, 3]  # capped at max_age
    assert columns["size"][1] == pytest.approx(10) and columns["size"][0] < columns["size"][2] < columns["size"][1]
    fixed = visuals.points(state, scaled=False, cell_px=10)
    assert set(fixed["size"]) == {10.0}


def test_grid_renders_and_updates_without_a_browser():
    grid = visuals.GameGrid(3, 10, colorblind=False, scaled=True, columns=2)
    run_games([Game(size=10, seed=s) for s in range(3)], 2, view=grid)
    model = visuals.render(grid.layout)
    assert type(model).__name__ == "GridPlot"
    assert grid.pipes[2].data[1] == 2  # the last generation sent
    with pytest.raises(IndexError, match="out of range"):
        grid.update(5, State.random(10, 0))
    with pytest.raises(ValueError, match="at least one game"):
        visuals.GameGrid(0, 10)


def test_palettes_and_legend():
    assert visuals.palette(True) is not visuals.palette(False)
    assert visuals.palette(True)[0] == visuals.PALETTES["colorblind"][0]
    legend = visuals.render(visuals.age_legend(max_age=5))
    assert "age" in legend.title.text


def test_show_states_builds_a_static_row():
    layout = visuals.show_states([State.random(6, s) for s in range(3)])
    assert len(layout) == 3


@pytest.mark.usefixtures("ray_session")
def test_run_ray_games_handles_results_as_they_arrive():
    actors = game_actors(2, size=12, seed=5)
    seen = []

    class Recorder:
        def update(self, index, state):
            seen.append((index, state.generation))

    received = run_ray_games(actors, 5, view=Recorder(), batch_size=2)
    serial = run_games([Game(size=12, seed=5), Game(size=12, seed=6)], 5)
    assert [[s.generation for s in r] for r in received] == [[1, 2, 3, 4, 5]] * 2
    assert all(a == b for r, s in zip(received, serial) for a, b in zip(r, s))
    assert sorted(seen) == sorted((i, g) for i in range(2) for g in range(1, 6))
    with pytest.raises(TypeError, match="actor handles"):
        run_ray_games([Game(size=5)], 1)
    import ray

    for actor in actors:
        ray.kill(actor)
