"""The Game of Life helpers: rules (reference == vectorized), State, Game, patterns, the command line, visuals.

No Ray here except the runner test at the end, which uses the shared session.
"""
from __future__ import annotations

import numpy as np
import pytest

from raycourse.lessons.life import ConwaysRules, Game, State, count_neighbours, patterns, run_games
from raycourse.lessons.life.__main__ import main

RULES = ConwaysRules()


def evolve(state: State, generations: int, vectorized: bool = True) -> list[State]:
    step = RULES.step_vectorized if vectorized else RULES.step_reference
    states = [state]
    for _ in range(generations):
        states.append(step(states[-1]))
    return states


@pytest.mark.parametrize("vectorized", [True, False])
def test_block_is_still(vectorized):
    start = patterns.place("block", 6)
    for state in evolve(start, 5, vectorized)[1:]:
        assert state.same_cells(start)
    assert state.grid.max() == 6  # every cell lived through 5 more generations


@pytest.mark.parametrize("vectorized", [True, False])
def test_blinker_has_period_two(vectorized):
    start = patterns.place("blinker", 5, (1, 1))
    states = evolve(start, 6, vectorized)
    vertical = State.from_cells(5, [(0, 1), (1, 1), (2, 1)], (1, 1))
    for g, state in enumerate(states):
        assert state.same_cells(start if g % 2 == 0 else vertical), g
    assert states[1].grid[2, 2] == 2 and states[1].grid[1, 2] == 1  # centre ages, ends are newborn


@pytest.mark.parametrize("vectorized", [True, False])
def test_glider_moves_one_cell_diagonally_every_four_generations(vectorized):
    states = evolve(patterns.place("glider", 14, (0, 0)), 16, vectorized)
    for k in range(1, 5):
        assert states[4 * k].same_cells(State.from_cells(14, patterns.GLIDER, (k, k)))
        assert states[4 * k].population == 5


def test_glider_dies_into_debris_at_the_dead_border():
    states = evolve(patterns.place("glider", 6, (0, 0)), 20)
    assert not states[-1].same_cells(states[0]) and states[-1].population == 4  # a block in the corner


@pytest.mark.parametrize("seed", range(6))
def test_reference_and_vectorized_agree_on_random_boards(seed):
    fast = slow = State.random(17, seed, density=0.35)
    for _ in range(8):
        fast, slow = RULES.step_vectorized(fast), RULES.step_reference(slow)
        assert fast == slow  # same cells AND same ages AND same generation


def test_gun_emits_gliders():
    states = evolve(patterns.place("gun", 50, (1, 1)), 60)
    assert states[60].population > states[0].population


def test_count_neighbours_at_corners_counts_outside_as_dead():
    alive = np.ones((3, 3), dtype=bool)
    assert count_neighbours(alive, 0, 0) == 3 and count_neighbours(alive, 1, 1) == 8 and count_neighbours(alive, 0, 1) == 5


def test_custom_rule_is_used_not_ignored():
    everything_dies = ConwaysRules(lambda alive, n: False)
    assert everything_dies.step(State.random(8, 0)).population == 0
    with pytest.raises(ValueError, match="Conway's rule only"):
        everything_dies.step_vectorized(State.random(8, 0))
    with pytest.raises(TypeError, match="rule must be a function"):
        ConwaysRules(rule=3)


def test_slow_rules_give_the_same_game():
    a = Game(State.random(12, 3))
    b = Game(State.random(12, 3), rules=ConwaysRules(vectorized=False))
    a.step(5), b.step(5)
    assert all(x == y for x, y in zip(a.states, b.states))


# --- State and Game ------------------------------------------------------------------------


def test_random_state_is_seeded_and_ages_start_at_one():
    a, b, c = State.random(20, 1), State.random(20, 1), State.random(20, 2)
    assert a == b and a != c
    assert set(np.unique(a.grid)) <= {0, 1} and a.generation == 0


def test_given_grid_accepts_bools_and_rejects_bad_shapes():
    assert State(np.eye(3, dtype=bool)).population == 3
    for bad, message in [(np.zeros((2, 3)), "square"), (np.zeros(4), "square"), (-np.ones((2, 2)), "negative"),
                         (np.full((2, 2), 0.5), "whole numbers")]:
        with pytest.raises(ValueError, match=message):
            State(bad)
    with pytest.raises(ValueError, match="size"):
        State.random(0)
    with pytest.raises(ValueError, match="outside"):
        patterns.place("gun", 10)
    with pytest.raises(ValueError, match="unknown pattern"):
        patterns.place("spaceship", 10)


def test_game_keeps_history_and_steps_many():
    game = Game(size=10, seed=0)
    new = game.step(3)
    assert len(new) == 3 and len(game.states) == 4 and game.generation == 3 and game.state is new[-1]
    game.step()
    assert [s.generation for s in game.states] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="num_steps"):
        game.step(0)
    with pytest.raises(TypeError, match="State"):
        Game(initial=np.zeros((3, 3)))


def test_game_keep_bounds_memory():
    game = Game(size=8, seed=0, keep=3)
    game.step(10)
    assert [s.generation for s in game.states] == [8, 9, 10]


def test_run_games_serial_feeds_the_view():
    seen = []

    class Recorder:
        def update(self, index, state):
            seen.append((index, state.generation))

    games = [Game(size=8, seed=s) for s in range(3)]
    received = run_games(games, 4, view=Recorder(), batch_size=3)
    assert [len(r) for r in received] == [4, 4, 4] and len(seen) == 12
    assert sorted(g for i, g in seen if i == 1) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="batch_size"):
        run_games(games, 4, batch_size=0)


# --- command line ---------------------------------------------------------------------------


def test_cli_prints_each_generation(capsys):
    assert main(["--size", "6", "--steps", "2", "--pattern", "blinker"]) == 0
    out = capsys.readouterr().out
    assert out.count("generation") == 3 and ".###.." in out and "..#..." in out


def test_cli_random_is_repeatable(capsys):
    main(["--size", "8", "--steps", "1", "--seed", "4"])
    first = capsys.readouterr().out
    main(["--size", "8", "--steps", "1", "--seed", "4"])
    assert capsys.readouterr().out == first


@pytest.mark.parametrize("argv, message", [
    (["--size", "0"], "must be at least 1"),
    (["--steps", "x"], "not a whole number"),
    (["--pattern", "gun", "--size", "10"], "outside the 10 x 10 board"),
    (["--pattern", "nope"], "invalid choice"),
])
def test_cli_bad_arguments_give_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_cli_help_runs_as_a_module():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "raycourse.lessons.life", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--size" in done.stdout and "--seed" in done.stdout
