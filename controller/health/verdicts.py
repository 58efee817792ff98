"""Verdicts: how healthy a component or a region is, from what was read of it.

Called by the reads (:mod:`controller.health.reads`) once a region's reads are in. Small pure
functions over the model: no AWS, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.actions import alarms as alarm_reads
from controller.actions import mode as modes
from controller.actions.base import Observed, State
from controller.aws import is_unreachable
from controller.errors import ActionError, TransientStepError
from controller.health.model import ComponentStatus, Health, RegionStatus, Signals


def component_status(
    name: str,
    kind: str,
    observed: Observed | None,
    error: BaseException | None,
    alarms: dict[str, str],
) -> ComponentStatus:
    """One component's health from its read (or the error of reading it) and its alarms."""
    if error is not None or observed is None:
        unreachable = (
            error is None
            or isinstance(error, TimeoutError)
            or is_unreachable(error.__cause__ or error)
            or (isinstance(error, TransientStepError) and error.unreachable)
        )
        if unreachable:
            return ComponentStatus(
                name, kind, State.UNREACHABLE.value, Health.UNREACHABLE, detail=str(error or "")
            )
        detail = str(error) if isinstance(error, ActionError) else repr(error)
        return ComponentStatus(name, kind, "unknown", Health.UNHEALTHY, detail=detail)
    firing = alarm_reads.firing(alarms)
    if observed.state == State.MISSING or not observed.healthy or firing:
        detail = observed.detail or ("alarm: " + ", ".join(firing))
        health = Health.UNHEALTHY
    elif observed.state == State.DEGRADED:
        detail, health = observed.detail, Health.DEGRADED
    else:
        detail, health = observed.detail, Health.HEALTHY
    return ComponentStatus(name, kind, observed.state.value, health, detail, alarms, observed.facts)


def region_verdict(
    components: Iterable[ComponentStatus], signals: Signals, mode: str | None
) -> Health:
    """A region's health: its worst component, an alarm, a failed HTTP probe, or its mode.

    >>> ok = ComponentStatus("q", "queue", "active", Health.HEALTHY)
    >>> region_verdict([ok], Signals(), "active").value
    'healthy'
    >>> region_verdict([ok], Signals(http_ok=False), "active").value
    'unhealthy'
    """
    healths = {c.health for c in components}
    if (
        healths & {Health.UNHEALTHY, Health.UNREACHABLE}
        or signals.alarms_firing
        or signals.http_ok is False
    ):
        return Health.UNHEALTHY
    if Health.DEGRADED in healths or (mode and modes.state_of(mode) == State.DEGRADED.value):
        return Health.DEGRADED
    return Health.HEALTHY


def votes(region: RegionStatus, *, route53: bool = True) -> dict[str, bool]:
    """Each independent probe's vote on ``region`` (True: failing); silent probes do not vote.

    What the watcher counts before it fails a region over, and what the status page shows.
    ``route53``: count Route 53's health checks (off against the emulator, which does not probe).

    >>> votes(RegionStatus("us-east-1", reachable=False, health=Health.UNREACHABLE))
    {'control_plane': True}
    """
    counted = {"control_plane": not region.reachable}
    if region.reachable:
        counted["alarms"] = bool(region.signals.alarms_firing)
    if route53 and region.signals.route53_healthy is not None:
        counted["route53"] = not region.signals.route53_healthy
    if region.signals.http_ok is not None:
        counted["http"] = not region.signals.http_ok
    return counted


def warnings(report: Mapping[str, RegionStatus], active: str | None) -> tuple[str, ...]:
    """Two regions that both say active: the one traffic does not go to must be fenced."""
    claimed = [name for name, region in report.items() if region.mode == modes.ACTIVE]
    if len(claimed) < 2:
        return ()
    stale = [name for name in claimed if name != active]
    every = "both" if len(claimed) == 2 else "all"
    return (
        f"{' and '.join(claimed)} {every} say active; traffic goes to {active or '?'}: "
        f"fence {', '.join(stale)} (failover execute --to {active or 'R'} --from "
        f"{stale[0]}, or let the watcher do it)",
    )
