"""The retry decision as data: what one attempt at a step came to, and what happens next.

Called by the executor after every attempt at a step. One small pure function,
:func:`decide`, holds the whole policy (kopf's ``Outcome``): done; retry after a delay; or give
up, as ``failed`` (an activation: its dependents degrade or the target rolls back, as its
``on_failure`` says) or ``unverified`` (fencing is best effort). The executor folds the values;
it decides nothing itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.controltable.journal import StepState
from controller.errors import PermanentStepError, TransientStepError

#: The longest wait between two attempts at a step, before jitter.
MAX_BACKOFF = 2.0
#: Attempts after the first that an activation whose region does not answer at all is given:
#: after them the region counts as lost (a run then moves on, see the executor).
UNREACHABLE_RETRIES = 1


@dataclass(frozen=True)
class StepOutcome:
    """What one attempt at a step came to.

    ``state`` is the step's ending, or ``running`` when it is tried again after ``delay``
    seconds. ``region_unreachable``: the step's region did not answer at all, so the rest of
    its fencing is not tried.
    """

    state: StepState
    delay: float = 0.0
    error: str = ""
    region_unreachable: bool = False

    @property
    def final(self) -> bool:
        """True when the step has ended (no retry)."""
        return self.state != StepState.RUNNING


def decide(
    error: TransientStepError | PermanentStepError | None,
    *,
    attempt: int,
    retries: int,
    fence: bool,
    global_resource: bool = False,
    jitter: float = 1.0,
    remaining: float = math.inf,
) -> StepOutcome:
    """The outcome of attempt number ``attempt`` (from 0) of a step allowed ``retries`` retries.

    Parameters
    ----------
    error : what the attempt raised; None when it reached the wanted state.
    fence : a fencing step (of the source): best effort, it ends ``unverified``, never failed.
    global_resource : the step acts on a global resource (Route 53), reachable whatever region.
    jitter : the factor applied to the backoff (the executor passes a random one in [0.5, 1.5)).
    remaining : seconds left of the step's ``policy.step_timeout_seconds`` as the attempt
        ended: no retry is started that would begin after them.

    Examples
    --------
    >>> decide(None, attempt=0, retries=2, fence=False).state.value
    'done'
    >>> out = decide(TransientStepError("throttled", delay=0.5), attempt=1, retries=2,
    ...              fence=False)
    >>> out.final, out.delay
    (False, 1.0)
    >>> decide(TransientStepError("throttled"), attempt=2, retries=2, fence=False).state.value
    'failed'
    >>> decide(TransientStepError("timeout", unreachable=True), attempt=1, retries=3,
    ...        fence=False).region_unreachable
    True
    >>> late = decide(TransientStepError("throttled", delay=0.5), attempt=0, retries=3,
    ...               fence=False, remaining=0.2)
    >>> late.state.value, late.error
    ('failed', 'throttled; no time left for another attempt (step_timeout_seconds)')
    """
    if error is None:
        return StepOutcome(StepState.DONE)
    given_up = StepState.UNVERIFIED if fence else StepState.FAILED
    message = str(error)
    if isinstance(error, PermanentStepError):
        return StepOutcome(given_up, error=message)
    if fence and error.unreachable and not global_resource:
        return StepOutcome(StepState.UNVERIFIED, error=message, region_unreachable=True)
    if error.unreachable and not global_resource and attempt >= min(retries, UNREACHABLE_RETRIES):
        # the target did not answer twice: it stopped answering, the run moves on
        return StepOutcome(given_up, error=message, region_unreachable=True)
    if attempt >= retries:
        return StepOutcome(given_up, error=message)
    delay = min(MAX_BACKOFF, error.delay * 2**attempt) * jitter
    if delay >= remaining:  # the step's time is up before its next attempt would begin
        return StepOutcome(
            given_up,
            error=f"{message}; no time left for another attempt (step_timeout_seconds)",
            region_unreachable=error.unreachable and not global_resource,
        )
    return StepOutcome(StepState.RUNNING, delay=delay, error=message)
