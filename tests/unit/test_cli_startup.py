"""A ``failover`` process starts without the cyclic garbage collector and runs its verb with it
(``controller.collector``); a caller that runs the CLI in-process keeps its own
collector."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import pytest

from controller.interfaces.cli import main
from tests.kit.paths import EXAMPLE

#: Runs ``failover ARGV`` as its own process would, and prints what the collector was doing when
#: the verb read the topology, and after the process's last line of ours.
PROBE = """
import atexit, gc, json, sys
import controller.topology as spec
seen = {}
real = spec.load
def load(*args, **kwargs):
    seen["in_verb"] = gc.isenabled()
    seen["frozen_in_verb"] = gc.get_freeze_count()
    return real(*args, **kwargs)
spec.load = load
atexit.register(lambda: print(json.dumps(seen | {"at_exit": gc.isenabled()}), file=sys.stderr))
from controller.interfaces.cli import main
sys.argv = ["failover", *sys.argv[1:]]
main()
"""


def probe(*argv: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    return done.returncode, json.loads(done.stderr.strip().splitlines()[-1])


def test_the_verb_runs_with_the_collector_and_start_up_is_frozen() -> None:
    code, seen = probe("validate", "--spec", str(EXAMPLE))
    assert code == 0, seen
    assert seen["in_verb"] is True
    assert isinstance(seen["frozen_in_verb"], int) and seen["frozen_in_verb"] > 10_000
    assert seen["at_exit"] is True


def test_a_command_that_never_reaches_its_verb_gives_the_collector_back() -> None:
    code, seen = probe("plan", "--no-such-option")
    assert code == 2
    assert "in_verb" not in seen  # the verb never ran
    assert seen["at_exit"] is True


def test_in_process_the_callers_collector_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    froze: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: froze.append(1))
    gc.disable()
    try:
        assert main(["validate", "--spec", str(EXAMPLE)]) == 0
        assert not gc.isenabled()  # still the caller's choice
    finally:
        gc.enable()
    assert main(["validate", "--spec", str(EXAMPLE)]) == 0
    assert gc.isenabled()
    assert froze == []
