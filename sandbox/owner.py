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
import threading
import time
from collections.abc import Callable

from sandbox.liveness import alive

#: The pid of the process a sandbox started under this environment ends with (unset: none).
ENV = "FAILOVER_SANDBOX_OWNER"
#: Wall seconds between two looks at the owner.
POLL_SECONDS = 1.0


def _terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # each process's own way to end (its handler, or none)


def watch(
    environ: dict[str, str] | None = None,
    end: Callable[[], None] = _terminate,
    poll: float = POLL_SECONDS,
) -> threading.Thread | None:
    """When ``environ`` (default: this process's) names an owner, call ``end`` from a daemon
    thread once the owner is gone; the thread, or None when there is no owner."""
    raw = (os.environ if environ is None else environ).get(ENV, "")
    if not raw.isdigit():
        return None
    owner = int(raw)

    def look() -> None:
        while alive(owner):
            time.sleep(poll)
        end()

    thread = threading.Thread(target=look, name="sandbox-owner", daemon=True)
    thread.start()
    return thread
