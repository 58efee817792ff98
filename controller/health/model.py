"""What status reports: a component's, a region's and an application's health, as plain data.

Called by the reads (:mod:`controller.health.reads`), the verdicts, the watcher, the executor's
prechecks and the CLI's renderers. Frozen dataclasses and no behaviour beyond their JSON shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: ``probe(region, url) -> ok``: an HTTP probe of a regional endpoint, supplied by the caller.
HttpProbe = Callable[[str, str], bool]


class Health(StrEnum):
    """How well a component, or a region, is doing."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ComponentStatus:
    """One component in one region: what it does (state) and how well (health)."""

    name: str
    kind: str
    state: str
    health: Health
    detail: str = ""
    alarms: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Signals:
    """The independent health signals of a region the watcher weighs (quorum)."""

    alarms_firing: tuple[str, ...] = ()
    route53_healthy: bool | None = None
    http_ok: bool | None = None
    #: Alarms in ``ALARM`` that the region's mode explains (a fenced function's throttles):
    #: shown, not counted (:func:`~controller.health.verdicts.expected_alarms`).
    alarms_expected: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegionStatus:
    """One region: reachable or not, its mode, its components and its aggregate health."""

    region: str
    reachable: bool
    health: Health
    mode: str | None = None
    components: dict[str, ComponentStatus] = field(default_factory=dict)
    signals: Signals = Signals()
    error: str = ""


@dataclass(frozen=True)
class StatusReport:
    """Every region of an application, and which one is active."""

    app: str
    active_region: str | None
    regions: dict[str, RegionStatus]
    elapsed: float = 0.0
    #: What an operator must act on, one line each (two regions that say active, ...).
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The ``failover status --json`` shape."""
        return {
            "app": self.app,
            "active_region": self.active_region,
            "warnings": list(self.warnings),
            "regions": {
                name: {
                    "reachable": region.reachable,
                    "health": region.health.value,
                    "components": {
                        c.name: {"state": c.state, "health": c.health.value}
                        for c in region.components.values()
                    },
                }
                for name, region in self.regions.items()
            },
        }
