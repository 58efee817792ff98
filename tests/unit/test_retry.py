"""The retry decision (controller.engine.retry.decide) and the component verdict's use of the
error's ``unreachable`` flag: what the executor and status do after each attempt and read."""

from __future__ import annotations

import pytest

from controller.actions.base import Observed, State
from controller.controltable.journal import StepState
from controller.engine.retry import MAX_BACKOFF, decide
from controller.errors import PermanentStepError, TransientStepError
from controller.health import Health, component_status


def test_success_is_done_at_any_attempt() -> None:
    for attempt in range(3):
        out = decide(None, attempt=attempt, retries=2, fence=attempt == 1)
        assert out.final and out.state == StepState.DONE and out.error == ""


@pytest.mark.parametrize("fence", [False, True])
def test_permanent_error_gives_up_at_once(fence: bool) -> None:
    out = decide(PermanentStepError("AccessDenied"), attempt=0, retries=5, fence=fence)
    assert out.final
    assert out.state == (StepState.UNVERIFIED if fence else StepState.FAILED)
    assert "AccessDenied" in out.error


def test_transient_error_retries_with_backoff_until_the_retries_are_spent() -> None:
    error = TransientStepError("throttled", delay=0.25)
    delays = []
    for attempt in range(4):
        out = decide(error, attempt=attempt, retries=4, fence=False)
        assert not out.final and out.state == StepState.RUNNING
        delays.append(out.delay)
    assert delays == [0.25, 0.5, 1.0, 2.0]
    spent = decide(error, attempt=4, retries=4, fence=False)
    assert spent.final and spent.state == StepState.FAILED and spent.error == "throttled"


def test_backoff_is_capped_and_jittered() -> None:
    error = TransientStepError("5xx", delay=1.0)
    assert decide(error, attempt=9, retries=10, fence=False).delay == MAX_BACKOFF
    assert decide(error, attempt=9, retries=10, fence=False, jitter=1.5).delay == 1.5 * MAX_BACKOFF
    assert decide(error, attempt=0, retries=1, fence=False, jitter=0.5).delay == 0.5


def test_fencing_an_unreachable_region_is_unverified_at_once_and_marks_the_region() -> None:
    error = TransientStepError("unreachable: ConnectTimeoutError", unreachable=True)
    out = decide(error, attempt=0, retries=3, fence=True)
    assert out.final and out.state == StepState.UNVERIFIED and out.region_unreachable


def test_an_unreachable_global_resource_or_target_is_retried() -> None:
    error = TransientStepError("unreachable: ConnectTimeoutError", unreachable=True)
    for out in (
        decide(error, attempt=0, retries=3, fence=True, global_resource=True),
        decide(error, attempt=0, retries=3, fence=False),
    ):
        assert not out.final and not out.region_unreachable


def test_fencing_that_keeps_failing_ends_unverified_never_failed() -> None:
    out = decide(
        TransientStepError("read back active, wanted fenced"), attempt=2, retries=2, fence=True
    )
    assert out.final and out.state == StepState.UNVERIFIED and not out.region_unreachable


@pytest.mark.parametrize("fence", [False, True])
def test_a_throttled_step_out_of_time_gives_up_with_retries_left(fence: bool) -> None:
    """policy.step_timeout_seconds bounds a step: no retry begins after it, retries or not."""
    error = TransientStepError("throttled", delay=0.5)
    assert not decide(error, attempt=0, retries=10, fence=fence, remaining=0.6).final
    late = decide(error, attempt=1, retries=10, fence=fence, remaining=0.6)  # the retry: 1.0 s
    assert late.final and late.state == (StepState.UNVERIFIED if fence else StepState.FAILED)
    assert "step_timeout_seconds" in late.error and not late.region_unreachable


def test_a_target_that_times_out_past_the_step_timeout_is_lost_at_once() -> None:
    """A hung target's first read timeout can outlast the whole step: it is not read again,
    and its region counts as lost (the run moves on)."""
    error = TransientStepError("unreachable: ReadTimeoutError", unreachable=True)
    out = decide(error, attempt=0, retries=3, fence=False, remaining=-2.0)
    assert out.final and out.state == StepState.FAILED and out.region_unreachable


def test_component_unreachable_comes_from_the_flag_not_the_message() -> None:
    flagged = TransientStepError("timed out", unreachable=True)
    assert component_status("q", "queue", None, flagged, {}).health == Health.UNREACHABLE
    worded = TransientStepError("the word unreachable in a message")
    assert component_status("q", "queue", None, worded, {}).health == Health.UNHEALTHY


def test_component_verdict_from_a_read() -> None:
    ok = Observed(State.ACTIVE, healthy=True)
    assert component_status("q", "queue", ok, None, {}).health == Health.HEALTHY
    assert component_status("q", "queue", ok, None, {"a": "ALARM"}).health == Health.UNHEALTHY
