"""From a status read's answers to its report: each region's verdict and the active region.

Called by :func:`controller.health.reads.status` once its reads answered or the deadline passed;
no call of its own but one: the traffic record, read only when the regions' modes cannot say
which region is active.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from controller.actions.base import Observed
from controller.actions.dns import DnsAction
from controller.actions.state import State, state_of
from controller.aws import Clients
from controller.health import verdicts
from controller.health.model import ComponentStatus, Health, RegionStatus
from controller.topology import Kind, Topology
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)


@dataclass
class RegionReads:
    """The pending reads of one region that answered its probe."""

    components: dict[str, Future[Observed]]
    alarms: Future[dict[str, str]]
    route53: Future[bool | None]
    http: Future[bool | None] | None


def futures(reads: Mapping[str, RegionReads]) -> list[Future[Any]]:
    """Every pending read of ``reads``."""
    out: list[Future[Any]] = []
    for r in reads.values():
        out += [*r.components.values(), r.alarms, r.route53, *([r.http] if r.http else [])]
    return out


def _result(future: Future[Any] | None) -> tuple[Any, BaseException | None]:
    if future is None:
        return None, None
    if not future.done():
        return None, TimeoutError("no answer before the deadline")
    if future.cancelled():  # never started: the pool was shut down at the deadline
        return None, TimeoutError("not read before the deadline")
    exc = future.exception()
    return (None, exc) if exc is not None else (future.result(), None)


def region_status(
    region: str,
    topology: Topology,
    manifest: Manifest,
    mode: str | Exception,
    reads: RegionReads | None,
) -> RegionStatus:
    if isinstance(mode, Exception) or reads is None:
        error = str(mode) if isinstance(mode, Exception) else "not read"
        comps = {
            name: ComponentStatus(name, str(spec.kind), State.UNREACHABLE, Health.UNREACHABLE)
            for name, spec in topology.components.items()
        }
        return RegionStatus(region, False, Health.UNREACHABLE, components=comps, error=error)
    alarm_states, alarm_error = _result(reads.alarms)
    alarm_states = alarm_states or {}
    route53, _ = _result(reads.route53)
    http, http_error = _result(reads.http)
    regional = manifest.regions.get(region)
    comps = {}
    # What the region's mode explains (a fenced region's throttles) is shown, not counted.
    expected = verdicts.expected_alarms(alarm_states, mode)
    for name, spec in topology.components.items():
        if name not in reads.components:
            continue  # a signals-only read
        observed, exc = _result(reads.components[name])
        ref = regional.components.get(name) if regional else None
        own = {a: alarm_states[a] for a in (ref.alarms if ref else ()) if a in alarm_states}
        fenced = observed is not None and observed.state == State.FENCED
        mine = verdicts.expected_alarms(own, mode, fenced=fenced)
        expected |= mine
        comps[name] = verdicts.component_status(name, str(spec.kind), observed, exc, own, mine)
    signals = verdicts.region_signals(
        alarm_states,
        mode,
        expected,
        route53=route53,
        http_ok=None if reads.http is None else bool(http and not http_error),
    )
    health = verdicts.region_verdict(comps.values(), signals, mode)
    return RegionStatus(
        region,
        True,
        health,
        mode=mode,
        components=comps,
        signals=signals,
        error=str(alarm_error or ""),
    )


def active_region(
    report: Mapping[str, RegionStatus], topology: Topology, manifest: Manifest, clients: Clients
) -> str | None:
    """The region whose mode says active (else degraded), else the PRIMARY record's region."""
    for wanted in (State.ACTIVE, State.DEGRADED):
        claimed = [
            name
            for name, region in report.items()
            if region.mode and state_of(region.mode) == wanted
        ]
        if len(claimed) > 1:
            # A region that came back from an outage still says active (it could not be told
            # otherwise): the traffic record, which the controller moved, decides.
            primary = _dns_primary(report, topology, manifest, clients)
            return primary if primary in claimed else claimed[0]
        if claimed:
            return claimed[0]
    return _dns_primary(report, topology, manifest, clients)


def _dns_primary(
    report: Mapping[str, RegionStatus], topology: Topology, manifest: Manifest, clients: Clients
) -> str | None:
    dns = next((name for name, _ in topology.of_kind(Kind.DNS)), None)
    if dns is None or manifest.dns is None:
        return None
    primary = next(
        (
            c.facts.get("primary")
            for r in report.values()
            for c in r.components.values()
            if c.name == dns and c.facts
        ),
        None,
    )
    try:
        action = DnsAction(topology, manifest, clients, dns, topology.regions.primary)
        if primary is None:
            record = action.records().get("PRIMARY")
            primary = record["ResourceRecords"][0]["Value"] if record else None
        if primary is None:
            return None
        return next(
            (r for r in topology.regions.all if action.host(r) == str(primary).rstrip(".").lower()),
            None,
        )
    except Exception as exc:
        log.warning("cannot read the PRIMARY record: %s", exc)
        return None
