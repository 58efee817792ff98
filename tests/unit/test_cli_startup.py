"""A ``failover`` process starts without the cyclic garbage collector and runs its verb with it
(``controller.collector``); a caller that runs the CLI in-process keeps its own
collector. ``failover status`` ends its process as soon as it has printed, without Python's
finalization, also when every region hangs."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.interfaces.cli import main
from controller.topology import load
from controller.topology.manifest import Manifest
from tests.kit.manifests import fake_manifest, write_manifest
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


#: Runs ``failover ARGV`` as its own process would, with an atexit handler that says when
#: Python's finalization ran (threads joined, then atexit handlers, then module teardown).
FINALIZED = """
import atexit, gc, sys
atexit.register(lambda: print("finalized", file=sys.stderr))
from controller.interfaces import views
collections = []
gc.callbacks.append(lambda phase, info: phase == "stop" and collections.append(1))
real = views.read_status
def read_status(*args, **kwargs):
    before = len(collections)
    try:
        return real(*args, **kwargs)
    finally:
        print(f"collections in the read: {len(collections) - before}", file=sys.stderr)
views.read_status = read_status
from controller.interfaces.cli import main
sys.argv = ["failover", *sys.argv[1:]]
main()
"""


@contextlib.contextmanager
def hung_endpoint() -> Iterator[str]:
    """A loopback port that takes connections and never answers (a hung region's servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # never accepted: every request waits for its read timeout
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_status_with_every_region_hung_prints_everything_and_ends_without_finalization(
    tmp_path: Path,
) -> None:
    topology = load(EXAMPLE)
    with hung_endpoint() as url:
        dead = fake_manifest(topology)
        manifest = Manifest.model_validate(
            dead.model_dump() | {"endpoints": dict.fromkeys(dead.endpoints, url)}
        )
        path = write_manifest(tmp_path, manifest)
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                FINALIZED,
                "status",
                "--json",
                "--timeout",
                "1",
                "-m",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "FAILOVER_CACHE_DIR": str(tmp_path / "cache")},
        )
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)  # all of it, flushed before the process ended
    assert {r["health"] for r in view["regions"].values()} == {"unreachable"}
    assert set(view["regions"]) == set(topology.regions.all)
    assert "error" in view["control"]
    # No finalization: the hung reads' threads were not joined, nothing was torn down.
    assert "finalized" not in done.stderr
    # The collector did not walk what the read built (botocore's models, the answers).
    assert "collections in the read: 0\n" in done.stderr


def test_status_in_process_leaves_the_callers_collector_on(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, fake_manifest(load(EXAMPLE)))
    assert gc.isenabled()
    assert main(["status", "--json", "--timeout", "1", "-m", str(path)]) == 0
    assert gc.isenabled()


def test_a_status_that_fails_still_ends_the_usual_way(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-manifest.json"
    done = subprocess.run(
        [sys.executable, "-c", FINALIZED, "status", "--json", "-m", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "finalized" in done.stderr and "no-such-manifest.json" in done.stderr


@pytest.mark.parametrize(
    ("argv", "asks"),
    [
        (("execute", "--to", "us-west-2", "--dry-run"), True),
        (("reconcile", "--dry-run"), True),
        (("execute", "--to", "us-west-2", "--yes"), False),
    ],
    ids=["execute-dry-run", "reconcile-dry-run", "execute"],
)
def test_a_dry_run_ends_its_process_as_status_does(
    argv: tuple[str, ...], asks: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dry run only reads and prints: it asks to end its process at once, without Python's
    finalization (``reconcile --dry-run`` 1.45 -> 1.0 s of CPU, ``execute --dry-run`` 0.88 ->
    0.78 s, medians of 6). A run that acts ends the usual way."""
    from controller.interfaces.cli import execute_cmds, watch_cmds

    asked: list[str] = []
    for module in (execute_cmds, watch_cmds):
        monkeypatch.setattr(module, "leave_at_once", lambda: asked.append(argv[0]))
    path = write_manifest(tmp_path, fake_manifest(load(EXAMPLE)))  # nothing answers
    main([*argv, "-m", str(path)])
    assert bool(asked) is asks
