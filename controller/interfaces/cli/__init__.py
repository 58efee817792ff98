"""The ``failover`` command: parses, calls one function below, renders; nothing else.

Each group of verbs lives in its own module and registers itself on :data:`app`. The one error
boundary, :func:`main`, turns any :class:`~controller.errors.FailoverError` into one red line and
its exit code, and Ctrl-C into 130.
"""

from __future__ import annotations

import os
import sys

from controller.collector import paused_until_started
from controller.interfaces.cli.app import app, console, err_console, run
from controller.interfaces.cli.ending import end_process, leaving

#: Every verb: the module (under ``controller.interfaces.cli``) that defines it, and its one-line
#: help. ``failover --help`` lists them from here and imports no verb's module: each would cost the
#: help a few milliseconds (bench/cli_startup.py); a verb's module is imported when it runs.
#: tests/unit/test_cli_verbs.py keeps this table equal to what the modules register.
VERBS: dict[str, tuple[str, str]] = {
    "validate": ("plan_cmds", "Check a topology file: schema, regions, references, cycles."),
    "graph": ("plan_cmds", "Show the dependency graph (an edge A -> B means A needs B)."),
    "plan": (
        "plan_cmds",
        "Show the ordered failover plan: fence the source, activate the target, traffic last.",
    ),
    "status": (
        "status_cmds",
        "Show every component's state and health in every region (regions as columns).",
    ),
    "execute": (
        "execute_cmds",
        "Fail over: fence the source, activate the target dependencies first, traffic last.",
    ),
    "failback": (
        "execute_cmds",
        "Go back to the original primary, once it is healthy again, with the same machinery.",
    ),
    "resume": (
        "execute_cmds",
        "Continue a run whose controller died: take the lease anew, redo what is not done.",
    ),
    "runs": ("execute_cmds", "List the journalled runs, newest first."),
    "reconcile": (
        "watch_cmds",
        "Converge every region to the control table's active region: "
        "fence the others, re-activate what drifted, take over a run whose "
        "controller died.",
    ),
    "watchers": (
        "watch_cmds",
        "The last decision of each region's watcher, and where its logs "
        "are (exit 1 when a region's watcher has been silent for three minutes).",
    ),
    "watch": (
        "watch_cmds",
        "Watch every region; fail over when the active one fails (one JSON line per decision).",
    ),
    "demo": (
        "demo_cmds",
        "Deploy the example to the emulator, send traffic, fail a region, fail over, report.",
    ),
    "drill": (
        "drill_cmds",
        "Game day: on the sandbox, the demo's story and report; on AWS, only plan and prechecks.",
    ),
    "serve": (
        "serve_cmds",
        "Serve a live status page (and its JSON API) of every region, run and watcher.",
    ),
    "sandbox": ("sandbox_cmds", "The embedded AWS emulator: one moto server per region."),
    "automation": ("watch_cmds", "Pause or resume automatic failover (for every watcher)."),
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script's entry point)."""
    # The CLI uses no pydantic plugin; looking for them scans every installed distribution's
    # entry points (~20 ms of each command's start-up). An explicit setting still wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    leaving()  # only the verb that runs now may ask
    if argv is not None:  # called in-process (tests): the caller's collector is not ours
        return run(app, argv, VERBS)
    with paused_until_started():  # a process of its own: start without the collector
        code = run(app, argv, VERBS)
        if leaving() and code == 0:  # a read that printed everything: no finalization to pay
            end_process(code)  # within the block: a collector paused by the verb stays paused
    sys.exit(code)


__all__ = ["VERBS", "app", "console", "err_console", "main"]
