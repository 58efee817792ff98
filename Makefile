# The two commands that set up everything on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest bench clean venv

venv: $(STAMP)

# Re-install when pyproject.toml changes (a stale .venv), or create it when missing.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check controller sandbox infra tests bench examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy controller sandbox infra

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/failover demo

bench: $(STAMP)
	$(BIN)/python bench/plan_scaling.py

clean:
	rm -rf $(VENV) .failover .mypy_cache .ruff_cache .pytest_cache .hypothesis
