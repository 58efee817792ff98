"""Verdicts: how healthy a component or a region is, from what was read of it.

Called by the reads (:mod:`controller.health.reads`) once a region's reads are in. Small pure
functions over the model: no AWS, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from controller.actions import alarms as alarm_reads
from controller.actions.base import Observed
from controller.actions.state import State, state_of
from controller.aws import is_unreachable
from controller.contract import FunctionAlarm, Mode
from controller.errors import ActionError, TransientStepError
from controller.health.model import ComponentStatus, Health, RegionStatus, Signals

#: What the functions' alarms of a healthy region that does not serve say, by its mode: a fenced
#: function is throttled by whatever still calls it (Route 53's checkers call the health route
#: every 10 s), and a region that serves no traffic gets no invocations.
EXPECTED: dict[str, frozenset[FunctionAlarm]] = {
    Mode.FENCED.value: frozenset({FunctionAlarm.THROTTLES_HIGH, FunctionAlarm.INVOCATIONS_LOW}),
    Mode.STANDBY.value: frozenset({FunctionAlarm.INVOCATIONS_LOW}),
}


#: Route 53 counts an endpoint healthy while more than this share of its health checkers say
#: so (AWS's Route 53 developer guide, "How Amazon Route 53 determines whether a health check is
#: healthy"): one checker cut off from the endpoint does not turn the check unhealthy.
ROUTE53_HEALTHY_SHARE = 0.18


def route53_healthy(observations: Collection[Mapping[str, object]]) -> bool:
    """Whether a health check is healthy, as Route 53 decides it from ``observations`` (the
    ``HealthCheckObservations`` of ``GetHealthCheckStatus``: one per checker): more than
    :data:`ROUTE53_HEALTHY_SHARE` of them report ``Success``. No observation: not healthy.

    >>> ok, bad = ({"StatusReport": {"Status": s}} for s in ("Success: 200", "Failure"))
    >>> route53_healthy([ok] + [bad] * 7), route53_healthy([ok] * 2 + [bad] * 6)
    (False, True)
    >>> route53_healthy([ok, bad, bad]), route53_healthy([bad]), route53_healthy([])
    (True, False, False)
    """
    said = [str(_status(o)).startswith("Success") for o in observations]
    return bool(said) and sum(said) > ROUTE53_HEALTHY_SHARE * len(said)


def _status(observation: Mapping[str, object]) -> object:
    report = observation.get("StatusReport")
    return report.get("Status", "") if isinstance(report, Mapping) else ""


def expected_alarms(names: Iterable[str], mode: str | None, *, fenced: bool = False) -> set[str]:
    """The alarms of ``names`` whose ``ALARM`` is what a healthy region in ``mode`` shows, or a
    fenced component (``fenced``: reserved concurrency 0) whatever its region's mode.

    A region's health says whether it *could* serve, whatever its mode: these alarms say it
    does not serve now, which its mode already says, so they are not held against it (else a
    fenced region would never look healthy again, and nothing would fail back to it).

    >>> sorted(expected_alarms(["f-throttles-high", "f-errors-high"], "fenced"))
    ['f-throttles-high']
    >>> expected_alarms(["f-throttles-high"], "active"), expected_alarms(["f-x"], None, fenced=True)
    (set(), set())
    >>> expected_alarms(["f-throttles-high"], "active", fenced=True)
    {'f-throttles-high'}
    """
    allowed = EXPECTED.get(Mode.FENCED.value if fenced else "", frozenset()) | EXPECTED.get(
        mode or "", frozenset()
    )
    return {n for n in names if FunctionAlarm.of(n) in allowed}


def probes_apply(mode: str | None) -> bool:
    """Whether the HTTP probe and Route 53's check of a region in ``mode`` say anything of it.

    Both call the health route, which a function of the region answers; fencing throttles that
    function to 0, so in a fenced region they fail whatever the region could do: they abstain
    rather than vote against it. The region is measured again once it is activated.

    >>> probes_apply("fenced"), probes_apply("standby"), probes_apply(None)
    (False, True, True)
    """
    return mode != Mode.FENCED.value


def component_status(
    name: str,
    kind: str,
    observed: Observed | None,
    error: BaseException | None,
    alarms: dict[str, str],
    expected: Collection[str] = (),
) -> ComponentStatus:
    """One component's health from its read (or the error of reading it) and its alarms
    (those in ``expected`` excepted: see :func:`expected_alarms`)."""
    if error is not None or observed is None:
        unreachable = (
            error is None
            or isinstance(error, TimeoutError)
            or is_unreachable(error.__cause__ or error)
            or (isinstance(error, TransientStepError) and error.unreachable)
        )
        if unreachable:
            return ComponentStatus(
                name, kind, State.UNREACHABLE, Health.UNREACHABLE, detail=str(error or "")
            )
        detail = str(error) if isinstance(error, ActionError) else repr(error)
        return ComponentStatus(name, kind, State.UNKNOWN, Health.UNHEALTHY, detail=detail)
    firing = [a for a in alarm_reads.firing(alarms) if a not in expected]
    if observed.state == State.MISSING or not observed.healthy or firing:
        detail = observed.detail or ("alarm: " + ", ".join(firing))
        health = Health.UNHEALTHY
    elif observed.state == State.DEGRADED:
        detail, health = observed.detail, Health.DEGRADED
    else:
        detail, health = observed.detail, Health.HEALTHY
    return ComponentStatus(name, kind, observed.state, health, detail, alarms, observed.facts)


def region_signals(
    alarm_states: Mapping[str, str],
    mode: str | None,
    expected: Collection[str] = (),
    *,
    route53: bool | None = None,
    http_ok: bool | None = None,
) -> Signals:
    """A region's signals: its alarms in ``ALARM`` but those ``expected`` (its mode, or its
    fenced components, explain them), and its probes unless its mode makes them abstain
    (:func:`probes_apply`).

    >>> s = region_signals({"f-throttles-high": "ALARM"}, "fenced", {"f-throttles-high"},
    ...     http_ok=False)
    >>> s.alarms_firing, s.alarms_expected, s.http_ok
    ((), ('f-throttles-high',), None)
    """
    firing = alarm_reads.firing(dict(alarm_states))
    measured = probes_apply(mode)
    return Signals(
        alarms_firing=tuple(a for a in firing if a not in expected),
        route53_healthy=route53 if measured else None,
        http_ok=http_ok if measured else None,
        alarms_expected=tuple(a for a in firing if a in expected),
    )


def region_verdict(
    components: Iterable[ComponentStatus], signals: Signals, mode: str | None
) -> Health:
    """A region's health: its worst component, an alarm, a failed HTTP probe, or its mode.

    >>> ok = ComponentStatus("q", "queue", State.ACTIVE, Health.HEALTHY)
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
    if Health.DEGRADED in healths or (mode and state_of(mode) == State.DEGRADED):
        return Health.DEGRADED
    return Health.HEALTHY


