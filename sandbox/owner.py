"""A test's sandbox ends with the process that owns it, however that process ends.

A sandbox's servers and watchers are detached on purpose: ``failover sandbox up`` returns and the
sandbox lives on until ``failover sandbox down``. A test's sandbox is stopped by its fixture, but
a test run killed from outside (SIGTERM, SIGKILL) runs no fixture, and its sandboxes would run on
unseen, taking the machine's CPU. When :data:`ENV` names a process (the test suite names each
worker), every server and watcher started under it watches that process and stops once it is
gone. Standard library only: the launcher imports it before forking.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable

from sandbox.liveness import alive

#: The pid of the process a sandbox started under this environment ends with (unset: none).
ENV = "FAILOVER_SANDBOX_OWNER"
#: Wall seconds between two looks at the owner.
POLL_SECONDS = 1.0


def watch(environ: dict[str, str] | None = None) -> threading.Thread | None:
    """When ``environ`` (default: this process's) names an owner, SIGTERM this process (its own
    way to end: its handler, or none) from a daemon thread once the owner is gone; the thread,
    or None when there is no owner."""
    raw = (os.environ if environ is None else environ).get(ENV, "")
    if not raw.isdigit():
        return None
    owner = int(raw)

    def look() -> None:
        while alive(owner):
            time.sleep(POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=look, name="sandbox-owner", daemon=True)
    thread.start()
    return thread


#: A guardian's whole program (standard library, run isolated): SIGKILL the stopped processes
#: and process groups it names once the owner is gone; end once none of them is stopped.
_GUARDIAN = """
import os, signal, sys, time
owner, pids, groups = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3].split(",")
pids, groups = [int(p) for p in pids if p], [int(g) for g in groups if g]
def state(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"
while any(state(pid) in ("T", "t") for pid in pids + groups):
    if state(owner) in ("X", "Z"):
        for kill, target in [(os.killpg, g) for g in groups] + [(os.kill, p) for p in pids]:
            try:
                kill(target, signal.SIGKILL)
            except OSError:
                pass
        break
    time.sleep(%(poll)s)
"""


#: The guardians this process started, until it sees them end (it reaps them then).
_GUARDS: list[subprocess.Popen[bytes]] = []


def guard(
    pids: Iterable[int], groups: Iterable[int] = (), environ: dict[str, str] | None = None
) -> subprocess.Popen[bytes] | None:
    """When ``environ`` (default: this process's) names an owner, start a detached guardian
    that SIGKILLs ``pids`` and the process ``groups`` once the owner is gone, for as long as
    any of them is stopped (SIGSTOP: a hung region). A stopped process runs no thread, so its
    own :func:`watch` never looks; without this, a test run killed while a region hangs left
    the region's server and watcher stopped for good. The guardian, or None without an owner."""
    raw = (os.environ if environ is None else environ).get(ENV, "")
    if not raw.isdigit():
        return None
    _GUARDS[:] = [g for g in _GUARDS if g.poll() is None]  # the ended ones reaped
    _GUARDS.append(
        guardian := subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                _GUARDIAN % {"poll": POLL_SECONDS},
                raw,
                ",".join(str(pid) for pid in pids),
                ",".join(str(group) for group in groups),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )
    return guardian
