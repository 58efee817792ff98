# The two commands that set up everything on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test unit demo lint typecheck pytest bench clean venv

venv: $(STAMP)

# Re-install when pyproject.toml changes (a stale .venv), or create it when missing.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check controller sandbox infra tests bench examples
	$(BIN)/ruff format --check controller sandbox infra tests bench examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy controller sandbox infra

# Tests that need no emulator: unit, the Pulumi program under mocks, doctests (about 50 s on
# 2 workers; 72 s in one process).
unit: $(STAMP)
	$(BIN)/pytest -m "not sandbox" -n $(WORKERS) --dist loadgroup $(UNIT_ARGS)

# Everything, on WORKERS processes (pytest-xdist). A module's tests stay on one worker, sharing
# its emulator and module fixtures, unless marked independent (tests/conftest.py); each worker
# has its own sandbox on its own free ports and temporary state directory.
WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/failover demo

bench: $(STAMP)
	$(BIN)/python bench/plan_scaling.py

clean:
	rm -rf $(VENV) .failover .mypy_cache .ruff_cache .pytest_cache .hypothesis
