# Two commands do all set-up: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run in parallel processes (pytest-xdist); each test has its own databases and ports.
TEST_WORKERS ?= 2

.PHONY: run test lint bench demo clean eval eval-baseline
# The eval gate: every incident replayed, compared with the committed baseline report.
EVAL_OUT ?= .autopilot/evals

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/autopilot serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --durations=15
	$(MAKE) eval

eval: $(STAMP)
	$(BIN)/python -m evals.build --check
	$(BIN)/autopilot eval run all --version candidate --out $(EVAL_OUT)/candidate.json --quiet
	$(BIN)/autopilot eval compare --baseline evals/baseline.json --candidate $(EVAL_OUT)/candidate.json

eval-baseline: $(STAMP)
	$(BIN)/autopilot eval run all --version baseline --out evals/baseline.json --compact --keep $(EVAL_OUT)/baseline.d

demo: $(STAMP)
	$(BIN)/autopilot demo

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/spine_overhead.py
	$(BIN)/python bench/policy_decisions.py
	$(BIN)/python bench/gateway_overhead.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/service_latency.py
	$(BIN)/python bench/evals.py

clean:
	rm -rf $(VENV) .autopilot .pytest_cache
