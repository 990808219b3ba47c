"""Conway's Game of Life for the actors lesson (07): boards, rules, games, patterns, runners, pictures.

    from raycourse.lessons.life import State, ConwaysRules, Game, patterns
    game = Game(State.random(20, seed=0))
    game.step(10)

The visuals (holoviews) are imported on demand from :mod:`raycourse.life.visuals`
so that workers and the command line stay light.
"""
from . import patterns
from .game import Game
from .rules import ConwaysRules, conway, count_neighbours, neighbour_counts
from .runners import GameActor, game_actors, run_games, run_ray_games
from .state import State

__all__ = ["State", "ConwaysRules", "Game", "GameActor", "patterns", "conway", "count_neighbours",
           "neighbour_counts", "run_games", "run_ray_games", "game_actors"]
