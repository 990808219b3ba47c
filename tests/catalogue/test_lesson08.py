"""Adversarial catalogue, lesson 08 (the Game of Life): answers learners write, each with the verdict it must get."""
from __future__ import annotations

import pytest

from harness import assert_verdict, ids, judge, right, starter, wrong

pytestmark = pytest.mark.usefixtures("ray_session", "no_strict")

SETUP = """
import time

import numpy as np
import ray

from raycourse.lessons.life import ConwaysRules, Game, State, patterns
"""

# --- 08.rules ------------------------------------------------------------------------------------


def rule(body: str) -> str:
    return "def next_state(alive, neighbours):\n" + "\n".join("    " + line for line in body.strip("\n").splitlines())


RULES = [
    starter("the starter", rule("return alive"), "unchanged"),
    right("the solution", rule("""
if alive:
    return neighbours in (2, 3)
return neighbours == 3
""")),
    right("one expression", rule("return neighbours == 3 or (alive and neighbours == 2)")),
    right("numpy bools", rule("return np.bool_(neighbours == 3) | np.bool_(bool(alive) and neighbours == 2)")),
    right("1 and 0", rule("return 1 if neighbours == 3 or (alive and neighbours == 2) else 0")),
    right("None for a dead cell", rule("""
if neighbours == 3 or (alive and neighbours == 2):
    return True
""")),
    right("after an earlier wrong rule", rule("return neighbours in (2, 3) if alive else neighbours == 3"),
          before=(rule("return neighbours == 3"),)),
    wrong("survival with 3 only", rule("return neighbours == 3"), "a live cell with 2 neighbours survives"),
    wrong("HighLife: also born with 6", rule("return neighbours in (2, 3) if alive else neighbours in (3, 6)"),
          "born only with exactly 3", "6"),
    wrong("survives with 4 as well", rule("return neighbours in (2, 3, 4) if alive else neighbours == 3"),
          "overcrowding", "4"),
    wrong("born with 2 as well", rule("return neighbours in (2, 3) if alive else neighbours in (2, 3)"),
          "born only with exactly 3", "2"),
    wrong("never born", rule("return alive and neighbours in (2, 3)"), "exactly 3 neighbours is born"),
    wrong("survival with at least 2", rule("return neighbours >= 2 if alive else neighbours == 3"),
          "overcrowding", "4, 5, 6, 7 or 8"),
    wrong("lonely cells survive", rule("return neighbours <= 3 if alive else neighbours == 3"), "loneliness", "0 or 1"),
    wrong("inverted", rule("return not (neighbours in (2, 3) if alive else neighbours == 3)"), "survives"),
    wrong("returns a string", rule("return 'alive' if neighbours == 3 else 'dead'"), "returned 'dead'",
          "True"),
    wrong("raises for many neighbours", rule("""
table = [False, False, alive, True, False, False, False, False]
return table[neighbours]
"""), "raised IndexError"),
    wrong("returns the neighbour count", rule("return neighbours if alive else 0"), "returned 2"),
]


@pytest.mark.parametrize("answer", RULES, ids=ids(RULES))
def test_rules(answer):
    assert_verdict(judge("08.rules", SETUP, answer), answer)


# --- 08.ray_game ---------------------------------------------------------------------------------

