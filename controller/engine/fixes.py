"""The reconciler's fixes as data: what it would do, and what came of each.

Decided by :func:`controller.engine.reconcile.decide` (pure) and carried out by
:func:`controller.engine.reconcile.reconcile`, so that ``failover reconcile --dry-run`` and the
real run share one list; read by the watcher and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from controller.controltable.desired import Desired


class FixAction(StrEnum):
    """What a fix does: act on AWS, take over a run, or only say what is wrong."""

    FENCE = "fence"
    ACTIVATE = "activate"
    RESUME = "resume"
    REPORT = "report"


@dataclass(frozen=True)
class Fix:
    """One thing the reconciler would do (or only report), and why."""

    action: FixAction
    region: str
    reason: str
    component: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``failover reconcile --json``)."""
        return {
            "action": self.action,
            "region": self.region,
            "component": self.component,
            "run_id": self.run_id,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class FixOutcome:
    """What came of a fix that was tried: done or failed, why, and whether AWS changed.

    >>> FixOutcome.done("run r completed").text, FixOutcome.failed("throttled").text
    ('done: run r completed', 'failed: throttled')
    >>> FixOutcome.done(changed=False).changed, FixOutcome.done(changed=False).text
    (False, 'done')
    """

    ok: bool
    detail: str = ""
    #: Whether AWS was changed: a fix found already done (a stale read) changed nothing.
    changed: bool = False

    @classmethod
    def done(cls, detail: str = "", *, changed: bool = True) -> FixOutcome:
        """The fix was carried out (``changed``: it changed something)."""
        return cls(True, detail, changed)

    @classmethod
    def failed(cls, detail: str) -> FixOutcome:
        """The fix was tried and did not succeed, or was skipped (``detail`` says which)."""
        return cls(False, detail)

    @property
    def text(self) -> str:
        """The outcome as ``failover reconcile --json`` shows it: ``done``, ``done: ...``,
        ``failed: ...``."""
        word = "done" if self.ok else "failed"
        return f"{word}: {self.detail}" if self.detail else word


@dataclass
class Reconciliation:
    """What the reconciler decided, and with ``dry_run`` false, what came of each fix."""

    desired: Desired
    fixes: list[Fix]
    dry_run: bool
    outcomes: dict[int, FixOutcome] = field(default_factory=dict)
    #: The regions the fixes cover (:class:`~controller.engine.reconcile.Observation`).
    covered: frozenset[str] = frozenset()

    @property
    def acted(self) -> bool:
        """True when at least one fix changed something (a run taken over counts)."""
        return any(o.changed for o in self.outcomes.values())

    @property
    def failed(self) -> list[Fix]:
        """Fixes that were tried and did not succeed."""
        return [
            f for i, f in enumerate(self.fixes) if i in self.outcomes and not self.outcomes[i].ok
        ]

    @property
    def settled(self) -> frozenset[str]:
        """The regions read and, where they needed it, fixed: covered, no fix of theirs failed.
        A watcher owes a region that came back a full read until one settles it."""
        return self.covered - {f.region for f in self.failed}

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``failover reconcile --json``)."""
        return {
            "desired": self.desired.to_dict(),
            "dry_run": self.dry_run,
            "fixes": [
                {**f.to_dict(), "outcome": self.outcomes[i].text if i in self.outcomes else None}
                for i, f in enumerate(self.fixes)
            ],
        }
