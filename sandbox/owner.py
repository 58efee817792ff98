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
