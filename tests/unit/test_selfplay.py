"""raycourse.lessons.selfplay: Gomoku rules, the heuristic policy, tree search and a self-play game (no Ray needed)."""
from __future__ import annotations

import pytest

from raycourse.lessons import selfplay
from raycourse.lessons.selfplay import BLACK, WHITE, Board, Rules


def play(rules, moves):
    board = Board(rules)
    for move in moves:
        board = board.play(move)
    return board


def test_rules_validate():
    with pytest.raises(ValueError, match="win"):
        Rules(5, 6)
    with pytest.raises(ValueError, match="size"):
        Rules(2, 2)


def test_four_in_a_row_wins_and_ends_the_game():
    rules = Rules(7, 4)
    board = play(rules, [0, 7, 1, 8, 2, 9])  # X on 0,1,2; O on 7,8,9
    assert not board.terminal and board.to_move == BLACK
    won = board.play(3)
    assert won.winner == BLACK and won.terminal and won.legal_moves() == []
    with pytest.raises(ValueError, match="game is over"):
        won.play(20)


def test_diagonal_win_and_bad_moves():
    rules = Rules(5, 3)
    board = play(rules, [0, 1, 6, 2])
    assert board.play(12).winner == BLACK
    with pytest.raises(ValueError, match="not an empty cell"):
        board.play(0)
    with pytest.raises(ValueError, match="not an empty cell"):
        board.play(99)


def test_random_opening_is_reproducible_and_unfinished():
    rules = Rules(7, 4)
    a = selfplay.random_opening(rules, 5, rng=1)
    assert a.cells == selfplay.random_opening(rules, 5, rng=1).cells
    assert a.stones == 5 and not a.terminal and a.to_move == WHITE
    with pytest.raises(ValueError, match="stones"):
        selfplay.random_opening(rules, 49, rng=1)


def test_policy_takes_the_win_and_blocks_the_loss():
    rules = Rules(7, 4)
    board = play(rules, [0, 7, 1, 8, 2, 20])  # X to move, X can win on 3
    priors, value = selfplay.evaluate(board)
    assert max(priors, key=priors.get) == 3 and value == 1.0
    board = play(rules, [0, 7, 1, 8, 30])  # O to move must block X's 0-1-_ ... O has 7,8 too
    priors, _ = selfplay.evaluate(board)
    assert abs(sum(priors.values()) - 1) < 1e-9


def test_search_finds_the_winning_move():
    board = play(Rules(7, 4), [0, 7, 1, 8, 2, 20])
    visits = selfplay.search(board, selfplay.evaluate, simulations=16, c_puct=1.5)
    assert max(visits, key=visits.get) == 3
    with pytest.raises(ValueError, match="simulations"):
        selfplay.search(board, selfplay.evaluate, simulations=0)


def test_search_defends():
    board = play(Rules(7, 4), [0, 40, 1, 41, 2])  # O to move: X threatens 3
    visits = selfplay.search(board, selfplay.evaluate, simulations=24)
    assert max(visits, key=visits.get) == 3


def test_self_play_game_is_a_complete_reproducible_trajectory():
    game = selfplay.SelfPlayGame(selfplay.evaluate, rules=Rules(7, 4), simulations=8)
    t = game(3)
    assert t == game(3)
    assert t.length == len(t.visits) > 0 and t.board().terminal and t.board().winner == t.winner
    assert all(move in dict(v) for move, v in zip(t.moves, t.visits))
    assert t.outcome() in {"X wins", "O wins", "draw"}


def test_round_robin_alternates_and_caches(ray_session):
    class Fake:
        def __init__(self):
            self.asked = 0

    class Remote:
        def __init__(self, fake):
            self.fake = fake

        def remote(self, board):
            import ray

            self.fake.asked += 1
            return ray.put(selfplay.evaluate(board))

    class Actor:
        def __init__(self):
            self.fake = Fake()
            self.evaluate = Remote(self.fake)

    a, b = Actor(), Actor()
    rr = selfplay.RoundRobin([a, b])
    boards = [selfplay.random_opening(Rules(7, 4), 2, rng=s) for s in range(4)]
    for board in boards + boards:
        rr(board)
    assert (a.fake.asked, b.fake.asked) == (2, 2)


def test_self_play_games_pulled_by_workers_into_a_file(ray_session, tmp_path):
    """The lesson's demonstration in small: policy actors, games through the dispatcher, a FilePickler sink."""
    import ray

    from raycourse.lessons import dispatch

    policies = selfplay.start_policy_workers(1, resources={})  # the shared session has no policy_slot
    game = selfplay.SelfPlayGame(selfplay.RoundRobin(policies), rules=Rules(5, 3), simulations=4)
    path = tmp_path / "games.pkl"
    pickler = ray.remote(num_cpus=0)(dispatch.FilePickler).remote(str(path))
    report = dispatch.run_pull(range(3), game, workers=2, sink=pickler, progress=False)
    assert ray.get(pickler.close.remote()) == 3
    records = dispatch.read_pickles(str(path))
    assert sorted(i for i, _ in records) == [0, 1, 2] and report.missing() == [] and report.ended == "finished"
    assert all(timed.value.board().terminal and timed.value.seed == i for i, timed in records)
    assert ray.get(policies[0].served.remote()) > 0
    ray.kill(policies[0])


def test_policy_workers_reject_a_bad_count():
    with pytest.raises(ValueError, match="positive whole number"):
        selfplay.start_policy_workers(0)
