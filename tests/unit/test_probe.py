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


MODE = "/orders/mode"


def reader(monkeypatch: pytest.MonkeyPatch, answers: list[Any]) -> list[float]:
    """Make the parameters read give ``answers`` in turn (an exception is raised, a string is
    the region's mode); the times it was called at (no pause is slept)."""
    calls: list[float] = []

    def read(_clients: Any, _region: str, names: list[str]) -> dict[str, str]:
        calls.append(time.monotonic())
        answer = answers[len(calls) - 1]
        if isinstance(answer, Exception):
            raise answer
        return {MODE: str(answer)} if MODE in names else {}

    monkeypatch.setattr(reads.modes, "get", read)
    monkeypatch.setattr(reads.clock, "sleep", lambda seconds: None)
    return calls


def probe(until: float = 60.0, names: tuple[str, ...] = (MODE,)) -> str | None:
    got = reads.probe_parameters(None, "us-west-2", names, reads.clock.monotonic() + until)  # type: ignore[arg-type]
    return got.get(MODE)


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


def test_a_region_s_thirteen_mode_parameters_are_read_in_two_calls_its_own_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[list[str]] = []

    def read(_clients: Any, _region: str, names: list[str]) -> dict[str, str]:
        asked.append(names)
        return {name: "active" for name in names}

    monkeypatch.setattr(reads.modes, "get", read)
    names = [MODE, *(f"/orders/{i}/mode" for i in range(12))]
    got = reads.probe_parameters(None, "us-west-2", names, time.monotonic() + 60)  # type: ignore[arg-type]
    assert asked == [names[:10], names[10:]]  # GetParameters takes at most ten names
    assert got == dict.fromkeys(names, "active")


def test_a_throttled_second_call_is_made_again_and_the_region_still_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = reader(monkeypatch, ["active", THROTTLED, "ignored"])
    names = (MODE, *(f"/orders/{i}/mode" for i in range(12)))
    assert probe(names=names) == "active"
    assert len(calls) == 3
