"""Health: every component's state and health in every region, read in parallel, fast.

Called by ``failover status``, the watcher and the executor's prechecks. Three parts with three
reasons to change: :mod:`~controller.health.model` (what a status report holds),
:mod:`~controller.health.reads` (how it is read from AWS, in parallel, under a deadline) and
:mod:`~controller.health.verdicts` (how healthy the reads say a component and a region are).
"""

from controller.health.model import (
    ComponentStatus,
    Health,
    HttpProbe,
    RegionStatus,
    Signals,
    StatusReport,
)
from controller.health.reads import (
    DEADLINE_SECONDS,
    MAX_WORKERS,
    PROBE_SETTINGS,
    probe_clients,
    probe_settings,
    region_health,
    status,
)
from controller.health.verdicts import (
    component_status,
    expected_alarms,
    region_signals,
    region_verdict,
    votes,
    warnings,
)

__all__ = [
    "DEADLINE_SECONDS",
    "MAX_WORKERS",
    "PROBE_SETTINGS",
    "ComponentStatus",
    "Health",
    "HttpProbe",
    "RegionStatus",
    "Signals",
    "StatusReport",
    "component_status",
    "expected_alarms",
    "probe_clients",
    "probe_settings",
    "region_health",
    "region_signals",
    "region_verdict",
    "status",
    "votes",
    "warnings",
]
