"""What a watcher sees and decides: one evaluation of every region, and the decision it leads to.

Called by the watcher (:mod:`controller.watchers.watcher`), which makes both, and by whoever shows
them: ``failover watch`` prints each decision as a JSON line, the deployed watcher logs it and
keeps the last in its item of the control table, the status page lists them. Plain data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller import health


@dataclass(frozen=True)
class Evaluation:
    """One look at every region: its health and each probe's vote (True: the probe says bad)."""

    time: float
    active: str | None
    health: dict[str, str]
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
        return self.health.get(region) in ("healthy", "degraded") and not any(
            self.votes.get(region, {}).values()
        )


@dataclass(frozen=True)
class Decision:
    """What the watcher decided after an evaluation, and why (one JSON log line)."""

    time: float
    action: str
    reason: str
    active: str | None
    health: dict[str, str]
    consecutive_bad: int = 0
    target: str | None = None
    run_id: str | None = None
    status: str | None = None

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


def answering(region_health: dict[str, str]) -> frozenset[str]:
    """The regions of ``region_health`` (region -> health value) that answered.

    >>> sorted(answering({"us-east-1": "unreachable", "us-west-2": "degraded"}))
    ['us-west-2']
    """
    return frozenset(r for r, h in region_health.items() if h != health.Health.UNREACHABLE.value)
