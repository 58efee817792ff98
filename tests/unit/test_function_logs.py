"""The sandbox's in-process functions log where the CLI's logs go, never on its stdout."""

from __future__ import annotations

import sys

import pytest
from aws_lambda_powertools import Logger

from sandbox.runtime import _logs_to_stderr


def test_powertools_lines_leave_stdout_to_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    logger = Logger(service="api-handler-logs-test", level="WARNING")
    _logs_to_stderr()
    logger.warning("order event not published")
    out, err = capsys.readouterr()
    assert out == ""  # `failover demo --json` prints only its report there
    assert "order event not published" in err
    assert all(getattr(h, "stream", None) is not sys.stdout
               for h in logger.handlers if hasattr(h, "stream"))
