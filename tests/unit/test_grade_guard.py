"""The grader's defences without a kernel: the static scan, the in-kernel guard, signed verdicts, the judgement.

The forgery cases run for real, in kernels, in test_grade_cli.py; here each
defence is exercised on its own, in this process, so a failure names the piece.
"""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import nbformat
import pytest

from raycourse.tools.classroom import prepare as gradeprep, scan, sentinel
from raycourse.tools.classroom.kernel import Capture, Run
from raycourse.tools.classroom.pool import RaySpec

grade_cli = importlib.import_module("raycourse.tools.classroom.run")
ROOT = Path(__file__).resolve().parents[2]


def _findings(code: str) -> list[str]:
    return [f.what for f in scan.scan([(1, code)])]


@pytest.mark.parametrize("code, expected", [
    ("import raycourse.grading", "the grader's internals"),
    ("from raycourse import record\nrecord.JOURNAL.add(1)", "the grader's internals"),
    ("from raycourse.checks import evidence", "the grader's internals"),
    ("import ray\nray.get = lambda refs: refs", "replaces `ray.get`"),
    ("import ray as r\nr.wait = print", "replaces `ray.wait`"),
    ("import time\ntime.time = lambda: 0.0", "replaces `time.time`"),
    ("from raycourse import timing\ntiming.records = dict", "replaces `raycourse.timing.records`"),
    ("from raycourse import timing\ntiming._channel.clear()", "a private part of raycourse"),
    ("import ray\nray.timeline()", "ray.timeline"),
    ("from ray import timeline", "ray.timeline"),
    ("import sys\nsys.modules['_raycourse_grader'] = 1", "uses `modules`"),
    ("get_ipython().events.register('pre_run_cell', print)", "IPython"),
    ("ip = get_ipython()\ncode = ip.kernel.get_parent()", "get_parent"),
    ("print(In[3])", "reads `In`"),
    ("print(_ih[-1])", "reads `_ih`"),
    ("f.__code__ = g.__code__", "uses `__code__`"),
    ("fake.__class__ = Real", "uses `__class__`"),
    ("getattr(thing, name)", "computed attribute name"),
    ("import ray\nsetattr(ray, 'get', print)", "calls `setattr` on `ray`"),
    ("hidden = '__clo' + 'sure__'", "names `__closure__`"),
    ("import ctypes", "introspection"),
    ("import gc\ngc.get_objects()", "introspection"),
    ("import builtins\nbuiltins.isinstance = lambda *a: True", "replaces `builtins.isinstance`"),
    ("eval('1 + 1')", "uses `eval`"),
    ("%run helper.py", "%run"),
    ("!ls", "shell command"),
    ("import os\nos.environ['RAYCOURSE_STRICT'] = '0'", "RAYCOURSE_STRICT"),
    ("import raycourse\nraycourse.check = print", "replaces `raycourse.check`"),
    ("print('application/vnd.raycourse.verdict+json')", "in a string"),
])
def test_scan_flags_each_way_into_the_grader(code, expected):
    found = _findings(code)
    assert any(expected in what for what in found), found


@pytest.mark.parametrize("code", [
    "import ray\n\n@ray.remote\ndef f(x):\n    return x\n\nresults = ray.get([f.remote(i) for i in range(4)])",
    "ready, pending = ray.wait(pending, num_returns=1)",
    "import numpy as np\nnp.random.seed(0)\nx = np.zeros(3)\nx[0] = 1",
    "@ray.remote(num_cpus=2)\nclass Counter:\n    def __init__(self):\n        self.count = 0\n    def add(self):\n        self.count += 1",
    "%time total = sum(range(10))",
    "from raycourse import plots, timing\nplots.timeline(timing.tasks(f))",
    "import time\nstart = time.time()\nduration = time.time() - start",
    "results = {}\nresults['a'] = 1\nimport sys\nprint(sys.version)",
    "import raycourse\nraycourse.start(num_cpus=4)\nraycourse.check('00.first_task')\nray.shutdown()",
    "from ray.util import ActorPool\npool = ActorPool([A.remote() for _ in range(2)])",
    "this is not python (",
])
def test_scan_leaves_honest_answers_alone(code):
    assert _findings(code) == []


