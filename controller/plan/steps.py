"""What a failover plan is: its steps, their order, and who answers degraded, as data.

Read by the journal (which stores a plan as JSON and rebuilds it to resume a run), the prechecks
and the executor; built by :mod:`controller.plan.build`. Kept apart from the planning so that
reading a run, as ``failover status`` and ``runs`` do, does not import networkx (about 0.13 s of
start-up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from controller.contract import DegradedMode


class Phase(StrEnum):
    """Where a step acts: fencing the source, or activating the target."""

    FENCE = "fence"
    ACTIVATE = "activate"


class StepAction(StrEnum):
    """What a step does to its component (an activation in a degraded mode says so)."""

    FENCE = "fence"
    ACTIVATE = "activate"
    ACTIVATE_DEGRADED = "activate_degraded"


class Step(NamedTuple):
    """One action on one component in one region.

    ``action`` is ``fence`` (source), ``activate`` or ``activate_degraded`` (target; the mode is
    in the plan's degraded map). A named tuple, not a dataclass: a plan of 10,000 components
    makes 20,000 of them, and a tuple is built several times faster than a frozen dataclass.
    """

    id: str
    component: str
    region: str
    phase: Phase
    action: StepAction
    level: int
    needs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The step as the JSON the CLI prints."""
        return {
            "id": self.id,
            "component": self.component,
            "region": self.region,
            "phase": self.phase,
            "action": self.action,
            "level": self.level,
            "needs": list(self.needs),
        }


@dataclass(frozen=True)
class FailoverPlan:
    """An ordered failover from ``source`` to ``target``."""

    app: str
    source: str
    target: str
    steps: tuple[Step, ...]
    degraded: dict[str, DegradedMode] = field(default_factory=dict)
    unavailable: tuple[str, ...] = ()

    @property
    def levels(self) -> list[list[Step]]:
        """The steps grouped by level, in order; a level's steps can run in parallel."""
        out: dict[int, list[Step]] = {}
        for step in self.steps:
            out.setdefault(step.level, []).append(step)
        return [out[k] for k in sorted(out)]

    def step(self, step_id: str) -> Step:
        """The step with id ``step_id``."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_dict(self) -> dict[str, Any]:
        """The plan as the JSON ``failover plan --json`` prints."""
        return {
            "app": self.app,
            "from": self.source,
            "to": self.target,
            "steps": [s.to_dict() for s in self.steps],
            "degraded": {k: v.value for k, v in sorted(self.degraded.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailoverPlan:
        """Rebuild a plan from :meth:`to_dict` (the journal stores plans this way)."""
        steps = tuple(
            Step(
                id=s["id"],
                component=s["component"],
                region=s["region"],
                phase=Phase(s["phase"]),
                action=StepAction(s["action"]),
                level=int(s["level"]),
                needs=tuple(s["needs"]),
            )
            for s in data["steps"]
        )
        return cls(
            app=data["app"],
            source=data["from"],
            target=data["to"],
            steps=steps,
            degraded={k: DegradedMode(v) for k, v in data.get("degraded", {}).items()},
            unavailable=tuple(data.get("unavailable", ())),
        )


def step_id(phase: Phase, component: str, region: str) -> str:
    """The id of a step: ``phase:component@region``.

    >>> step_id(Phase.FENCE, "api", "us-east-1")
    'fence:api@us-east-1'
    """
    return f"{phase}:{component}@{region}"
