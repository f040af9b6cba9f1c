# Every target creates or reuses the project virtual environment, so a machine with nothing but
# Python 3.11 and make is enough.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Test processes (pytest-xdist): most integration tests wait on a broker, a worker or a browser
# rather than compute, so three share two cores; idle processes take queued tests from busy ones
# (worksteal: the default `load` left one process with the long integration tests at the end).
TEST_WORKERS ?= 3
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench schemas clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=..." >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(BIN)/sla-stream demo

# First the system programs some tests drive (Chromium, Prometheus, Alertmanager, docker-compose):
# installed from Debian where the machine can (root), else those tests skip naming what to install.
test: $(STAMP)
	$(BIN)/python -m tests.system_programs
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

schemas: $(STAMP)
	$(BIN)/sla-stream schemas export

clean:
	rm -rf $(VENV) build *.egg-info
