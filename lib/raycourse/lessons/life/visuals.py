"""Pictures of games in the notebook: a grid of boards that plays every generation, in the browser.

Why not a live plot fed from Python? A plot that Python keeps updating needs a
live connection between the kernel and the page (a Jupyter comm, or Panel's),
and extra JavaScript libraries loaded in the right order; offline, in a viewer,
or after an earlier plot loaded BokehJS, such plots stay blank. Here the games
run first; :meth:`GameGrid.show` then sends every generation to the page at
once (small uint8 arrays, base64-encoded by bokeh) and a few lines of
JavaScript play them: a slider picks the generation, a button plays and pauses,
and playing starts by itself when the page has drawn the grid. Only BokehJS is
needed, and the course already loads it inline (``raycourse.plots.load_inline``).

Each board is one bokeh ``image`` glyph: a cell's colour is its **age** (newborn
to old, capped at ``max_age``), dead cells are the light background, so a still
life reads differently from a moving glider. ``colorblind=True`` (the default)
uses cividis, which stays ordered for every kind of colour vision; the
"classic" red-to-green palette does not.

In the page (for browser tests): the grid is one bokeh root whose boards are
``<canvas>`` elements inside ``.bk-Figure`` views, titled ``game i · generation g``;
the slider's value is the generation shown.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from bokeh.events import DocumentReady
from bokeh.layouts import column, gridplot, row
from bokeh.models import (ColorBar, ColumnDataSource, CustomJS, FixedTicker, LinearColorMapper, Slider, Toggle)
from bokeh.palettes import Cividis256, RdYlGn11
from bokeh.plotting import figure

from ...plots import _in_notebook
from .state import State

PALETTES = {"colorblind": list(Cividis256), "classic": list(reversed(RdYlGn11))}
DEAD = "#f4f4f4"  # the board's background: dead cells
FRAME_MS = 150  # one generation on screen while playing
END_PAUSE = 6  # frames the last generation stays before the animation starts over

# Runs in the page: show generation k of every board (a board that has fewer frames keeps its last one).
_SHOW_FRAME = """
const k = slider.value;
for (let i = 0; i < boards.length; i++) {
  const frames = stores[i].data.frame, gens = stores[i].data.generation;
  const j = Math.min(k, frames.length - 1);
  boards[i].data = {image: [frames[j]]};
  titles[i].text = `game ${i} · generation ${gens[j]}`;
}
"""
# Runs once, when the page has drawn the grid: advance the slider while the play button is down.
_AUTOPLAY = """
let wait = 0, drawn = false;
const timer = setInterval(() => {
  const view = Bokeh.index.find_one(slider);
  if (view == null || !view.el.isConnected) {  // not drawn yet, or the output was cleared
    if (drawn) clearInterval(timer);
    return;
  }
  drawn = true;
  if (!play.active) return;
  if (slider.value < slider.end) { slider.value = slider.value + 1; return; }
  if (++wait > pause) { wait = 0; slider.value = slider.start; }
}, ms);
"""
_PLAY_LABEL = "play.label = play.active ? '❚❚ pause' : '▶ play';"


def palette(colorblind: bool = True) -> list[str]:
    """The colours for ages 1..max_age: cividis (colour-blind friendly) or classic red-yellow-green."""
    return PALETTES["colorblind" if colorblind else "classic"]


def frame(state: State, max_age: int = 10) -> np.ndarray:
    """A board as the image glyph draws it: ages capped at ``max_age`` (uint8), row 0 at the top."""
    return np.minimum(state.grid, max_age).astype(np.uint8)[::-1].copy()


class GameGrid:
    """Boards of several games; :meth:`update` (or :meth:`add`) records generations, :meth:`show` plays them.

    It is a *view* for :func:`raycourse.lessons.life.run_games` and ``run_ray_games``:
    they call ``update(index, state)`` for every new state.
    """

    def __init__(self, num_games: int, size: int, colorblind: bool = True, max_age: int = 10,
                 columns: int = 4, plot_px: int = 220) -> None:
        if num_games < 1 or size < 1:
            raise ValueError(f"need at least one game and a board size >= 1, got {num_games} games of size {size}")
        if max_age < 1:
            raise ValueError(f"max_age must be at least 1, got {max_age}")
        if columns < 1 or plot_px < 60:
            raise ValueError(f"need at least one column and boards of 60 px or more, got {columns} and {plot_px}")
        self.num_games, self.size, self.max_age = num_games, size, max_age
        self.columns, self.plot_px, self.colours = min(columns, num_games), plot_px, palette(colorblind)
        self.frames: list[list[np.ndarray]] = [[] for _ in range(num_games)]
        self.generations: list[list[int]] = [[] for _ in range(num_games)]

    def update(self, index: int, state: State) -> None:
        """Record game ``index``'s next board."""
        if not 0 <= index < self.num_games:
            raise IndexError(f"there are {self.num_games} game boards; index {index} is out of range")
        if not isinstance(state, State):
            raise TypeError(f"update needs a State, got {type(state).__name__}")
        if state.size != self.size:
            raise ValueError(f"game {index}'s board is {state.size} x {state.size}; this grid draws {self.size} x {self.size}")
        self.frames[index].append(frame(state, self.max_age))
        self.generations[index].append(int(state.generation))

    def add(self, index: int, states: Sequence[State]) -> None:
        """Record several boards of game ``index`` (oldest first)."""
        for state in states:
            self.update(index, state)

    @property
    def length(self) -> int:
        """Generations the longest game has recorded."""
        return max(len(f) for f in self.frames)

    def figure(self) -> Any:
        """The bokeh layout: the boards, a generation slider, a play button and the colour legend."""
        mapper = LinearColorMapper(palette=self.colours, low=1, high=self.max_age, low_color=DEAD)
        empty = np.zeros((self.size, self.size), dtype=np.uint8)
        boards, stores, plots = [], [], []
        for index in range(self.num_games):
            frames = self.frames[index] or [empty]
            generations = self.generations[index] or [0]
            stores.append(ColumnDataSource(data={"frame": frames, "generation": generations}))
            boards.append(ColumnDataSource(data={"image": [frames[0]]}))
            plot = figure(width=self.plot_px, height=self.plot_px, x_range=(0, self.size), y_range=(0, self.size),
                          title=f"game {index} · generation {generations[0]}", tools="", toolbar_location=None,
                          match_aspect=True, min_border=4)
            plot.image(image="image", x=0, y=0, dw=self.size, dh=self.size, color_mapper=mapper, source=boards[-1])
            plot.axis.visible = False
            plot.grid.visible = False
            plot.background_fill_color = DEAD
            plots.append(plot)
        last = max(self.length - 1, 0)
        slider = Slider(start=0, end=max(last, 1), value=0, step=1, title="generation", width=260, disabled=last == 0)
        play = Toggle(label="❚❚ pause" if last else "▶ play", active=bool(last), width=90, disabled=last == 0)
        slider.js_on_change("value", CustomJS(args=dict(slider=slider, boards=boards, stores=stores,
                                                         titles=[p.title for p in plots]), code=_SHOW_FRAME))
        play.js_on_change("active", CustomJS(args=dict(play=play), code=_PLAY_LABEL))
        grid = gridplot(plots, ncols=self.columns, toolbar_location=None)
        return column(grid, row(play, slider), self._legend(mapper))

    def _legend(self, mapper: LinearColorMapper) -> Any:
        """A strip of the age colours; its title fits in the strip (never cut off)."""
        width = max(360, self.columns * self.plot_px)
        strip = figure(width=width, height=70, tools="", toolbar_location=None, min_border=0, outline_line_color=None)
        strip.axis.visible = strip.grid.visible = False
        ticks = list(range(1, self.max_age + 1))
        labels = {self.max_age: f"{self.max_age}+"}  # older cells are drawn in the oldest colour
        bar = ColorBar(color_mapper=mapper, orientation="horizontal", width=width - 40, height=12, location=(10, 0),
                       ticker=FixedTicker(ticks=ticks), major_label_overrides=labels,
                       title="cell age in generations (dead cells are light grey)", title_standoff=4, padding=4)
        strip.add_layout(bar, "center")
        strip.renderers = []
        return strip

    def show(self) -> Any:
        """Display the grid in the notebook, playing by itself (no-op outside one); return the layout."""
        layout = self.figure()
        _display_playing(layout)
        return layout


