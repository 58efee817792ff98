"""Health: every component's state and health in every region, read in parallel, fast.

Called by ``failover status`` and the watcher. One cheap probe per region (its mode parameter)
decides whether the region is reachable: short timeouts, no retries, so a region that does not
answer costs one probe timeout and is ``unreachable``. Every component of every region is read
through its action at the same time, beside the region's alarm states, its Route 53 health-check
status and, when given, an HTTP probe of its endpoint; only the reachable regions' reads are
awaited. The result is plain data (:mod:`controller.health.model`); the verdicts are small
functions over it (:mod:`controller.health.verdicts`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from typing import Any, TypeVar

from controller import clock
from controller.actions import alarms as alarm_reads
from controller.actions import mode as modes
from controller.actions.base import Action, Observed
from controller.actions.registry import action_for
from controller.aws import AwsSettings, Clients, classify
from controller.contract import GLOBAL, STATUS_DEADLINE_SECONDS, Mode
from controller.controltable import table as controltable
from controller.errors import PermanentStepError, TransientStepError
from controller.health import verdicts
from controller.health.aggregate import RegionReads, active_region, futures, region_status
from controller.health.model import HttpProbe, RegionStatus, StatusReport
from controller.topology import Kind, Topology
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)
T = TypeVar("T")

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
READ_WALL_FLOOR = 0.5
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
    beside: Callable[[], object] | None = None,
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
    beside : called once the probes are on their way: a caller's own read that must not delay
        them (``failover status`` reads the control table there).

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
    until = started + clock.patient(deadline, READ_WALL_FLOOR)
    try:
        # The probes go first: each reads every mode parameter of its region, in calls of ten
        # (the region's own first: its answer says the region answers), so a hung region costs
        # one probe timeout in all, counted from the first thing sent. A region's other reads
        # start once its probe answered, each component given its modes as the probe read them.
        actions = {r: _actions(topology, manifest, fast, r, components) for r in names}
        for r in names:  # made here, before any other client: each probe is sent at once
            fast.client("ssm", r)
        probes = {
            r: pool.submit(
                probe_parameters,
                fast,
                r,
                _parameter_names(topology, manifest, r, actions[r]),
                until,
            )
            for r in names
        }
        if beside is not None:
            beside()
        values, reads = _read_answering(
            pool, probes, actions, fast, topology, manifest, http_probe, until
        )
        wait(futures(reads), timeout=clock.wall(clock.remaining(until)))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    mode_of = {
        r: got if isinstance(got, Exception) else _region_mode(topology, manifest, r, got)
        for r, got in values.items()
    }
    controltable.suspect(clients, manifest, [r for r in names if not isinstance(mode_of[r], str)])
    report = {r: region_status(r, topology, manifest, mode_of[r], reads.get(r)) for r in names}
    elapsed = clock.monotonic() - started
    log.info("status of %d regions in %.2fs", len(names), elapsed)
    active = active_region(report, topology, manifest, fast)
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


#: GetParameters takes at most this many names a call.
PARAMETERS_PER_CALL = 10


def probe_parameters(
    clients: Clients, region: str, names: Sequence[str], until: float
) -> dict[str, str]:
    """The values of ``region``'s mode parameters ``names`` (the region's own first), read in
    calls of :data:`PARAMETERS_PER_CALL`: the probe that decides whether the region answers.

    A region that answered with an error a retry may fix (throttled, a 5xx) did answer: the
    call is made again, :data:`PROBE_PAUSE_SECONDS` apart, up to
    :data:`PROBE_ANSWERED_ATTEMPTS` times while the deadline (``until``, monotonic) allows, so
    that a throttled region (as every region may be while everyone fails over) is not taken for
    a lost one. A region that did not answer (timed out, refused) is not asked again: one
    timeout says it is unreachable. A parameter that does not exist is absent.
    """
    values: dict[str, str] = {}
    for start in range(0, len(names), PARAMETERS_PER_CALL):
        batch = list(names[start : start + PARAMETERS_PER_CALL])
        values |= _answered(functools.partial(modes.get, clients, region, batch), region, until)
    return values


def _answered(read: Callable[[], T], region: str, until: float) -> T:
    """``read()``, again after a throttle or a 5xx (see :func:`probe_parameters`)."""
    attempt = 1
    while True:
        try:
            return read()
        except Exception as exc:
            error = classify(exc, component="mode", region=region)
            pause = PROBE_PAUSE_SECONDS * attempt
            last = attempt >= PROBE_ANSWERED_ATTEMPTS or clock.monotonic() + pause >= until
            if not isinstance(error, TransientStepError) or error.unreachable or last:
                raise error from exc
            log.info("probe of %s: %s; reading again", region, error)
            clock.sleep(pause)
            attempt += 1


def _actions(
    topology: Topology, manifest: Manifest, clients: Clients, region: str, components: bool
) -> dict[str, Action | PermanentStepError]:
    """Each component's action in ``region`` (or why it has none); none for a signals read."""
    out: dict[str, Action | PermanentStepError] = {}
    for name in topology.components if components else ():
        try:
            out[name] = action_for(topology, manifest, clients, name, region)
        except PermanentStepError as exc:
            out[name] = exc
    return out


