# The two commands that set up everything on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test unit demo lint typecheck pytest bench clean venv bytecode

venv: $(STAMP)

# Re-install when pyproject.toml changes (a stale .venv), or create it when missing.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# pip byte-compiles what it installs, but not the sources of an editable install, and with
# PYTHONDONTWRITEBYTECODE set (as on our CI machines) no process writes them either: every CLI call,
# server and test worker would compile the same modules again, about 0.3 s of CPU each. Compiled
# here, they are read by all; compileall skips what is up to date, and Python still checks each
# .pyc against its source.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q controller sandbox infra examples

lint: $(STAMP)
	$(BIN)/ruff check controller sandbox infra tests bench examples
	$(BIN)/ruff format --check controller sandbox infra tests bench examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy controller sandbox infra

# Tests that need no emulator: unit, the Pulumi program under mocks, doctests (about 45 s on
# 2 workers; 72 s in one process). They only compute: a worker per core.
UNIT_WORKERS ?= 2
unit: bytecode
	$(BIN)/pytest -m "not sandbox" -n $(UNIT_WORKERS) --dist loadgroup $(UNIT_ARGS)

# Everything, on WORKERS processes (pytest-xdist). A module's tests stay on one worker, sharing
# its emulator and module fixtures, unless marked independent (tests/conftest.py); each worker
# has its own sandbox on its own free ports and temporary state directory. Three workers on two
# cores: the sandbox's tests spend about a quarter of their time waiting (a hung region's
# timeouts, a watcher's interval), which the third fills (pytest 463 s -> 414 s on 2 cores).
WORKERS ?= 3
pytest: bytecode
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup

# Everything CI runs. The type check runs beside the tests and prints when they end: cold (a
# fresh clone) it takes about a minute of one core, most of it pulumi-aws's stubs, and the
# tests leave that much idle while they wait on timeouts. Either failing fails the target.
test: lint bytecode
	@$(BIN)/mypy controller sandbox infra > $(VENV)/typecheck.log 2>&1 & checking=$$!; \
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup; tests=$$?; \
	wait $$checking; types=$$?; echo "mypy controller sandbox infra:"; cat $(VENV)/typecheck.log; \
	exit $$(( tests ? tests : types ))

demo: bytecode
	$(BIN)/failover demo

bench: $(STAMP)
	$(BIN)/python bench/plan_scaling.py

clean:
	rm -rf $(VENV) .failover .mypy_cache .ruff_cache .pytest_cache .hypothesis