CONSTANTS = "SIZE, STEPS, NUM_GAMES = 16, 6, 3\n"
GAME = """
class RayGame:
    def __init__(self, size, seed):
        self.game = Game(State.random(size, seed), rules=ConwaysRules(vectorized=False))

    def step(self, num_steps=1):
        time.sleep(0.05 * num_steps)
        return self.game.step(num_steps)

    def get_states(self):
        return self.game.states
"""
ACTOR = "@ray.remote\n" + GAME
SETUP_08 = [SETUP, CONSTANTS]
SOLUTION = ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
ray.get([game.step.remote(STEPS) for game in games])
states = ray.get([game.get_states.remote() for game in games])
"""
SERIAL = ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
for game in games:
    ray.get(game.step.remote(STEPS))
states = ray.get([game.get_states.remote() for game in games])
"""
RAY_GAME = [
    starter("the starter", GAME + """
games = [RayGame(SIZE, seed) for seed in range(NUM_GAMES)]
for game in games:
    game.step(STEPS)
states = [game.get_states() for game in games]
""", "@ray.remote"),
    right("the solution", SOLUTION),
    right("one generation per call, in rounds", ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
for _ in range(STEPS):
    ray.get([game.step.remote() for game in games])
states = [ray.get(game.get_states.remote()) for game in games]
"""),
    right("ray.wait: each game gets its next step as soon as it is done", ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
left = {i: STEPS for i in range(NUM_GAMES)}
pending = {}
for i, game in enumerate(games):
    pending[game.step.remote(2)] = i
    left[i] -= 2
while pending:
    (ready,), _ = ray.wait(list(pending))
    i = pending.pop(ready)
    if left[i]:
        n = min(2, left[i])
        left[i] -= n
        pending[games[i].step.remote(n)] = i
states = ray.get([game.get_states.remote() for game in games])
"""),
    right("ray.remote(class) under another name, keyword arguments, other seeds, tuples", GAME + """
RemoteGame = ray.remote(num_cpus=1)(RayGame)
RayGame = RemoteGame
games = [RayGame.remote(size=SIZE, seed=100 + k) for k in range(NUM_GAMES)]
refs = [game.step.remote(num_steps=STEPS) for game in games]
ray.wait(refs, num_returns=len(refs))
states = tuple(tuple(s) for s in ray.get([game.get_states.remote() for game in games]))
"""),
    right("after an earlier serial attempt in the same kernel", SOLUTION, before=(SERIAL,)),
    wrong("the games stepped one after another", SERIAL, "stepped one after another", "every game first"),
    wrong("one actor for every game", ACTOR + """
game = RayGame.remote(SIZE, 0)
games = [game] * NUM_GAMES
ray.get([g.step.remote(STEPS) for g in games])
states = ray.get([g.get_states.remote() for g in games])
""", "different actor"),
    wrong("a new actor for every call", ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
ray.get([RayGame.remote(SIZE, seed).step.remote(STEPS) for seed in range(NUM_GAMES)])
states = ray.get([game.get_states.remote() for game in games])
""", "only its initial state"),
    wrong("states computed in the notebook", ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
ray.get([game.step.remote(STEPS) for game in games])
local = [Game(State.random(SIZE, seed), rules=ConwaysRules()) for seed in range(NUM_GAMES)]
for g in local:
    g.step(STEPS)
states = [g.states for g in local]
""", "not fetched from its actor"),
    wrong("boards typed from somewhere else", ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
ray.get([game.step.remote(STEPS) for game in games])
states = [[State.random(SIZE, seed)] * (STEPS + 1) for seed in range(NUM_GAMES)]
""", "not fetched from its actor"),
    wrong("states in the wrong order", SOLUTION + "\nstates = states[::-1]\n", "holds game 2's states", "order of `games`"),
    wrong("every game with the same seed", ACTOR + """
games = [RayGame.remote(SIZE, 7) for _ in range(NUM_GAMES)]
ray.get([game.step.remote(STEPS) for game in games])
states = ray.get([game.get_states.remote() for game in games])
""", "same seed"),
    wrong("get_states without ray.get", ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
ray.get([game.step.remote(STEPS) for game in games])
states = [game.get_states.remote() for game in games]
""", "ObjectRefs"),
    wrong("fewer steps than STEPS", ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
ray.get([game.step.remote(STEPS - 2) for game in games])
states = ray.get([game.get_states.remote() for game in games])
""", "after 6 steps it should have 7"),
    wrong("games copied before they were read", SOLUTION + """
import copy
states = copy.deepcopy(states)
""", "not fetched from its actor"),
    wrong("threads in the notebook", GAME + """
from concurrent.futures import ThreadPoolExecutor
games = [RayGame(SIZE, seed) for seed in range(NUM_GAMES)]
with ThreadPoolExecutor(NUM_GAMES) as pool:
    list(pool.map(lambda g: g.step(STEPS), games))
states = [game.get_states() for game in games]
""", "threads", "@ray.remote"),
    wrong("two games stepped, then the third", ACTOR + """
games = [RayGame.remote(SIZE, seed) for seed in range(NUM_GAMES)]
ray.get([game.step.remote(STEPS) for game in games[:2]])
ray.get(games[2].step.remote(STEPS))
states = ray.get([game.get_states.remote() for game in games])
""", "1 other game", "game 2"),
]


@pytest.mark.parametrize("answer", RAY_GAME, ids=ids(RAY_GAME))
def test_ray_game(answer):
    assert_verdict(judge("08.ray_game", SETUP_08, answer), answer)