def play(histories: Sequence[Sequence[State]], colorblind: bool = True, max_age: int = 10, columns: int = 4,
         plot_px: int = 220) -> Any:
    """Show each game's list of states (``histories[i]`` for game i) as boards that play every generation."""
    histories = [list(h) for h in histories]
    if not histories or not all(histories):
        raise ValueError("play needs a list of games, each a non-empty list of States")
    first = histories[0][0]
    if not isinstance(first, State):
        raise TypeError(f"play needs lists of States, got {type(first).__name__}")
    grid = GameGrid(len(histories), first.size, colorblind=colorblind, max_age=max_age, columns=columns,
                    plot_px=plot_px)
    for index, states in enumerate(histories):
        grid.add(index, states)
    return grid.show()


def show_states(states: Sequence[State], columns: int = 6, colorblind: bool = True, max_age: int = 10) -> Any:
    """A static row of boards (e.g. a glider's first generations), one board per state."""
    if not states:
        raise ValueError("show_states needs at least one State")
    return play([[s] for s in states], colorblind=colorblind, max_age=max_age, columns=columns, plot_px=160)


def autoplay_document(layout: Any) -> Any:
    """A bokeh Document holding ``layout`` that starts playing when the page has drawn it (DocumentReady)."""
    from bokeh.document import Document
    from bokeh.models import Slider as SliderModel, Toggle as ToggleModel

    slider = next(iter(layout.select({"type": SliderModel})), None)
    button = next(iter(layout.select({"type": ToggleModel})), None)
    document = Document()
    document.add_root(layout)
    if slider is not None and button is not None:
        document.js_on_event(DocumentReady, CustomJS(args=dict(slider=slider, play=button, ms=FRAME_MS,
                                                               pause=END_PAUSE), code=_AUTOPLAY))
    return document


