"""Health: every component's state and health in every region, read in parallel, fast.

Called by ``failover status`` and the watcher. One cheap probe per region (its mode parameter)
decides whether the region is reachable: short timeouts, no retries, so a region that does not
answer costs one probe timeout and is ``unreachable``. Every component of every region is read
through its action at the same time, beside the region's alarm states, its Route 53 health-check
status and, when given, an HTTP probe of its endpoint; only the reachable regions' reads are
awaited. The result is plain data (:mod:`controller.health.model`); the verdicts are small
functions over it (:mod:`controller.health.verdicts`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from controller import clock
from controller.actions import alarms as alarm_reads
from controller.actions import mode as modes
from controller.actions.base import Observed
from controller.actions.dns import DnsAction
from controller.actions.registry import action_for
from controller.actions.state import State, state_of
from controller.aws import AwsSettings, Clients, classify
from controller.contract import GLOBAL, STATUS_DEADLINE_SECONDS
from controller.controltable import table as controltable
from controller.errors import TransientStepError
from controller.health import verdicts
from controller.health.model import (
    ComponentStatus,
    Health,
    HttpProbe,
    RegionStatus,
    StatusReport,
)
from controller.topology import Kind, Topology
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)

#: Reads of a region's mode that answered with a throttle or a 5xx, before it counts as lost.
PROBE_ANSWERED_ATTEMPTS = 3
#: Seconds before the second such read (twice that before the third).
PROBE_PAUSE_SECONDS = 0.1
#: Fail fast: one attempt, short timeouts, so a hung region costs one read timeout.
PROBE_SETTINGS = AwsSettings(connect_timeout=1.0, read_timeout=1.5, max_attempts=1)
#: How long status waits for all its reads before calling what is left unreachable.
DEADLINE_SECONDS = STATUS_DEADLINE_SECONDS
#: On a sandbox's scaled clock, the reads wait at least this long on the wall: the emulator's
#: CPU is not AWS's time (below a watcher's interval at k = 10, so its cadence holds).
READ_WALL_FLOOR = 1.0
MAX_WORKERS = 64


def probe_settings(deadline: float = DEADLINE_SECONDS) -> AwsSettings:
    """Fail-fast settings in proportion to ``deadline``: one attempt, a read 3/8 of it.

    Example
    -------
    >>> probe_settings(4.0) == PROBE_SETTINGS
    True
    """
    if deadline == DEADLINE_SECONDS:
        return PROBE_SETTINGS
    return AwsSettings(connect_timeout=deadline / 4, read_timeout=deadline * 3 / 8, max_attempts=1)


def status(
    topology: Topology,
    manifest: Manifest,
    clients: Clients,
    *,
    regions: Iterable[str] | None = None,
    http_probe: HttpProbe | None = None,
    settings: AwsSettings | None = PROBE_SETTINGS,
    deadline: float = DEADLINE_SECONDS,
    components: bool = True,
) -> StatusReport:
    """Read every component in every region (or in ``regions``) in parallel.

    Parameters
    ----------
    clients : where to send calls; with ``settings`` a fail-fast copy is used (by default one
        whose timeouts scale with ``deadline``), with ``settings=None`` the clients as given
        (a watcher keeps its own probe clients).
    http_probe : optional ``probe(region, url) -> ok`` of each region's API health route.
    deadline : seconds to wait for the reads; what has not answered by then is unreachable.
    components : False reads only the region-level signals (reachability, alarms, Route 53,
        HTTP): the watcher's cheap evaluation, a few calls per region instead of several per
        component.

    Returns
    -------
    A :class:`StatusReport`; never raises for a region that does not answer.
    """
    started = clock.monotonic()
    if settings is PROBE_SETTINGS:
        settings = probe_settings(deadline)
    fast = clients.derive(settings=settings) if settings is not None else clients
    names = list(regions) if regions is not None else list(topology.regions.all)
    workers = min(MAX_WORKERS, len(names) * (len(topology.components) + 4))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health")
    try:
        # The probes decide reachability; the reads start at once beside them, so that a hung
        # region costs one probe timeout in all, and only the reachable regions' are awaited.
        until = started + clock.patient(deadline, READ_WALL_FLOOR)
        probes = {r: pool.submit(probe, fast, topology, manifest, r, until) for r in names}
        reads = _read_all(pool, fast, topology, manifest, names, http_probe, components)
        mode_of = _probe_results(probes, until)
        reads = {r: reads[r] for r in names if isinstance(mode_of[r], str)}
        wait(_futures(reads), timeout=clock.wall(clock.remaining(until)))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    controltable.suspect(clients, manifest, [r for r in names if not isinstance(mode_of[r], str)])
    report = {r: _region(r, topology, manifest, mode_of[r], reads.get(r)) for r in names}
    elapsed = clock.monotonic() - started
    log.info("status of %d regions in %.2fs", len(names), elapsed)
    active = _active_region(report, topology, manifest, fast)
    return StatusReport(topology.app, active, report, elapsed, verdicts.warnings(report, active))


def http_probe(region: str, url: str) -> bool:
    """GET a region's health route (an :data:`HttpProbe`): 2xx within 2 s is healthy."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 - http(s) only
            return 200 <= int(response.status) < 300
    except OSError:
        return False


