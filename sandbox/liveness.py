"""Whether a process still runs, as the sandbox's bookkeeping and the launcher's forks ask it.

Standard library only: the launcher imports it (through :mod:`sandbox.owner`) before forking.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def alive(pid: int) -> bool:
    """True while ``pid`` runs (or is stopped); reaps it when it is our exited child. Another
    user's process under the pid counts as running.

    >>> alive(os.getpid())
    True
    """
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    """True when ``pid`` has exited for good: a zombie none of whose threads still runs (a
    killed server's main thread can be a zombie while another thread is still exiting with the
    server's listening socket open)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        tasks = len(list(Path(f"/proc/{pid}/task").iterdir()))
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z" and tasks <= 1


def output_of(pid: int) -> str:
    """Where ``pid``'s standard output goes ('' when unknown): how a process forked by the
    forkserver, whose command line is the forkserver's, is known (:mod:`sandbox.forkserver`)."""
    try:
        return os.readlink(f"/proc/{pid}/fd/1").removesuffix(" (deleted)")
    except OSError:
        return ""
