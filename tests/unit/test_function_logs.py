"""The sandbox's in-process functions log where the CLI's logs go, never on its stdout."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from aws_lambda_powertools import Logger

from sandbox.runtime import FUNCTION_LOGS, _logs_to_stderr


def test_powertools_lines_leave_stdout_to_the_cli(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    logger = Logger(service="api-handler-logs-test", level="WARNING")
    _logs_to_stderr()
    with caplog.at_level(logging.WARNING):
        logger.warning("order event not published", extra={"error": "Read timeout"})
    out, _ = capsys.readouterr()
    assert out == ""  # `failover demo --json` prints only its report there
    # into the process's logging (the CLI's handlers: stderr, or the demo's log file), still
    # the function's JSON line
    [record] = [r for r in caplog.records if r.name == FUNCTION_LOGS.name]
    line = json.loads(record.getMessage())
    assert (line["message"], line["error"], record.levelname) == (
        "order event not published",
        "Read timeout",
        "WARNING",
    )
    assert all(
        getattr(h, "stream", None) is not sys.stdout
        for h in logger.handlers
        if hasattr(h, "stream")
    )