def test_every_course_solution_scans_like_its_own_lesson():
    """A solution may do what the lesson's notebook does (lesson 00 imports raycourse.tools.pins), nothing more."""
    for solution in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")):
        reference = ROOT / "notebooks" / solution.name
        cells = lambda path: [(i, c.source) for i, c in enumerate(nbformat.read(path, as_version=4).cells) if c.cell_type == "code"]
        allowed = {f.what for f in scan.scan(cells(reference))} if reference.exists() else set()
        extra = [str(f) for f in scan.scan(cells(solution)) if f.what not in allowed]
        assert not extra, f"{solution.name}: {extra}"


# --- the guard, in this process ------------------------------------------------------------------


@pytest.fixture
def guard_installed(monkeypatch):
    """The guard as a graded kernel's first cell installs it (without IPython), its messages collected."""
    sent: list[dict] = []
    monkeypatch.delitem(sys.modules, sentinel.CHECKER_MODULE, raising=False)
    sentinel.install("00", output_limit=0, publish=sent.append)
    key = sent[0][sentinel.KEY_MIME]["key"]
    yield sys.modules[sentinel.CHECKER_MODULE], sent, key
    sys.modules.pop(sentinel.CHECKER_MODULE, None)


def _verdict(sent: list[dict], key: str) -> dict:
    payloads = [m[sentinel.VERDICT_MIME] for m in sent if sentinel.VERDICT_MIME in m]
    assert len(payloads) == 1
    record = sentinel.verify(key, payloads[0])
    assert record is not None, "the guard's own verdict must verify"
    return record


def test_guard_signs_an_honest_verdict_with_nothing_to_report(guard_installed, no_strict):
    grader, sent, key = guard_installed
    grader.checker("nonce-1")("00.first_task")
    record = _verdict(sent, key)
    assert record["nonce"] == "nonce-1" and record["exercise"] == "00.first_task"
    assert record["status"] == "not attempted" and record["tampered"] == []


def test_guard_undoes_and_reports_patched_classes_modules_and_functions(guard_installed, monkeypatch, no_strict):
    import time

    import raycourse
    import raycourse.grading as grading
    from raycourse import timing
    from raycourse.checks import lesson00

    grader, sent, key = guard_installed
    original_init, original_grade, original_time = grading.Verdict.__init__, grading.grade, time.time

    def always_correct(self, exercise, status, message, evidence=None):
        original_init(self, exercise, "correct", "Well done.", evidence)

    fake = grading.Verdict("00.first_task", "correct", "Well done.")
    monkeypatch.setattr(grading.Verdict, "__init__", always_correct)
    monkeypatch.setattr(grading, "grade", lambda *a, **k: fake)
    monkeypatch.setattr(raycourse, "check", lambda *a, **k: fake)
    monkeypatch.setitem(grading._REGISTRY, "00.first_task", lambda **answer: "Well done.")
    monkeypatch.setattr(time, "time", lambda: 0.0)
    monkeypatch.setattr(timing, "records", lambda job=None: {})
    monkeypatch.setattr(lesson00.first_task, "__code__", (lambda squares, square: "Well done.").__code__)
    monkeypatch.setitem(sys.modules, "raycourse.grading", type(sys)("raycourse.grading"))
    grader.checker("nonce-2")("00.first_task")
    record = _verdict(sent, key)
    assert record["status"] == "not attempted", record
    tampered = " | ".join(record["tampered"])
    for sign in ("Verdict.__init__", "raycourse.grading.grade", "00.first_task was replaced", "time.time",
                 "raycourse.timing.records", "lesson00.first_task", "sys.modules['raycourse.grading']"):
        assert sign in tampered, (sign, tampered)
    assert grading.Verdict.__init__ is original_init and grading.grade is original_grade and time.time is original_time


def test_a_replaced_checker_cannot_sign(guard_installed):
    grader, sent, key = guard_installed
    body = json.dumps({"nonce": "n", "exercise": "00.first_task", "status": "correct", "message": "x", "tampered": []})
    assert sentinel.verify(key, {"body": body, "mac": "0" * 64}) is None
    assert sentinel.verify(key, {"body": body}) is None and sentinel.verify(key, "junk") is None


# --- judging what came back ------------------------------------------------------------------------


def _signed(key: str, record: dict) -> dict:
    import hashlib
    import hmac

    body = json.dumps(record, sort_keys=True)
    return {"body": body, "mac": hmac.new(bytes.fromhex(key), body.encode(), hashlib.sha256).hexdigest()}


@pytest.fixture
def lesson00_plan():
    lessons = gradeprep.load_course(ROOT)
    nb = nbformat.read(ROOT / "solutions" / "00_setup.ipynb", as_version=4)
    return gradeprep.prepare(nb, lessons["00"]), lessons["00"]


