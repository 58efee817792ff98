"""The one time source of the controller and the sandbox: AWS's time.

Every module that reads the time (epoch seconds, a monotonic reading, a sleep, a wait with a
deadline) calls this one, never :mod:`time` itself. On AWS it is the real clock. In the sandbox,
every process it runs reads ``FAILOVER_TIME_ORIGIN`` and ``FAILOVER_TIME_SCALE`` from its
environment (or a sandbox manifest's ``clock``) and runs on AWS time::

    aws = origin + k * (wall - origin)

so that every period the deployment configures (a watcher's schedule and interval, Route 53's
interval and threshold, a TTL, an alarm's period, the lease, the cooldown) runs unchanged and
takes 1/k of its time on the wall, and an epoch timestamp one process writes to the control table
is the same AWS instant to every other. What is not AWS time stays wall time: a socket's connect
and read timeouts (botocore's), the emulator's own CPU. :func:`wall` converts a span of AWS
seconds for an API that only takes wall seconds (``concurrent.futures.wait``, a join).

>>> scaled = Clock(origin=1000.0, scale=10.0, wall_time=lambda: 1001.0)
>>> scaled.now()  # one wall second after the origin is ten AWS seconds
1010.0
>>> scaled.wall(30.0)  # Route 53's 3 x 10 s takes 3 s on the wall
3.0
>>> Clock().scale  # no environment: the real clock
1.0
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.contract import ENV_TIME_ORIGIN, ENV_TIME_SCALE
from controller.errors import SpecError


@dataclass(frozen=True)
class Clock:
    """AWS time at ``scale`` times the wall's pace from ``origin`` (epoch seconds, wall).

    ``scale`` 1 is the real clock, whatever the origin.
    """

    origin: float = 0.0
    scale: float = 1.0
    wall_time: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    wall_monotonic: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise SpecError(f"time scale {self.scale!r} is not a positive number", source="clock")

    def now(self) -> float:
        """AWS's epoch seconds now."""
        wall = self.wall_time()
        return wall if self.scale == 1.0 else self.origin + self.scale * (wall - self.origin)

    def monotonic(self) -> float:
        """A monotonic reading in AWS seconds (compare two of the same process only)."""
        return self.scale * self.wall_monotonic()

    def wall(self, seconds: float) -> float:
        """The wall seconds that ``seconds`` of AWS time take (never negative).

        >>> Clock(scale=4.0).wall(-1.0), Clock(scale=4.0).wall(2.0)
        (0.0, 0.5)
        """
        return max(0.0, seconds) / self.scale

    def aws(self, wall_seconds: float) -> float:
        """The AWS seconds that ``wall_seconds`` on the wall are.

        >>> Clock(scale=10.0).aws(1.5)
        15.0
        """
        return wall_seconds * self.scale

    def patient(self, seconds: float, wall_floor: float) -> float:
        """``seconds`` of AWS time to wait for an answer, or, on a scaled clock, the AWS time
        ``wall_floor`` wall seconds take if that is longer: the emulator's answer costs its CPU,
        which is not AWS's time and does not shrink with k. The real clock waits ``seconds``.

        >>> Clock(scale=10.0).patient(4.0, 1.0), Clock(scale=2.0).patient(4.0, 1.0)
        (10.0, 4.0)
        >>> Clock().patient(0.5, 1.0)
        0.5
        """
        return seconds if self.scale == 1.0 else max(seconds, self.aws(wall_floor))

    def environment(self) -> dict[str, str]:
        """What a child process's environment carries so that it runs on this clock."""
        if self.scale == 1.0:
            return {}
        return {ENV_TIME_ORIGIN: repr(self.origin), ENV_TIME_SCALE: repr(self.scale)}


def from_environment(environ: Mapping[str, str] | None = None) -> Clock:
    """The clock an environment names (the real one when it names none).

    >>> from_environment({"FAILOVER_TIME_SCALE": "10", "FAILOVER_TIME_ORIGIN": "5"}).scale
    10.0
    >>> from_environment({"FAILOVER_TIME_SCALE": "fast"})
    Traceback (most recent call last):
    ...
    controller.errors.SpecError: FAILOVER_TIME_SCALE: not a number: 'fast'
    """
    env = os.environ if environ is None else environ
    raw_scale = env.get(ENV_TIME_SCALE)
    if not raw_scale:
        return Clock()
    values = []
    for name, raw in ((ENV_TIME_SCALE, raw_scale), (ENV_TIME_ORIGIN, env.get(ENV_TIME_ORIGIN))):
        try:
            values.append(float(raw or "nan"))
        except ValueError:
            raise SpecError(f"not a number: {raw!r}", source=name) from None
    scale, origin = values
    if origin != origin:  # NaN: a scale without its origin
        raise SpecError("a time scale needs its origin", source=ENV_TIME_ORIGIN)
    return Clock(origin=origin, scale=scale)


_current = from_environment()


def current() -> Clock:
    """The clock this process runs on."""
    return _current


def use(clock: Clock) -> None:
    """Run this process on ``clock`` from now on (the sandbox at ``up``, the CLI when its
    manifest names a sandbox's clock, a test); its children get it through
    :meth:`Clock.environment`."""
    global _current
    _current = clock


def now() -> float:
    """AWS's epoch seconds now."""
    return _current.now()


def utcnow() -> datetime:
    """AWS's time now, as an aware UTC datetime."""
    return datetime.fromtimestamp(_current.now(), UTC)


def monotonic() -> float:
    """A monotonic reading in AWS seconds."""
    return _current.monotonic()


def sleep(seconds: float) -> None:
    """Sleep ``seconds`` of AWS time."""
    time.sleep(_current.wall(seconds))


def wait(event: threading.Event, seconds: float | None) -> bool:
    """Wait for ``event`` at most ``seconds`` of AWS time (None: for ever); True when set."""
    return event.wait(None if seconds is None else _current.wall(seconds))


def wall(seconds: float) -> float:
    """The wall seconds that ``seconds`` of AWS time take, for an API that only takes wall."""
    return _current.wall(seconds)


def patient(seconds: float, wall_floor: float) -> float:
    """``seconds`` of AWS time to wait for an answer, at least ``wall_floor`` on the wall on a
    scaled clock (:meth:`Clock.patient`)."""
    return _current.patient(seconds, wall_floor)


def remaining(until: float) -> float:
    """AWS seconds left until the monotonic deadline ``until`` (never negative)."""
    return max(0.0, until - _current.monotonic())


__all__ = [
    "Clock",
    "current",
    "from_environment",
    "monotonic",
    "now",
    "patient",
    "remaining",
    "sleep",
    "use",
    "utcnow",
    "wait",
    "wall",
]
