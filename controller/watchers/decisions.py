"""What a watcher sees and decides: one evaluation of every region, and the decision it leads to.

Called by the watcher (:mod:`controller.watchers.watcher`), which makes both, and by whoever shows
them: ``failover watch`` prints each decision as a JSON line, the deployed watcher logs it and
keeps the last in its item of the control table, the status page lists them. Plain data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controller.controltable.journal import RunStatus
from controller.health import Health


class WatchAction(StrEnum):
    """What a watcher decided after an evaluation: a decision's ``action``."""

    #: The active region is healthy (or the primary is not yet good long enough to go back).
    NONE = "none"
    #: The active region is bad, fewer evaluations in a row than the threshold.
    WATCH = "watch"
    #: The active region failed, and no region is healthy enough to go to.
    HOLD = "hold"
    #: The primary is healthy again, but a failback waits until its data has caught up (a lag
    #: above bound, or one nobody can read).
    WAITING = "waiting"
    #: A failover happened lately: no other until the cooldown ends.
    COOLDOWN = "cooldown"
    #: An operator paused automation: no run is started (fencing still is).
    PAUSED = "paused"
    #: A run was started away from the active region ...
    FAILOVER = "failover"
    #: ... or back to the primary (``policy.auto_failback``).
    FAILBACK = "failback"
    #: The reconciler fixed something (fenced, re-activated, took a run over).
    RECONCILE = "reconcile"
    #: Another controller holds the lease: it acts, this one does not.
    LEASE_HELD = "lease_held"
    #: The run was refused: a precheck failed, or the active region changed since.
    REFUSED = "refused"
    #: Something failed that a later evaluation may not meet again.
    ERROR = "error"
    #: The control table did not answer: a watcher cut off from its majority never acts.
    UNREACHABLE = "unreachable"
    #: Cut off from the control table's majority for longer than the lease, the watcher fenced
    #: its own region (:mod:`controller.watchers.isolation`).
    SELF_FENCE = "self_fence"

    @property
    def converges(self) -> bool:
        """True when the reconciler runs after it (a started run converges by itself)."""
        return self in _CONVERGE_AFTER

    @property
    def acted(self) -> bool:
        """True when it changed something (the ``Acted`` metric).

        >>> WatchAction.RECONCILE.acted, WatchAction.LEASE_HELD.acted
        (True, False)
        """
        return self in _ACTED

    @property
    def evaluated(self) -> bool:
        """True when the regions were evaluated (the ``Evaluations`` metric): a watcher cut off
        from the control table evaluated nothing, even when it fenced its own region.

        >>> WatchAction.WAITING.evaluated, WatchAction.SELF_FENCE.evaluated
        (True, False)
        """
        return self not in (WatchAction.UNREACHABLE, WatchAction.ERROR, WatchAction.SELF_FENCE)


#: Every decision that started no run, and that another controller's lease does not stop. A
#: refused run is one: the refusal may be a run in progress whose controller died before it
#: wrote the desired state, and only the reconciler ends that run once its lease has expired
#: (a watcher past its threshold refuses at every evaluation: it was never reconciled).
_CONVERGE_AFTER = frozenset(
    {
        WatchAction.NONE,
        WatchAction.PAUSED,
        WatchAction.WATCH,
        WatchAction.COOLDOWN,
        WatchAction.HOLD,
        WatchAction.WAITING,
        WatchAction.REFUSED,
    }
)
_ACTED = frozenset(
    {WatchAction.FAILOVER, WatchAction.FAILBACK, WatchAction.RECONCILE, WatchAction.SELF_FENCE}
)


@dataclass(frozen=True)
class Evaluation:
    """One look at every region: its health and each probe's vote (True: the probe says bad)."""

    time: float
    active: str | None
    health: dict[str, Health]
    votes: dict[str, dict[str, bool]]
    quorum: int

    def bad(self, region: str) -> bool:
        """True when a quorum of the probes that answered say ``region`` is failing.

        The quorum never exceeds the number of probes that could vote on ``region``: a region
        whose control plane does not answer cannot have its alarms read either.
        """
        votes = self.votes.get(region, {})
        return bool(votes) and sum(votes.values()) >= min(self.quorum, len(votes))

    def good(self, region: str) -> bool:
        """True when ``region`` is reachable, healthy or degraded, and no probe says bad."""
        return self.health.get(region) in (Health.HEALTHY, Health.DEGRADED) and not any(
            self.votes.get(region, {}).values()
        )


@dataclass(frozen=True)
class Decision:
    """What the watcher decided after an evaluation, and why (one JSON log line)."""

    time: float
    action: WatchAction
    reason: str
    active: str | None
    health: dict[str, Health]
    consecutive_bad: int = 0
    target: str | None = None
    run_id: str | None = None
    status: RunStatus | None = None

    def to_dict(self) -> dict[str, Any]:
        """The decision as the JSON line ``failover watch`` prints."""
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
            "action": self.action,
            "reason": self.reason,
            "active_region": self.active,
            "region_health": self.health,
            "consecutive_bad": self.consecutive_bad,
            "target": self.target,
            "run_id": self.run_id,
            "status": self.status,
        }


Evaluate = Callable[[], Evaluation]


def answering(region_health: Mapping[str, str]) -> frozenset[str]:
    """The regions of ``region_health`` (region -> health value) that answered.

    >>> sorted(answering({"us-east-1": "unreachable", "us-west-2": "degraded"}))
    ['us-west-2']
    """
    return frozenset(r for r, h in region_health.items() if h != Health.UNREACHABLE)
