"""When automation may start a run: how many bad evaluations in a row fail a region (the
hysteresis), the application's cooldown, and what a replication lag nobody can read means for
each kind of run.

Called by the watcher (:mod:`controller.watchers.watcher`) before it decides to act, and by the
deployed watcher's entry point for its executor. Pure functions of the policy, the desired state
and the clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from controller.controltable.desired import Desired
from controller.controltable.journal import RunKind

#: Automation fails over when the source region fails, which is exactly when its replication
#: metrics cannot be read: an unknown lag does not stop it (a lag known to be above bound still
#: does). A failback's source is the healthy active region, whose metrics answer: an unknown lag
#: there means nothing says the returning region has the data, and automation never fails back
#: on it (:func:`accepts_unknown_lag`).
AUTOMATION_ACCEPTS_UNKNOWN_LAG = True


def accepts_unknown_lag(kind: RunKind) -> bool:
    """Whether an automated run of ``kind`` may start with a replication lag nobody can read.

    >>> accepts_unknown_lag(RunKind.FAILOVER), accepts_unknown_lag(RunKind.FAILBACK)
    (True, False)
    """
    return AUTOMATION_ACCEPTS_UNKNOWN_LAG and kind != RunKind.FAILBACK


def threshold(failure_threshold: int, history: Iterable[bool]) -> int:
    """``failure_threshold`` bad evaluations in a row, plus one for every recent flap (a bad
    evaluation followed by a good one in ``history``, oldest first), up to twice as many.

    >>> threshold(3, [True, True, False, True, False]), threshold(3, [True] * 8)
    (5, 3)
    """
    flaps = sum(1 for a, b in itertools.pairwise(history) if a and not b)
    return min(2 * failure_threshold, failure_threshold + flaps)


def cooldown_left(
    cooldown: float,
    desired: Desired | None,
    now: float,
    last_action: float | None = None,
    evaluated: float | None = None,
) -> tuple[float, str]:
    """Seconds before an automated run may start, and why (0 when it may).

    The cooldown is the application's: it counts from the last change of the active region
    that the control table records (:attr:`Desired.since`), whichever watcher, or operator,
    made it; every watcher reads the same item, so a watcher that never acted does not fail
    back (or over again) at once after another's run. A run of this watcher's own that ended
    in an error (``last_action``, against the evaluation's time ``evaluated``) changed nothing
    there, and cools this watcher down too.

    >>> cooldown_left(300.0, Desired("us-west-2", 2, "r1", since=1_000.0), now=1_100.0)
    (200.0, 'us-west-2 became active 100s ago (run r1)')
    >>> cooldown_left(300.0, Desired("us-east-1", 0), now=1_100.0)
    (0.0, '')
    """
    left, why = 0.0, ""
    if desired is not None and desired.since is not None:
        left = cooldown - (now - desired.since)
        why = f"{desired.active} became active {cooldown - left:.0f}s ago" + (
            f" (run {desired.run_id})" if desired.run_id else ""
        )
    at = now if evaluated is None else evaluated
    if last_action is not None and cooldown - (at - last_action) > left:
        left = cooldown - (at - last_action)
        why = f"this watcher acted {cooldown - left:.0f}s ago"
    return max(0.0, left), why
