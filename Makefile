# The course's two commands: `make lab` and `make test`. Both need only python3.
# Versions come from environment.yml (the one place that pins them).
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
OUT     := build/test
NBVAL   := -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=300 -q
export RAY_AUTH_MODE ?= token
export RAY_USAGE_STATS_ENABLED ?= 0
# Tests and CI keep learners' progress files out of the home folder.
export RAYCOURSE_PROGRESS_DIR ?= $(CURDIR)/build/progress

.PHONY: lab test unit notebooks solutions-nb students-nb twice cluster browser workshop after clean

$(STAMP): environment.yml pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	python3 lib/raycourse/tools/pins.py requirements environment.yml > $(VENV)/requirements.txt
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/00_setup.ipynb

notebooks: $(STAMP)  ## regenerate notebooks/ from solutions/
	$(VENV)/bin/raycourse-build

test: $(STAMP)
	rm -rf $(OUT) && mkdir -p $(OUT)
	$(VENV)/bin/raycourse-procs snapshot $(OUT)/ray-before.json
	$(MAKE) --no-print-directory unit solutions-nb students-nb twice cluster browser after

unit:
	$(PY) -m pytest -q tests/unit tests/repo

solutions-nb:  ## every solution cell runs, every check is correct (strict)
	RAYCOURSE_STRICT=1 RAYCOURSE_GRADE_LOG=$(CURDIR)/$(OUT)/solutions.jsonl $(PY) $(NBVAL) solutions/

students-nb:  ## every learner notebook runs; the log records its verdicts
	RAYCOURSE_GRADE_LOG=$(CURDIR)/$(OUT)/notebooks.jsonl $(PY) $(NBVAL) notebooks/

twice:  ## Run All twice in a row in one kernel, strict
	$(PY) -m pytest -q tests/twice

cluster:  ## every solution against a real two-node cluster (head + worker), then exactly its processes stopped
	RAYCOURSE_TEST_OUT=$(CURDIR)/$(OUT) $(PY) -m pytest -q tests/cluster

browser:  ## lesson 01 in JupyterLab driven by headless Chromium: plots render, verdicts show
	bash .ci/install-browser
	$(PY) -m pytest -q tests/browser

workshop: $(STAMP)  ## for instructors: run a local multi-node cluster and print how learners join
	$(VENV)/bin/raycourse-workshop

after:  ## fail-before/pass-after from the logs, and no leaked Ray process
	RAYCOURSE_TEST_OUT=$(CURDIR)/$(OUT) $(PY) -m pytest -q tests/after

clean:
	rm -rf build $(VENV)