def region_health(
    topology: Topology, manifest: Manifest, clients: Clients, region: str, **kwargs: Any
) -> RegionStatus:
    """The status of one region (see :func:`status`)."""
    return status(topology, manifest, clients, regions=[region], **kwargs).regions[region]


# -- reading ----------------------------------------------------------------------------------


@dataclass
class _RegionReads:
    """The pending reads of one reachable region."""

    components: dict[str, Future[Observed]]
    alarms: Future[dict[str, str]]
    route53: Future[bool | None]
    http: Future[bool | None] | None


def _futures(reads: Mapping[str, _RegionReads]) -> list[Future[Any]]:
    out: list[Future[Any]] = []
    for r in reads.values():
        out += [*r.components.values(), r.alarms, r.route53, *([r.http] if r.http else [])]
    return out


def probe(
    clients: Clients, topology: Topology, manifest: Manifest, region: str, until: float
) -> str:
    """``region``'s mode, read as the probe that decides whether the region is reachable.

    A region that answered with an error a retry may fix (throttled, a 5xx) did answer: it is
    read again, :data:`PROBE_PAUSE_SECONDS` apart, up to :data:`PROBE_ANSWERED_ATTEMPTS` times
    while the deadline (``until``, monotonic) allows, so that a throttled region (as every region
    may be while everyone fails over) is not taken for a lost one. A region that did not answer
    (timed out, refused) is not read again: one timeout says it is unreachable.
    """
    attempt = 1
    while True:
        try:
            return modes.read_region_mode(clients, topology, manifest, region)
        except TransientStepError as exc:
            pause = PROBE_PAUSE_SECONDS * attempt
            last = attempt >= PROBE_ANSWERED_ATTEMPTS or clock.monotonic() + pause >= until
            if exc.unreachable or last:
                raise
            log.info("probe of %s: %s; reading again", region, exc)
            clock.sleep(pause)
            attempt += 1


def _probe_results(probes: Mapping[str, Future[str]], until: float) -> dict[str, str | Exception]:
    """Each region's mode, or the error that says it did not answer by ``until``."""
    wait(probes.values(), timeout=clock.wall(clock.remaining(until)))
    out: dict[str, str | Exception] = {}
    for region, future in probes.items():
        if not future.done():
            out[region] = TransientStepError("no answer before the deadline", region=region)
            continue
        exc = future.exception()
        out[region] = future.result() if exc is None else classify(exc, region=region)
    return out


def _read_all(
    pool: ThreadPoolExecutor,
    clients: Clients,
    topology: Topology,
    manifest: Manifest,
    regions: list[str],
    http_probe: HttpProbe | None,
    components: bool = True,
) -> dict[str, _RegionReads]:
    reads: dict[str, _RegionReads] = {}
    for region in regions:
        regional = manifest.regions.get(region)
        alarm_names = [
            a for c in (regional.components.values() if regional else ()) for a in c.alarms
        ]
        url = _health_url(topology, manifest, region)
        reads[region] = _RegionReads(
            components={
                name: pool.submit(_read_one, topology, manifest, clients, name, region)
                for name in topology.components
            }
            if components
            else {},
            alarms=pool.submit(alarm_reads.alarm_states, clients, region, alarm_names),
            route53=pool.submit(_route53_healthy, clients, manifest, region),
            http=pool.submit(http_probe, region, clients.http_url(url))
            if http_probe and url
            else None,
        )
    return reads


def _read_one(
    topology: Topology, manifest: Manifest, clients: Clients, component: str, region: str
) -> Observed:
    return action_for(topology, manifest, clients, component, region).read()


def _route53_healthy(clients: Clients, manifest: Manifest, region: str) -> bool | None:
    """What Route 53's own checkers say of ``region`` (the emulator always says healthy)."""
    check = manifest.dns.health_checks.get(region) if manifest.dns else None
    if not check:
        return None
    got = clients.client("route53", GLOBAL).get_health_check_status(HealthCheckId=check)
    observations = got.get("HealthCheckObservations", [])
    return bool(observations) and all(
        str(o.get("StatusReport", {}).get("Status", "")).startswith("Success") for o in observations
    )


def _health_url(topology: Topology, manifest: Manifest, region: str) -> str | None:
    regional = manifest.regions.get(region)
    if regional is None or not regional.api_endpoint:
        return None
    path = next(
        (getattr(c, "health_path", "/health") for _, c in topology.of_kind(Kind.API)), "/health"
    )
    return regional.api_endpoint.rstrip("/") + path


# -- aggregating ------------------------------------------------------------------------------


def _result(future: Future[Any] | None) -> tuple[Any, BaseException | None]:
    if future is None:
        return None, None
    if not future.done():
        return None, TimeoutError("no answer before the deadline")
    exc = future.exception()
    return (None, exc) if exc is not None else (future.result(), None)


def _region(
    region: str,
    topology: Topology,
    manifest: Manifest,
    mode: str | Exception,
    reads: _RegionReads | None,
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


def _active_region(
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
