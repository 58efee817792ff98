"""How a CLI process ends: a verb that only reads and prints may end it at once.

Tearing down the AWS clients' models and joining the threads of a read (a hung region's, waiting
for their socket timeout) cost ``failover status`` about 0.4 s of CPU after its last line
(``bench/status.py``); a verb that has nothing left to write and no child to stop asks
(:func:`leave_at_once`) to skip it. An in-process caller (a test) is never affected.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from typing import NoReturn

#: Set by a verb whose process has nothing left to do once it returns (:func:`leave_at_once`).
_leaving: list[bool] = []
#: Set while :func:`run` runs the command line of a process of its own (``argv`` None).
_own_process: list[bool] = []


def leave_at_once() -> None:
    """Called first by a verb that reads, prints and leaves nothing behind (nothing to write,
    no child to stop): in a process of its own, it runs without the cyclic collector
    (:func:`controller.collector.paused_to_the_end`) and, when it succeeds, its process ends at
    once, without Python's finalization. Tearing down the AWS clients' models and joining the
    threads of a read (a hung region's, waiting for their socket timeout) cost ``failover
    status`` about 0.4 s of CPU after its last line (bench/status.py). An in-process caller (a
    test) is not affected."""
    if _own_process:
        # For good: what the read builds (botocore's service models, every parsed answer) is
        # no garbage before the process ends, and the collector walked it some 240 times in
        # `failover status` (0.1 s of CPU, an eighth of it).
        gc.disable()
    _leaving.append(True)


def leaving() -> bool:
    """Whether the verb that ran asked to end its process at once (and forget it was asked)."""
    asked = bool(_leaving)
    _leaving.clear()
    return asked


def end_process(code: int) -> NoReturn:
    """End this process now with ``code``: the log handlers are flushed, then what was
    printed, and nothing else runs (no atexit handler, no thread join, no module teardown)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (``| head``) or stream
            stream.flush()
    os._exit(code)


def own_process(own: bool) -> None:
    """Say whether the command line that runs now is a process of its own (else in-process)."""
    _own_process[:] = [True] if own else []
