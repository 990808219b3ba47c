"""Conway's Game of Life for lesson 08: boards, rules, games, patterns, runners, the experiment, pictures.

    from raycourse.lessons.life import State, ConwaysRules, Game, patterns
    game = Game(State.random(20, seed=0))
    game.step(10)

The notebook pictures (bokeh) are in :mod:`raycourse.lessons.life.visuals`, the
SVG images in :mod:`raycourse.lessons.life.animate`, and the serial-against-actors
timing in :mod:`raycourse.lessons.life.experiment`; they are imported on demand,
so that workers and the command line stay light.
"""
from . import patterns
from .game import Game
from .rules import ConwaysRules, conway, count_neighbours, neighbour_counts
from .runners import GameActor, game_actors, run_games, run_ray_games
from .state import State

__all__ = ["State", "ConwaysRules", "Game", "GameActor", "patterns", "conway", "count_neighbours",
           "neighbour_counts", "run_games", "run_ray_games", "game_actors"]
