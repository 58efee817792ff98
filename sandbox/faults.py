"""Fault injection for drills and crash tests: a controller that dies half-way through a run.

Used by ``tests/sandbox/test_crash.py`` and the controller-stuck runbook. The control plane has
no hook for this: ``python -m sandbox.faults --kill-after-steps N -- ARGS`` runs ``failover ARGS``
in this process with :meth:`Journal.record_steps` wrapped so that the process SIGKILLs itself
once ``N`` steps have journalled their end (the same moment a real crash loses the least); a
write that journals several ends (a level's, with the next level's start) counts each.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from controller.controltable.journal import Journal, StepRecord
from controller.controltable.lease import Lease

log = logging.getLogger(__name__)


def kill_after_steps(
    count: int, kill: Callable[[], None] | None = None, signum: int = signal.SIGKILL
) -> Callable[[], None]:
    """Send ``signum`` (SIGKILL) to this process once ``count`` steps have journalled their end
    (after the write that takes the count to ``count`` or past it); returns the undo.

    ``kill`` replaces the signal (tests of this module pass their own).
    """
    original = Journal.record_steps
    lock = threading.Lock()
    ended = 0

    def die() -> None:
        log.critical("fault injection: signal %d to this controller after %d steps", signum, count)
        os.kill(os.getpid(), signum)

    def record_steps(
        self: Journal, lease: Lease, run_id: str, records: Sequence[StepRecord]
    ) -> None:
        nonlocal ended
        original(self, lease, run_id, records)
        with lock:
            before = ended
            ended += sum(1 for r in records if r.state.finished)
            reached = before < count <= ended  # once: a signal that does not kill is sent once
        if reached:
            (kill or die)()

    Journal.record_steps = record_steps  # type: ignore[method-assign]

    def undo() -> None:
        Journal.record_steps = original  # type: ignore[method-assign]

    return undo


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.faults --kill-after-steps N [--signal S] [--] FAILOVER-ARGS``."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.faults", description=__doc__)
    parser.add_argument("--kill-after-steps", type=int, required=True, metavar="N")
    parser.add_argument(
        "--signal",
        default="KILL",
        choices=["KILL", "TERM", "INT"],
        help="the signal sent (default KILL: a crash; TERM, INT: a stop)",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the failover command's words")
    ns = parser.parse_args(argv)
    words = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    kill_after_steps(ns.kill_after_steps, signum=getattr(signal, f"SIG{ns.signal}"))
    from controller.collector import paused_until_started
    from controller.interfaces.cli import main as failover

    with paused_until_started():  # a process of its own, started as ``failover`` starts
        return failover(words)


if __name__ == "__main__":
    sys.exit(main())
