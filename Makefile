# The course's two commands: `make lab` and `make test`. Both need only python3.
# Versions come from environment.yml (the one place that pins them).
VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
OUT     := $(CURDIR)/build/test
export RAY_AUTH_MODE ?= token
export RAY_USAGE_STATS_ENABLED ?= 0
# Tests and CI keep learners' progress files out of the home folder, and start no Ray dashboard
# (tests/unit checks the dashboard link on its own).
export RAYCOURSE_PROGRESS_DIR ?= $(CURDIR)/build/progress
export COURSE_DASHBOARD ?= 0
export RAYCOURSE_TEST_OUT := $(OUT)
# Notebooks executed at once: their tasks mostly sleep, so a little more than the cores.
JOBS    ?= $(shell $(PY) -c "import os; print(max(2, (3 * (os.cpu_count() or 1)) // 2))" 2>/dev/null || echo 2)

.PHONY: lab test acceptance quick stress unit solutions learners browser cluster after notebooks workshop clean

$(STAMP): environment.yml pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	python3 lib/raycourse/tools/pins.py requirements environment.yml > $(VENV)/requirements.txt
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

lab: $(STAMP)  ## open JupyterLab on the learners' notebooks
	$(BIN)/jupyter lab notebooks/00_setup.ipynb

test: $(STAMP)  ## CI: unit tests and catalogues, solutions twice, learner notebooks once, then the logs and leaks
	rm -rf $(OUT) && mkdir -p $(OUT)
	$(BIN)/raycourse-procs snapshot $(OUT)/ray-before.json
	$(BIN)/raycourse-stages unit solutions learners after

acceptance: $(STAMP)  ## what a learner and an instructor see: every lesson in Chromium, start routes, the cluster, the board
	mkdir -p $(OUT)
	$(BIN)/raycourse-stages browser cluster

quick: $(STAMP)  ## the inner loop: unit tests, and lesson 00 end to end
	$(PY) -m pytest -q tests/unit tests/repo tests/catalogue/test_lesson00_01.py -k "not lesson01"
	$(BIN)/raycourse-execute solutions/00_setup.ipynb --runs 2 --strict

unit:  ## unit tests, repository checks, and every exercise's adversarial catalogue
	$(PY) -m pytest -q -n 2 --dist loadfile --max-worker-restart 0 --durations 25 tests/unit tests/repo tests/catalogue

solutions:  ## every solution: Run All twice in one kernel, strict (right, idempotent, clean outputs)
	$(BIN)/raycourse-execute solutions/[0-9]*.ipynb --runs 2 --strict --jobs $(JOBS) --log $(OUT)/solutions.jsonl

learners:  ## every learner notebook once, headless: runs top to bottom, no check passes on the starter code
	$(BIN)/raycourse-execute notebooks/[0-9]*.ipynb --jobs $(JOBS) --log $(OUT)/notebooks.jsonl

browser:  ## every learner notebook once in JupyterLab + offline Chromium; start routes
	bash .ci/install-browser
	$(PY) -m pytest -q -s tests/browser

cluster:  ## the solutions as several learners at once on a two-node workshop cluster
	$(PY) -m pytest -q -s tests/cluster

after:  ## fail-before/pass-after from the logs, and no leaked Ray process
	$(PY) -m pytest -q tests/after

stress:  ## not in `make test`: every solution's checks 10 times beside two busy loops
	RAYCOURSE_STRESS_RUNS=10 $(PY) -m pytest -q -p no:randomly tests/catalogue -k right

notebooks: $(STAMP)  ## regenerate notebooks/ from solutions/
	$(BIN)/raycourse-build

workshop: $(STAMP)  ## for instructors: run a local multi-node cluster and print how learners join
	$(BIN)/raycourse-workshop

clean:
	rm -rf build $(VENV)
