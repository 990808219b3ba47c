"""Images of games as SVG files: an animated one (SMIL) and static boards, made by the course's own rules.

    .venv/bin/python -m raycourse.lessons.life.animate            # writes images/ in the current folder
    .venv/bin/python -m raycourse.lessons.life.animate --out DIR

Why SVG: a lesson's markdown shows it everywhere (JupyterLab, GitHub, a static
HTML export) with no JavaScript and no kernel, so it is also the fallback
picture for the live grid of :mod:`raycourse.lessons.life.visuals`. One
generation is one ``<g>`` holding a path per age colour (a cell is a tiny
``h1v1h-1z`` square), and a discrete ``<animate>`` on its visibility shows it
for one frame of the loop: small files (the gun's 90 generations are ~100 KB)
that browsers play inside an ``<img>``.

Files (all reproducible from the rules and fixed seeds):

* ``gosper_glider_gun.svg``: the Gosper glider gun (``patterns.GOSPER_GLIDER_GUN``), 90 generations;
* ``game_grid_serial.svg``: the lesson's four serial games (size 24, seeds 0-3) after 30 generations;
* ``game_grid_actors.svg``: the lesson's three actor games (size 40, seeds 0-2) after 40 generations.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

import numpy as np

from . import patterns
from .game import Game
from .rules import ConwaysRules
from .state import State

DEAD = "#f4f4f4"
MAX_AGE = 10
TITLE_PX = 18


def age_colours(max_age: int = MAX_AGE) -> list[str]:
    """The colour of ages 1..max_age, sampled from cividis as the live grid's colour mapper does."""
    from bokeh.palettes import Cividis256

    if max_age < 1:
        raise ValueError(f"max_age must be at least 1, got {max_age}")
    if max_age == 1:
        return [Cividis256[0]]
    return [Cividis256[min(255, int((age - 1) / (max_age - 1) * 256))] for age in range(1, max_age + 1)]


def _paths(state: State, colours: Sequence[str], x0: float = 0, y0: float = 0) -> str:
    """One ``<path>`` per age colour, a unit square per live cell (the caller scales the group)."""
    ages = np.minimum(state.grid, len(colours))
    parts = []
    for age, colour in enumerate(colours, start=1):
        rows, cols = np.nonzero(ages == age)
        if len(rows):
            d = "".join(f"M{c + x0:g} {r + y0:g}h1v1h-1z" for r, c in zip(rows.tolist(), cols.tolist()))
            parts.append(f'<path fill="{colour}" d="{d}"/>')
    return "".join(parts)


def _visible_during(index: int, count: int, seconds: float) -> str:
    """A discrete animation that shows frame ``index`` of ``count`` and hides it otherwise, looping."""
    if count == 1:
        return ""
    start, end = index / count, (index + 1) / count
    if index == 0:
        values, times = "visible;hidden", f"0;{end:.5f}"
    elif index == count - 1:
        values, times = "hidden;visible", f"0;{start:.5f}"
    else:
        values, times = "hidden;visible;hidden", f"0;{start:.5f};{end:.5f}"
    return (f'<animate attributeName="visibility" values="{values}" keyTimes="{times}" dur="{seconds:g}s" '
            'calcMode="discrete" repeatCount="indefinite"/>')


def animated_svg(states: Sequence[State], cell_px: int = 8, frame_s: float = 0.1, title: str = "",
                 max_age: int = MAX_AGE) -> str:
    """An SVG that plays ``states`` in a loop, ``frame_s`` seconds per generation."""
    states = list(states)
    if not states:
        raise ValueError("animated_svg needs at least one State")
    size, colours = states[0].size, age_colours(max_age)
    seconds = frame_s * len(states)
    width, height = size * cell_px, size * cell_px + TITLE_PX
    frames = []
    for index, state in enumerate(states):
        hidden = ' visibility="hidden"' if index else ""
        label = escape(f"{title} · generation {state.generation}" if title else f"generation {state.generation}")
        frames.append(f'<g{hidden}>{_visible_during(index, len(states), seconds)}'
                      f'<text x="2" y="{TITLE_PX - 5}" font-family="sans-serif" font-size="12" fill="#333">{label}</text>'
                      f'<g transform="translate(0 {TITLE_PX}) scale({cell_px})">{_paths(state, colours)}</g></g>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<rect width="{width}" height="{height}" fill="white"/>'
            f'<rect y="{TITLE_PX}" width="{width}" height="{size * cell_px}" fill="{DEAD}"/>'
            + "".join(frames) + "</svg>\n")


def boards_svg(states: Sequence[State], titles: Sequence[str] | None = None, board_px: int = 200, gap_px: int = 12,
               max_age: int = MAX_AGE) -> str:
    """A static row of boards, titled like the live grid (``game i · generation g``)."""
    states = list(states)
    if not states:
        raise ValueError("boards_svg needs at least one State")
    titles = list(titles) if titles is not None else [f"game {i} · generation {s.generation}" for i, s in enumerate(states)]
    if len(titles) != len(states):
        raise ValueError(f"{len(titles)} titles for {len(states)} boards")
    colours = age_colours(max_age)
    width = len(states) * board_px + (len(states) - 1) * gap_px
    height = board_px + TITLE_PX
    parts = []
    for index, (state, label) in enumerate(zip(states, titles)):
        x = index * (board_px + gap_px)
        scale = board_px / state.size
        parts.append(f'<text x="{x + 2}" y="{TITLE_PX - 5}" font-family="sans-serif" font-size="12" font-weight="bold" '
                     f'fill="#333">{escape(label)}</text>'
                     f'<rect x="{x}" y="{TITLE_PX}" width="{board_px}" height="{board_px}" fill="{DEAD}"/>'
                     f'<g transform="translate({x} {TITLE_PX}) scale({scale:g})">{_paths(state, colours)}</g>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<rect width="{width}" height="{height}" fill="white"/>' + "".join(parts) + "</svg>\n")


def gun_states(generations: int = 90, size: int = 48) -> list[State]:
    """The Gosper glider gun and its next ``generations`` generations (three gliders per 90)."""
    game = Game(patterns.place("gun", size, (1, 1)))
    game.step(generations)
    return game.states


def final_states(seeds: Sequence[int], size: int, generations: int, vectorized: bool = True) -> list[State]:
    """Each seed's random game (``State.random(size, seed)``) after ``generations`` generations."""
    out = []
    for seed in seeds:
        game = Game(State.random(size, seed), rules=ConwaysRules(vectorized=vectorized))
        game.step(generations)
        out.append(game.state)
    return out


def write_images(folder: Path) -> list[Path]:
    """Write the course's Game of Life images into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    images = {
        "gosper_glider_gun.svg": animated_svg(gun_states(), cell_px=8, title="Gosper glider gun"),
        "game_grid_serial.svg": boards_svg(final_states(range(4), 24, 30)),
        "game_grid_actors.svg": boards_svg(final_states(range(3), 40, 40)),
    }
    written = []
    for name, text in images.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m raycourse.lessons.life.animate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("images"), help="folder to write into (default: ./images)")
    args = parser.parse_args(argv)
    for path in write_images(args.out):
        print(f"{path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