def _run(plan, key: str, payloads: list[dict], strays: tuple[str, ...] = ()) -> Run:
    cell = plan.check_cell["00.first_task"]
    return Run(None, len(plan.nb.cells), Capture(key, {cell: payloads}, list(strays)))


def test_judge_takes_the_signed_verdict_for_its_nonce(lesson00_plan):
    plan, lesson = lesson00_plan
    key = "ab" * 32
    genuine = _signed(key, {"nonce": plan.nonces["00.first_task"], "exercise": "00.first_task", "status": "correct",
                            "message": "Five square tasks ran.", "tampered": []})
    [(exercise, status, message)] = grade_cli.judge(plan, lesson, _run(plan, key, [genuine]), [])
    assert (exercise, status) == ("00.first_task", "correct") and "Five square" in message


@pytest.mark.parametrize("case, sign", [
    ("finding", "its code cell 3"),
    ("forged", "did not sign"),
    ("twice", "more than once"),
    ("stray", "grader-only output"),
    ("tampered", "found and undid"),
    ("other nonce", "did not sign"),
])
def test_judge_turns_a_correct_verdict_into_needs_review(lesson00_plan, case, sign):
    plan, lesson = lesson00_plan
    key = "cd" * 32
    record = {"nonce": plan.nonces["00.first_task"], "exercise": "00.first_task", "status": "correct", "message": "ok",
              "tampered": ["`ray.get` was replaced"] if case == "tampered" else []}
    payloads = [_signed(key, record)]
    if case == "forged":
        payloads.insert(0, {"body": json.dumps({**record, "status": "correct"}), "mac": "0" * 64})
    if case == "twice":
        payloads.append(_signed(key, record))
    if case == "other nonce":
        payloads.append(_signed(key, {**record, "nonce": "not this cell's"}))
    findings = [scan.Finding(3, 1, "replaces `ray.get`")] if case == "finding" else []
    strays = ("a grader-only output was shown in cell 4 (display)",) if case == "stray" else ()
    [(_, status, message)] = grade_cli.judge(plan, lesson, _run(plan, key, payloads, strays), findings)
    assert status == "needs review" and sign in message, message


def test_judge_without_a_signed_verdict_is_never_correct(lesson00_plan):
    plan, lesson = lesson00_plan
    forged = {"body": json.dumps({"nonce": plan.nonces["00.first_task"], "exercise": "00.first_task",
                                  "status": "correct", "message": "ok", "tampered": []}), "mac": "f" * 64}
    [(_, status, message)] = grade_cli.judge(plan, lesson, _run(plan, "ee" * 32, [forged]), [])
    assert status == "error" and "needs review" in message and "did not sign" in message


def test_a_kernel_the_guard_never_reached_is_an_error_not_a_forgery(lesson00_plan):
    plan, lesson = lesson00_plan
    [(_, status, message)] = grade_cli.judge(plan, lesson, Run("timed out after 300 s while the grader was setting the kernel up", 0, Capture()), [])
    assert status == "error" and "could not set the kernel up" in message and "review" not in message


def test_ray_that_could_not_start_is_recognised(lesson00_plan):
    plan, _ = lesson00_plan
    assert grade_cli.ray_setup_failure(plan) is None
    start = next(c for c in plan.nb.cells if "raycourse.start(" in c.source)
    start.outputs = [nbformat.v4.new_output("error", ename="CourseSetupError", evalue="Ray could not start in time", traceback=[])]
    assert "Ray could not start" in grade_cli.ray_setup_failure(plan)


def test_a_kernel_that_died_while_ray_started_is_the_machine_not_the_learner(lesson00_plan):
    plan, _ = lesson00_plan
    start = next(i for i, c in enumerate(plan.nb.cells) if c.cell_type == "code" and "raycourse.start(" in c.source)
    later = next(i for i, c in enumerate(plan.nb.cells) if i > start and c.cell_type == "code")
    died = "kernel died in cell 3: the code crashed Python (os._exit, a segfault or out of memory)"
    assert "died while Ray was starting" in grade_cli.ray_setup_failure(plan, Run(died, start, Capture()))
    assert grade_cli.ray_setup_failure(plan, Run(died, later, Capture())) is None  # the learner's own cell: theirs


# --- what Ray a notebook asks for --------------------------------------------------------------------


