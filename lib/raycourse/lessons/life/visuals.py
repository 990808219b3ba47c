"""Live pictures of games with holoviews and bokeh: one plot per game, updated as it steps.

Each game's plot is a ``DynamicMap`` fed by a ``Pipe`` stream: :meth:`GameGrid.update`
sends the new board and only that plot redraws. Cells are square markers
coloured by **age** (newborn to old), optionally sized by age too, so a still
life reads differently from a moving glider. ``colorblind=True`` (the default)
uses cividis, which stays ordered for every kind of colour vision; the
"classic" red-to-green palette does not.

Nothing here needs a browser: :func:`render` turns any of these objects into a
bokeh model (tests use it), and displaying them in a headless kernel is harmless.
"""
from __future__ import annotations

from typing import Any, Sequence

import holoviews as hv
import numpy as np
from bokeh.palettes import Cividis256, RdYlGn11

from .state import State

PALETTES = {"colorblind": list(Cividis256), "classic": list(reversed(RdYlGn11))}
_extension_loaded = False


def palette(colorblind: bool = True) -> list[str]:
    """The colours for ages 1..max_age: cividis (colour-blind friendly) or classic red-yellow-green."""
    return PALETTES["colorblind" if colorblind else "classic"]


def _ensure_extension() -> None:
    global _extension_loaded
    if not _extension_loaded:
        hv.extension("bokeh", logo=False)
        _extension_loaded = True


def points(state: State, max_age: int = 10, scaled: bool = False, cell_px: int = 8) -> dict[str, Any]:
    """Columns for ``hv.Points``: x (column), y (row), age (capped at max_age), marker size."""
    rows, cols = np.nonzero(state.grid)
    ages = np.minimum(state.grid[rows, cols], max_age)
    if scaled:
        sizes = cell_px * (0.4 + 0.6 * ages / max_age)
    else:
        sizes = np.full(len(ages), float(cell_px))
    return {"x": cols, "y": rows, "age": ages, "size": sizes}


class GameGrid:
    """A grid of game plots; call :meth:`update` with each new state, :meth:`show` once to display."""

    def __init__(self, num_games: int, size: int, colorblind: bool = True, scaled: bool = False, max_age: int = 10,
                 columns: int = 4, plot_px: int = 220) -> None:
        if num_games < 1 or size < 1:
            raise ValueError(f"need at least one game and a board size >= 1, got {num_games} games of size {size}")
        if max_age < 1:
            raise ValueError(f"max_age must be at least 1, got {max_age}")
        _ensure_extension()
        self.size, self.max_age, self.scaled = size, max_age, scaled
        self.cell_px = max(2, plot_px // (size + 2))
        self.plot_px, self.colours = plot_px, palette(colorblind)
        empty = State(np.zeros((size, size), dtype=np.int32))
        self.pipes = [hv.streams.Pipe(data=(points(empty, max_age, scaled, self.cell_px), 0)) for _ in range(num_games)]
        self.maps = [hv.DynamicMap(self._plotter(i), streams=[pipe]) for i, pipe in enumerate(self.pipes)]
        self.layout = hv.Layout(self.maps).cols(min(columns, num_games))

    def _plotter(self, index: int):
        def plot(data: tuple[dict[str, Any], int]) -> hv.Points:
            columns, generation = data
            return hv.Points(columns, kdims=["x", "y"], vdims=["age", "size"]).opts(
                color="age", cmap=self.colours, clim=(1, self.max_age), size="size", marker="square",
                xlim=(-0.5, self.size - 0.5), ylim=(self.size - 0.5, -0.5), width=self.plot_px, height=self.plot_px,
                xaxis=None, yaxis=None, title=f"game {index}: generation {generation}", tools=["hover"],
                line_color=None, bgcolor="#f4f4f4",
            )
        return plot

    def update(self, index: int, state: State) -> None:
        """Send game ``index``'s new board to its plot."""
        if not 0 <= index < len(self.pipes):
            raise IndexError(f"there are {len(self.pipes)} game plots; index {index} is out of range")
        self.pipes[index].send((points(state, self.max_age, self.scaled, self.cell_px), state.generation))

    def show(self) -> Any:
        """Display the grid in the notebook (no-op outside one) and return the layout."""
        _display(self.layout)
        return self.layout


def age_legend(max_age: int = 10, colorblind: bool = True, width: int = 440) -> hv.HeatMap:
    """A strip of the colours used for ages 1..max_age (older cells are capped at max_age)."""
    _ensure_extension()
    ages = list(range(1, max_age + 1))
    return hv.HeatMap([(str(a), "age", a) for a in ages], kdims=["age ", "y"], vdims=["age"]).opts(
        cmap=palette(colorblind), clim=(1, max_age), width=width, height=90, yaxis=None, toolbar=None,
        title=f"cell colour by age (1 = newborn, {max_age} = {max_age} or more generations)",
    )


def render(obj: Any) -> Any:
    """The bokeh model for a holoviews object: what tests inspect, no browser needed."""
    _ensure_extension()
    return hv.render(obj, backend="bokeh")


def _display(obj: Any) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        display(obj)


def show_states(states: Sequence[State], columns: int = 6, colorblind: bool = True, max_age: int = 10) -> Any:
    """A static row of boards (e.g. a glider's first generations)."""
    if not states:
        raise ValueError("show_states needs at least one State")
    grid = GameGrid(len(states), states[0].size, colorblind=colorblind, max_age=max_age, columns=columns, plot_px=160)
    for i, state in enumerate(states):
        grid.update(i, state)
    return grid.show()
