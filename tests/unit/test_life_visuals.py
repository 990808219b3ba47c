"""The game pictures: the playing grid builds offline-safe bokeh models, the SVG images are reproducible.

No browser here: the grid's models and JavaScript are inspected as bokeh objects
(what plays in the page is checked in Chromium by tests/browser). The Ray tests at
the end use the shared session.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from bokeh.models import ColorBar, CustomJS, Plot, Slider, Toggle

from raycourse.lessons.life import Game, State, game_actors, patterns, run_games, run_ray_games, visuals
from raycourse.lessons.life import animate

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def test_frames_cap_ages_and_put_row_zero_on_top():
    state = State(np.array([[0, 1], [12, 3]]))
    frame = visuals.frame(state, max_age=10)
    assert frame.dtype == np.uint8
    assert frame.tolist() == [[10, 3], [0, 1]]  # capped at 10, rows flipped for the image glyph


def test_grid_records_every_generation_as_a_view():
    games = [Game(size=10, seed=s) for s in range(3)]
    grid = visuals.GameGrid(3, 10, colorblind=False, columns=2)
    for i, g in enumerate(games):
        grid.update(i, g.state)
    run_games(games, 4, view=grid)
    assert grid.length == 5 and grid.generations[2] == [0, 1, 2, 3, 4]
    with pytest.raises(IndexError, match="out of range"):
        grid.update(5, State.random(10, 0))
    with pytest.raises(ValueError, match="this grid draws 10 x 10"):
        grid.update(0, State.random(12, 0))
    with pytest.raises(TypeError, match="State"):
        grid.update(0, np.zeros((10, 10)))
    with pytest.raises(ValueError, match="at least one game"):
        visuals.GameGrid(0, 10)


def test_grid_figure_has_boards_a_slider_a_play_button_and_a_legend():
    games = [Game(size=12, seed=s) for s in range(4)]
    run_games(games, 6)
    layout = visuals.GameGrid(4, 12).figure()
    visuals.play([g.states for g in games])  # outside a notebook: builds, shows nothing
    slider = layout.select_one({"type": Slider})
    button = layout.select_one({"type": Toggle})
    assert slider.end == 1 and slider.disabled  # nothing recorded on that grid: one frame
    grid = visuals.GameGrid(4, 12)
    for i, g in enumerate(games):
        grid.add(i, g.states)
    layout = grid.figure()
    slider, button = layout.select_one({"type": Slider}), layout.select_one({"type": Toggle})
    assert (slider.start, slider.end, slider.value) == (0, 6, 0) and button.active and not slider.disabled
    titles = sorted(p.title.text for p in layout.select({"type": Plot}) if p.title.text.startswith("game"))
    assert titles == [f"game {i} · generation 0" for i in range(4)]
    callback = slider.js_property_callbacks["change:value"][0]
    assert isinstance(callback, CustomJS) and len(callback.args["stores"]) == 4
    assert len(callback.args["stores"][0].data["frame"]) == 7
    bar = layout.select_one({"type": ColorBar})
    assert "cell age" in bar.title and bar.major_label_overrides == {10: "10+"}
    assert len(bar.title) * 7 < bar.width  # the legend's title fits in the strip


def test_the_grid_plays_by_itself_once_the_page_has_drawn_it():
    grid = visuals.GameGrid(1, 8)
    grid.add(0, [State.random(8, 0), State.random(8, 1)])
    document = visuals.autoplay_document(grid.figure())
    callbacks = document.callbacks.js_event_callbacks.get("document_ready")
    assert callbacks and "setInterval" in callbacks[0].code and "isConnected" in callbacks[0].code


def test_palettes():
    assert visuals.palette(True) is not visuals.palette(False)
    assert visuals.palette(True)[0] == visuals.PALETTES["colorblind"][0]


def test_show_states_and_play_reject_bad_input():
    layout = visuals.show_states([State.random(6, s) for s in range(3)])
    assert len(list(layout.select({"type": Slider}))) == 1
    with pytest.raises(ValueError, match="at least one State"):
        visuals.show_states([])
    with pytest.raises(ValueError, match="non-empty list"):
        visuals.play([[]])
    with pytest.raises(TypeError, match="lists of States"):
        visuals.play([[np.zeros((3, 3))]])


# --- SVG images ----------------------------------------------------------------------------------


def test_animated_svg_shows_one_generation_at_a_time():
    states = animate.gun_states(generations=30, size=40)
    root = ET.fromstring(animate.animated_svg(states, title="gun"))
    frames = [g for g in root.findall(f"{SVG}g")]
    assert len(frames) == 31
    assert frames[0].get("visibility") is None and all(g.get("visibility") == "hidden" for g in frames[1:])
    animations = [g.find(f"{SVG}animate") for g in frames]
    assert all(a is not None and a.get("calcMode") == "discrete" for a in animations)
    assert frames[5].find(f"{SVG}text").text == "gun · generation 5"
    assert len({a.get("dur") for a in animations}) == 1  # one loop for all frames


def test_boards_svg_draws_one_titled_board_per_state():
    states = animate.final_states(range(3), 12, 5)
    root = ET.fromstring(animate.boards_svg(states))
    titles = [t.text for t in root.iter(f"{SVG}text")]
    assert titles == [f"game {i} · generation 5" for i in range(3)]
    with pytest.raises(ValueError, match="titles"):
        animate.boards_svg(states, titles=["one"])


def test_the_images_in_the_repo_are_what_the_code_makes(tmp_path):
    written = animate.write_images(tmp_path)
    assert {p.name for p in written} == {"gosper_glider_gun.svg", "game_grid_serial.svg", "game_grid_actors.svg"}
    for path in written:
        committed = ROOT / "images" / path.name
        assert committed.is_file(), f"run `python -m raycourse.lessons.life.animate` to make images/{path.name}"
        assert committed.read_text() == path.read_text(), f"images/{path.name} is stale: regenerate it"
        assert path.stat().st_size < 300_000


def test_the_gun_fires_gliders_in_the_image():
    states = animate.gun_states()
    assert states[0] == patterns.place("gun", 48, (1, 1)) and len(states) == 91
    assert states[-1].population > states[0].population + 10  # three gliders on their way


def test_animate_command_line(tmp_path, capsys):
    assert animate.main(["--out", str(tmp_path / "out")]) == 0
    assert "gosper_glider_gun.svg" in capsys.readouterr().out


# --- with Ray --------------------------------------------------------------------------------------


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


@pytest.mark.usefixtures("ray_session")
def test_serial_vs_actors_times_every_count_of_games():
    from raycourse.lessons.life import experiment

    result = experiment.serial_vs_actors(max_games=2, size=8, steps=2, repeats=1)
    assert result.games == [1, 2] and len(result.serial_s) == len(result.actors_s) == 2
    assert all(t > 0 for t in result.serial_s + result.actors_s) and result.cores >= 1
    assert "2 games" in result.table() and "speed-up" in result.table()
    figure = result.plot(show=False)
    assert "speed-up" in figure.yaxis[0].axis_label
    with pytest.raises(ValueError, match="at least one game"):
        experiment.serial_vs_actors(max_games=2, size=1)
