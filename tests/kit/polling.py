"""Waiting for a condition: tests wait for what they expect, never for a duration."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(what: Callable[[], T | None], seconds: float, message: str, every: float = 0.25) -> T:
    """Poll ``what`` every ``every`` wall seconds until it returns something truthy, and return
    it; fail with ``message`` once ``seconds`` of wall time have passed (a deadline for a
    machine that may be slow, never the duration under test)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"{message} (after {seconds:.0f} s)")
