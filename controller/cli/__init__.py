"""The ``failover`` command: parses, calls one function below, renders; nothing else.

Each group of verbs lives in its own module and registers itself on :data:`app`. The one error
boundary, :func:`main`, turns any :class:`~controller.errors.FailoverError` into one red line and
its exit code, and Ctrl-C into 130.
"""

from __future__ import annotations

import os
import sys

from controller.cli.app import app, console, err_console, run


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script's entry point)."""
    # The CLI uses no pydantic plugin; looking for them scans every installed distribution's
    # entry points (~20 ms of each command's start-up). An explicit setting still wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from controller.cli import plan_cmds  # noqa: F401  (registers the verbs)

    for module in ("sandbox_cmds", "status_cmds", "execute_cmds", "watch_cmds", "demo_cmds",
                   "drill_cmds", "serve_cmds"):
        try:
            __import__(f"controller.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"controller.cli.{module}":
                raise
    code = run(app, argv)
    if argv is None:
        sys.exit(code)
    return code


__all__ = ["app", "console", "err_console", "main"]
