# The two commands that set up everything on a fresh machine: `make test` and `make demo`.

# The interpreter the venv is made from: the system's own CPython where it is 3.11 or newer and
# can make a venv, else python3 on PATH. Debian's /usr/bin/python3.11 is one optimised, statically
# linked binary; pyenv's (this machine's python3) links libpython as a shared library and is built
# without --enable-optimizations. The tests are mostly pure Python (moto, werkzeug, botocore, the
# controller): on 2026-12-06, same tree, two cores, pytest -n 2 took 495 s and 694 s of CPU on
# Debian's 3.11.2, 578 s and 866 s on pyenv's 3.11.7 (a pure-Python loop: 1.49x, median of 5).
SYSTEM_PYTHON := /usr/bin/python3
PYTHON ?= $(shell $(SYSTEM_PYTHON) -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && echo $(SYSTEM_PYTHON) || echo python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
#: Our share of the user's cache: uv's binary, mypy's cache (below).
CACHE  := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/failover

.PHONY: test unit demo lint typecheck pytest bench clean venv bytecode

venv: $(STAMP)

# uv makes the venv and installs into it: one binary, kept with the user's other caches and made
# once per machine (from a throwaway venv's pip: the only step that needs pip and ensurepip), not
# once per clone. Where `python -m venv` (ensurepip: 3.5 s), pip installing pip and uv (2.6 s) and
# uv's install (6.4 s) took 14 s in each fresh clone, `uv venv` and an install from uv's cache take
# 1.5 s (2026-12-07, warm cache). Delete the binary to take a newer uv.
UV := $(CACHE)/uv/uv
$(UV):
	@mkdir -p $(@D)
	@boot=$$(mktemp -d $(@D)/boot.XXXXXX) && $(PYTHON) -m venv $$boot \
	  && $$boot/bin/python -m pip install --quiet uv \
	  && cp $$boot/bin/uv $@.$$$$ && mv -f $@.$$$$ $@; status=$$?; rm -rf $$boot; exit $$status

# Re-install when pyproject.toml changes (a stale .venv), or create it when missing. uv installs
# what pip would (the same versions), downloading in parallel: a new venv in 47 s where pip took
# 84 s (medians of 2, cold caches). It installs from its cache alone first (--offline): asking the
# index whether what the cache holds is still the newest took 5 s of its 6.4; only when the cache
# cannot satisfy pyproject.toml does it ask. So a machine keeps the versions it resolved first
# until pyproject.toml asks for others (`rm -rf .venv; make venv OFFLINE=` takes the index's
# newest); a fresh machine, as CI's, resolves against the index. Not byte-compiled at
# install: the venv holds about 14,000 modules and the tests, servers and CLI import about 1,900
# of them; each is compiled when first imported and its .pyc written for every later process
# (below). uv's --compile-bytecode took 12 s of the install's wall time and 21 s of CPU, before
# any test could start (2026-12-06, warm cache: 15.6 s with it, 3.5 s without). pip is installed
# in the venv: the bundler downloads each function's wheels with it (infra/bundle.py), and
# compiles what a bundle ships itself.
OFFLINE ?= --offline
INSTALL = $(UV) pip install --python $(BIN)/python --quiet -e '.[dev]' pip
$(STAMP): pyproject.toml | $(UV)
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(INSTALL) $(OFFLINE) 2>/dev/null || $(INSTALL)
	@touch $(STAMP)

# Every process make starts writes the bytecode of what it imports (into the venv and this
# checkout's __pycache__ folders, both ignored by git), whatever the caller's environment says:
# with PYTHONDONTWRITEBYTECODE set (as on our CI machines) no process would, and every CLI call,
# server, Lambda runtime and test worker would compile the same modules again (about 0.3 s of
# CPU each for ours, 1.7 s for what a server imports), and pytest would rewrite every test
# module's asserts again in each worker (1.3 s of CPU each).
unexport PYTHONDONTWRITEBYTECODE

# Our own sources, compiled before the test workers start (compileall skips what is up to date,
# and Python still checks each .pyc against its source): the first workers and servers would
# otherwise each compile them at once.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q controller sandbox infra examples

lint: $(STAMP)
	$(BIN)/ruff check controller sandbox infra tests bench examples
	$(BIN)/ruff format --check controller sandbox infra tests bench examples
	$(BIN)/lint-imports

# mypy keeps its cache with the user's other caches (the sandbox's kept stacks, uv's wheels), not
# in the checkout: a fresh clone of a tree checked before checks in 0.4 s, not 14 s of CPU taken
# from the tests beside it. An entry counts only for a module whose source hashes the same (mypy
# hashes a file whose path or mtime differs from its entry's), so another tree's entries cannot
# pass a module they do not describe.
MYPY_CACHE := $(CACHE)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy --cache-dir $(MYPY_CACHE) controller sandbox infra

# Tests that need no emulator: unit, the Pulumi program under mocks, doctests (59 s on 2
# workers, 83 s of CPU: median of 3, 2026-12-06, no test bytecode yet; 63 s and 91 s before the
# Pulumi mocks stopped recording each resource's stack: the minute it should take, just).
unit: bytecode
	$(BIN)/pytest -m "not sandbox" -n $(WORKERS) --dist loadgroup $(UNIT_ARGS)

# Everything, on WORKERS processes (pytest-xdist) and a lane beside them. A module's tests stay on
# one worker, sharing its emulator and module fixtures, unless marked independent
# (tests/conftest.py); each worker has its own sandbox on its own free ports and temporary state
# directory. Three on two cores: a sandbox test spends much of its wall time waiting (a hung
# region's timeouts, the scaled clock's intervals), and a third worker's tests fill it (2026-12-06,
# a cold cache: two took 464 s, 303 s of the cores idle; three 368 s, 116 s idle). Not a fourth
# alike: every test cost more CPU under their load (2026-12-07, back to back: three 381 s and
# 640 s of CPU, four 407 s and 778 s), and a healthy control-table replica's answer outran the demo
# watcher's scaled timeout (1 red in 6 runs); nor the tests that need no emulator in a fourth
# process at nice 10 (7 m 32 s against 7 m 37 s, 77 s more CPU); nor four under a scheduler that
# fitted each group's average cores beside the others' (8 m 10 s against 7 m 04 s: a group's CPU
# comes in bursts). The fourth is a lane (tests/kit/lanes.py): it takes first the groups that
# mostly wait on the scaled clock, a tenth of a core to under half of one, which the three take
# last. On three alone the cores went idle whenever two of those ran at once (2026-12-07, fresh
# clones, `bash .ci/run`: 6 m 23 s with 110 s of the cores idle; with the lane 5 m 54 s and 32 s,
# then 5 m 51 s and 41 s, and 6 m 08 s and 36 s with the machine slower).
WORKERS ?= 3
pytest: bytecode
	$(BIN)/pytest -n $$(($(WORKERS) + 1)) --dist loadgroup

# Lint and type-check run beside the tests, not before them: the tests leave about a quarter of
# the two cores idle (waiting out hung regions' timeouts), which ruff's and mypy's 25 s of CPU
# fill. A failure of either still fails `make test`, once the tests have ended (make waits for
# its jobs). No --output-sync: it would hold pytest's progress until the tests end. No
# prerequisite here: the jobs share the venv and bytecode steps, which the sub-make runs once.
test:
	@$(MAKE) --no-print-directory -j3 lint typecheck pytest

demo: bytecode
	$(BIN)/failover demo

# Every bench, to its figures (minutes, several sandboxes); `make test` runs each in its quick
# mode (tests/sandbox/test_benches.py), so that a change that breaks a bench breaks the build.
bench: bytecode
	@for bench in bench/*.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

clean:
	rm -rf $(VENV) .failover .mypy_cache .ruff_cache .pytest_cache .hypothesis
