"""The probe that decides whether a region is reachable: a region that answered with a throttle
or a 5xx is read again; one that did not answer is not."""

from __future__ import annotations

import time
from typing import Any

import pytest

from controller.errors import TransientStepError
from controller.health import reads

THROTTLED = TransientStepError("ThrottlingException: slow down", region="us-west-2")
TIMED_OUT = TransientStepError("unreachable: ReadTimeoutError", unreachable=True)


def reader(monkeypatch: pytest.MonkeyPatch, answers: list[Any]) -> list[float]:
    """Make the mode read give ``answers`` in turn (an exception is raised); the times it was
    called at (no pause is slept)."""
    calls: list[float] = []

    def read(*_: Any) -> str:
        calls.append(time.monotonic())
        answer = answers[len(calls) - 1]
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    monkeypatch.setattr(reads.modes, "read_region_mode", read)
    monkeypatch.setattr(reads.clock, "sleep", lambda seconds: None)
    return calls


def probe(until: float = 60.0) -> str:
    return reads.probe(None, None, None, "us-west-2", reads.clock.monotonic() + until)  # type: ignore[arg-type]


def test_a_throttled_region_is_read_again_and_counts_as_reachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = reader(monkeypatch, [THROTTLED, THROTTLED, "active"])
    assert probe() == "active"
    assert len(calls) == reads.PROBE_ANSWERED_ATTEMPTS == 3


def test_a_region_that_keeps_throttling_is_given_up_after_the_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = reader(monkeypatch, [THROTTLED] * 5)
    with pytest.raises(TransientStepError, match="Throttling"):
        probe()
    assert len(calls) == reads.PROBE_ANSWERED_ATTEMPTS


def test_a_region_that_did_not_answer_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = reader(monkeypatch, [TIMED_OUT, "active"])
    with pytest.raises(TransientStepError) as caught:
        probe()
    assert caught.value.unreachable and len(calls) == 1


def test_no_read_again_past_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = reader(monkeypatch, [THROTTLED, "active"])
    with pytest.raises(TransientStepError, match="Throttling"):
        probe(until=reads.PROBE_PAUSE_SECONDS / 2)
    assert len(calls) == 1