def votes(region: RegionStatus) -> dict[str, bool]:
    """Each independent probe's vote on ``region`` (True: failing); silent probes do not vote.

    What the watcher counts before it fails a region over, and what the status page shows: the
    same on AWS and in the sandbox (whose own Route 53 checkers probe).

    >>> votes(RegionStatus("us-east-1", reachable=False, health=Health.UNREACHABLE))
    {'control_plane': True}
    """
    counted = {"control_plane": not region.reachable}
    if region.reachable:
        counted["alarms"] = bool(region.signals.alarms_firing)
    if region.signals.route53_healthy is not None:
        counted["route53"] = not region.signals.route53_healthy
    if region.signals.http_ok is not None:
        counted["http"] = not region.signals.http_ok
    return counted


def warnings(report: Mapping[str, RegionStatus], active: str | None) -> tuple[str, ...]:
    """Two regions that both say active: the one traffic does not go to must be fenced."""
    claimed = [name for name, region in report.items() if region.mode == Mode.ACTIVE]
    if len(claimed) < 2:
        return ()
    stale = [name for name in claimed if name != active]
    every = "both" if len(claimed) == 2 else "all"
    return (
        f"{' and '.join(claimed)} {every} say active; traffic goes to {active or '?'}: "
        f"fence {', '.join(stale)} (failover execute --to {active or 'R'} --from "
        f"{stale[0]}, or let the watcher do it)",
    )
