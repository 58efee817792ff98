"""The mode a function serves in, read from SSM through powertools Parameters with caching.

Called by every answer: the API and the consumers ask :meth:`ModeReader.current` once per
invocation. A warm container re-reads SSM at most every ``max_age`` seconds, so a failover is
seen within seconds without one SSM call per request.

Rules:

- the component's own parameter wins when it holds a mode; ``normal`` (its value at deploy time)
  or a missing parameter means "follow the region's parameter";
- on an error reading SSM the last known mode is kept for up to ``stale_seconds``, and the read
  is not retried before ``max_age`` (a failing SSM is not hammered);
- with no usable last known mode the reader answers its ``unknown`` mode, chosen by the caller
  to be safe: ``read_only`` for the API (serve reads, refuse writes: this region may have been
  fenced), ``standby`` for consumers (consume nothing, the messages wait in the queue).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

ACTIVE = "active"
STANDBY = "standby"
FENCED = "fenced"
READ_ONLY = "read_only"
QUEUE_WRITES = "queue_writes"
STATIC = "static"
UNAVAILABLE = "unavailable"
NORMAL = "normal"
MODES = frozenset({ACTIVE, STANDBY, FENCED, READ_ONLY, QUEUE_WRITES, STATIC, UNAVAILABLE})


class ModeReader:
    """The current mode of one function in one region (thread-safe enough: dict updates only)."""

    def __init__(self, provider: SSMProvider, region_parameter: str,
                 component_parameter: str | None = None, *, max_age: int = 5,
                 unknown: str = STANDBY, stale_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        self.region_parameter = region_parameter
        self.component_parameter = component_parameter
        self.max_age = max_age
        self.unknown = unknown
        self.stale_seconds = stale_seconds
        self.clock = clock
        self._last: tuple[str, float] | None = None
        self._retry_at = 0.0
        self._absent_until: dict[str, float] = {}

    def current(self) -> str:
        """The mode to answer in now; never raises."""
        now = self.clock()
        if now >= self._retry_at:
            try:
                mode = self._read(now)
            except GetParameterError:
                self._retry_at = now + self.max_age
            else:
                self._last = (mode, now)
                return mode
        if self._last and now - self._last[1] <= self.stale_seconds:
            return self._last[0]
        return self.unknown

    def _read(self, now: float) -> str:
        if self.component_parameter:
            own = self._value(self.component_parameter, now)
            if own in MODES:
                return own
        region = self._value(self.region_parameter, now)
        if region is None:
            return STANDBY  # never written: this region was not made to serve
        return region if region in MODES else self.unknown

    def _value(self, name: str, now: float) -> str | None:
        """The parameter's value (cached by powertools), or None while it is known to be absent."""
        if self._absent_until.get(name, 0.0) > now:
            return None
        try:
            value: Any = self.provider.get(name, max_age=self.max_age)
        except GetParameterError as exc:
            if "ParameterNotFound" not in str(exc):
                raise
            self._absent_until[name] = now + self.max_age
            return None
        return str(value).strip() if value is not None else None