@pytest.mark.parametrize("code, calls, own", [
    ("raycourse.start(num_cpus=4)", [{"num_cpus": 4}], False),
    ("raycourse.start(8, num_gpus=2, resources={'Custom': 4})", [{"num_cpus": 8, "num_gpus": 2, "resources": {"Custom": 4}}], False),
    ("raycourse.start(num_cpus=4, object_store_memory=400 * 1024**2)", [{"num_cpus": 4, "object_store_memory": 400 * 1024**2}], False),
    ("n = 4\nraycourse.start(num_cpus=n)", None, False),
    ("ray.init()", [], True),
    ("ray.init(address=cluster.address)", [], False),
    ("print('no ray here')", [], False),
])
def test_start_arguments_are_read_from_the_learners_cells(code, calls, own):
    assert gradeprep.start_arguments([(1, code)]) == (calls, own)


def test_a_slot_is_sized_like_the_learners_own_ray():
    assert RaySpec.from_start({"num_cpus": 8, "resources": {"Custom": 4}}, {}) == RaySpec(8, 0, (("Custom", 4.0),), None)
    assert RaySpec.from_start({"num_cpus": 4}, {"COURSE_NUM_CPUS": "1"}).cpus == 1
    assert RaySpec.from_start({"object_store_memory": 400 * 1024**2}, {}).object_store_mb == 400
    assert RaySpec.from_start({"num_cpus": 4, "runtime_env": {}}, {}) is None  # something a shared Ray cannot give
    assert RaySpec.from_start({"num_cpus": "four"}, {}) is None


# --- preparing the notebook that runs ------------------------------------------------------------------


def test_prepare_replaces_edited_check_keeps_learner_code_and_reports_unplaceable():
    lessons = gradeprep.load_course(ROOT)
    nb = nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    check = next(c for c in nb.cells if c.cell_type == "code" and 'raycourse.check("00.first_task"' in c.source)
    check.source = 'extra = 1\nraycourse.check("00.first_task", squares=[0, 1, 4, 9, 16], since=0)'
    plan = gradeprep.prepare(nb, lessons["00"])
    sources = [c.source for c in plan.nb.cells]
    graded_check = sources[plan.check_cell["00.first_task"]]
    assert f'checker("{plan.nonces["00.first_task"]}")' in graded_check and "raycourse.check" not in graded_check
    assert "squares=[0, 1, 4, 9, 16]" not in graded_check  # the course's pristine call, not the learner's
    assert sources[plan.check_cell["00.first_task"] - 1] == "extra = 1\n"
    assert "edited" in plan.notes["00.first_task"]
    assert plan.origin[0] is None and "sentinel.install(" in sources[0] and plan.silent == {0, plan.check_cell["00.first_task"]}

    orphan = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("squares = [0, 1, 4, 9, 16]")])
    plan = gradeprep.prepare(orphan, lessons["00"])
    assert "could not tell where it belongs" in plan.errors["00.first_task"]


def test_every_check_cell_gets_its_own_nonce():
    lessons = gradeprep.load_course(ROOT)
    nb = nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    first, second = gradeprep.prepare(nb, lessons["00"]), gradeprep.prepare(nb, lessons["00"])
    assert first.nonces["00.first_task"] != second.nonces["00.first_task"]


def test_another_lesson_and_unrelated_notebooks_are_told_apart():
    lessons = gradeprep.load_course(ROOT)
    lesson01 = nbformat.read(ROOT / "notebooks" / "01_tasks.ipynb", as_version=4)
    with pytest.raises(gradeprep.Problem, match="This is lesson 01"):
        gradeprep.check_lesson(lesson01, lessons["00"], lessons)
    unrelated = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    with pytest.raises(gradeprep.Problem, match="does not look like lesson 00"):
        gradeprep.check_lesson(unrelated, lessons["00"], lessons)
    gradeprep.check_lesson(nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4), lessons["00"], lessons)


@pytest.mark.parametrize("data, reason", [
    (b"", "is empty (0 bytes)"), (b"{ not json", "invalid JSON"), (b"[1, 2]", "not a Jupyter notebook"),
    (b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "no cells"),
    (b"[" * 100_000 + b"]" * 100_000, "not a notebook"),
])
def test_unreadable_notebooks_say_why(data, reason):
    with pytest.raises(gradeprep.Problem, match=reason.replace("(", r"\(").replace(")", r"\)")):
        gradeprep.read_notebook(data, "x.ipynb")
