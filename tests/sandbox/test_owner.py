"""A test's sandbox ends with the process that owns it, even when that process is killed and no
fixture stops the sandbox (``sandbox.owner``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import owner
from sandbox.liveness import alive
from tests.kit.paths import EXAMPLE, REPO
from tests.kit.polling import until

pytestmark = pytest.mark.sandbox

#: A test process in miniature: owns a sandbox with its watchers, names every process of it
#: (servers, the launcher's zygote that forks them again, watchers), then waits to be killed.
OWNER = """
import json, os, sys, time
from pathlib import Path
os.environ["{env}"] = str(os.getpid())
from sandbox import Sandbox
box = Sandbox.up(Path(sys.argv[1]), Path(sys.argv[2]))
box.start_watchers()
if sys.argv[3:]:  # a region hung: its server and watcher stopped, they see nothing end
    box.fail(box.topology.regions.primary, sys.argv[3])
pids = [s.pid for s in box.state.servers.values()] + list(box.state.watchers.values())
pids += [box.state.zygote.pid] if box.state.zygote else []
print(json.dumps(pids), flush=True)
time.sleep(600)
"""


def running(pids: list[int]) -> list[int]:
    """The ``pids`` that still run."""
    return [pid for pid in pids if alive(pid)]


@pytest.mark.parametrize("failed", [[], ["hang"]], ids=["running", "primary-hung"])
def test_a_sandbox_ends_with_its_owner_killed_without_a_word(
    sandbox_env: None, tmp_path: Path, failed: list[str]
) -> None:
    """The owner is SIGKILLed (it runs no cleanup): its servers and watchers, detached and in
    sessions of their own, all end within a few of their looks at it; a hung region's too,
    stopped and looking at nothing, through the guardian its hang started."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            OWNER.format(env=owner.ENV),
            str(EXAMPLE),
            str(tmp_path / "s"),
            *failed,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        assert len(pids) >= 4 and running(pids) == pids  # servers and watchers, all up
        proc.kill()
        proc.wait(timeout=30)
        until(lambda: not running(pids), 60, f"the owner's sandbox ends: {running(pids)} left")
    finally:
        proc.kill()
        for pid in running(pids):  # if it did not end, this test still stops what it started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_no_owner_no_watch() -> None:
    """Without an owner named (a user's ``sandbox up``, ``make demo``) nothing watches."""
    assert owner.watch({}) is None
    assert owner.watch({owner.ENV: "not-a-pid"}) is None