def _parameter_names(
    topology: Topology,
    manifest: Manifest,
    region: str,
    actions: Mapping[str, Action | PermanentStepError],
) -> list[str]:
    """The region's mode parameter, then each component's (once each)."""
    own = [a.mode_parameter for a in actions.values() if isinstance(a, Action)]
    return list(dict.fromkeys([modes.parameter_of(topology, manifest, region), *own]))


def _read_answering(
    pool: ThreadPoolExecutor,
    probes: Mapping[str, Future[dict[str, str]]],
    actions: Mapping[str, Mapping[str, Action | PermanentStepError]],
    clients: Clients,
    topology: Topology,
    manifest: Manifest,
    http_probe: HttpProbe | None,
    until: float,
) -> tuple[dict[str, dict[str, str] | Exception], dict[str, RegionReads]]:
    """Start each region's reads as soon as its probe answers, until ``until``: what each probe
    read (or the error that says its region did not answer), and the reads started."""
    region_of = {future: region for region, future in probes.items()}
    values: dict[str, dict[str, str] | Exception] = {}
    reads: dict[str, RegionReads] = {}
    try:
        for future in as_completed(region_of, timeout=clock.wall(clock.remaining(until))):
            region = region_of[future]
            exc = future.exception()
            if exc is not None:
                values[region] = classify(exc, region=region)
                continue
            got = values[region] = future.result()
            reads[region] = _read_region(
                pool, clients, topology, manifest, region, actions[region], got, http_probe
            )
    except TimeoutError:
        pass
    for region in probes:
        values.setdefault(
            region, TransientStepError("no answer before the deadline", region=region)
        )
    return values, reads


def _read_region(
    pool: ThreadPoolExecutor,
    clients: Clients,
    topology: Topology,
    manifest: Manifest,
    region: str,
    actions: Mapping[str, Action | PermanentStepError],
    parameters: dict[str, str],
    http_probe: HttpProbe | None,
) -> RegionReads:
    """Start the reads of a region that answered: each component (given the modes its probe
    read), its alarms, Route 53's view of it, and its HTTP health route."""
    regional = manifest.regions.get(region)
    alarm_names = [a for c in (regional.components.values() if regional else ()) for a in c.alarms]
    url = _health_url(topology, manifest, region)
    return RegionReads(
        components={
            name: pool.submit(_read_one, action, parameters) for name, action in actions.items()
        },
        alarms=pool.submit(alarm_reads.alarm_states, clients, region, alarm_names),
        route53=pool.submit(_route53_healthy, clients, manifest, region),
        http=pool.submit(http_probe, region, clients.http_url(url)) if http_probe and url else None,
    )


def _read_one(action: Action | PermanentStepError, parameters: dict[str, str]) -> Observed:
    if isinstance(action, PermanentStepError):
        raise action
    return action.read(parameters)


def _region_mode(
    topology: Topology, manifest: Manifest, region: str, parameters: Mapping[str, str]
) -> str:
    """The mode ``region`` serves in (``standby`` when its parameter was never written)."""
    return parameters.get(modes.parameter_of(topology, manifest, region)) or Mode.STANDBY


def _route53_healthy(clients: Clients, manifest: Manifest, region: str) -> bool | None:
    """What Route 53's own checkers say of ``region``, as Route 53 counts them."""
    check = manifest.dns.health_checks.get(region) if manifest.dns else None
    if not check:
        return None
    got = clients.client("route53", GLOBAL).get_health_check_status(HealthCheckId=check)
    return verdicts.route53_healthy(got.get("HealthCheckObservations", []))


def _health_url(topology: Topology, manifest: Manifest, region: str) -> str | None:
    regional = manifest.regions.get(region)
    if regional is None or not regional.api_endpoint:
        return None
    path = next(
        (getattr(c, "health_path", "/health") for _, c in topology.of_kind(Kind.API)), "/health"
    )
    return regional.api_endpoint.rstrip("/") + path
