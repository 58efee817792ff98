"""The ``failover`` CLI run in-process, and what it returned and printed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CliResult:
    """What one CLI run returned and printed."""

    code: int
    out: str
    err: str
