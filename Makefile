# Every target installs what it needs into .venv first, so each works on a fresh clone.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
TOUR ?= tour
# Test processes side by side (pytest-xdist); each test group stays on one (tests/conftest.py).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

.PHONY: install tour test test-fast lint lab clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev,scale]"
	touch $@

install: $(VENV)/.installed  ## create .venv with the kit and its test tools

tour: install  ## build the peer and engine environments, run every notebook in quick mode, write $(TOUR)/report.md
	$(BIN)/mlinfra envs build
	$(BIN)/mlinfra run --quick --out $(TOUR)
	$(BIN)/mlinfra report $(TOUR)

test: lint  ## lint, then the whole test suite (unit, servers, notebooks), and the 20 slowest
	$(PYTEST) --durations=20

test-fast: install  ## no notebook executions, browser or slow integration tests (under 3 minutes)
	$(PYTEST) -m "not notebooks and not browser and not slow"

lint: install  ## ruff's checks and its formatting, and mypy over the package and the notebooks, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check mlinfra_kit tests
	$(BIN)/mypy mlinfra_kit --no-error-summary
	$(BIN)/nbqa mypy notebooks --no-error-summary

$(VENV)/.lab: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[lab,dev,scale]"
	touch $@

lab: $(VENV)/.lab  ## open JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(TOUR) runs .pytest_cache .ruff_cache build dist
