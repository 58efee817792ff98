"""The runtime's Lambda context on the sandbox's scaled clock: the timeout is AWS time.

On AWS a 100 s invocation has 100 s; in the sandbox at k = 10 those 100 AWS seconds take 10 on
the wall, so ``get_remaining_time_in_millis`` must fall k times faster than the wall clock, or a
watcher that loops "while the next evaluation fits" runs k invocations' worth at once.
"""

from __future__ import annotations

import pytest

from sandbox.lambda_ import bootstrap


def context(
    monkeypatch: pytest.MonkeyPatch, scale: str | None, wall: list[float]
) -> bootstrap.Context:
    monkeypatch.setattr(bootstrap.time, "monotonic", lambda: wall[0])
    env = {"AWS_LAMBDA_FUNCTION_NAME": "f"} | ({bootstrap.TIME_SCALE_ENV: scale} if scale else {})
    request = {"remaining_ms": 100_000, "arn": "arn:aws:lambda:us-east-1:1:function:f", "id": "r"}
    return bootstrap.Context({"env": env}, request)


def test_remaining_time_falls_k_times_faster_than_the_wall_on_a_scaled_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wall = [1000.0]
    ctx = context(monkeypatch, "10", wall)
    assert ctx.get_remaining_time_in_millis() == 100_000
    wall[0] += 6.0  # six wall seconds: sixty AWS seconds
    assert ctx.get_remaining_time_in_millis() == 40_000
    wall[0] += 5.0  # past the timeout: nothing left, never negative
    assert ctx.get_remaining_time_in_millis() == 0


def test_remaining_time_is_the_wall_on_the_real_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    wall = [1000.0]
    ctx = context(monkeypatch, None, wall)
    wall[0] += 6.0
    assert ctx.get_remaining_time_in_millis() == 94_000