def _display_playing(layout: Any) -> None:
    """Send the layout to the notebook page as bokeh's own ``show`` does, keeping the document's start event.

    ``bokeh.io.show`` copies a plot into a fresh document, which drops
    document-level events; the DocumentReady callback that starts playing
    lives on the document, so we embed the document ourselves.
    """
    if not _in_notebook():
        return
    from bokeh.core.json_encoder import serialize_json
    from bokeh.core.templates import DOC_NB_JS
    from bokeh.embed.elements import div_for_render_item
    from bokeh.embed.util import standalone_docs_json_and_render_items
    from bokeh.io.notebook import EXEC_MIME_TYPE, HTML_MIME_TYPE, JS_MIME_TYPE, publish_display_data

    from ... import plots

    plots.load_inline()  # BokehJS from this machine, once per kernel (raycourse.start has usually done it)
    document = autoplay_document(layout)
    docs_json, [render_item] = standalone_docs_json_and_render_items([document])
    div = div_for_render_item(render_item)
    script = DOC_NB_JS.render(docs_json=serialize_json(docs_json), render_items=serialize_json([render_item.to_json()]))
    publish_display_data({HTML_MIME_TYPE: div})
    publish_display_data({JS_MIME_TYPE: script, EXEC_MIME_TYPE: ""}, metadata={EXEC_MIME_TYPE: {"id": layout.id}})
