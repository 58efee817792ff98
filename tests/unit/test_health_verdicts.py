"""A region's health says whether it *could* serve, whatever its mode (issue 26, item 1).

Fenced, a region's traffic-facing function is throttled to 0 while Route 53's checkers keep
calling its health route: AWS computes its throttles alarm in ALARM, and in the deploy-time
primary (missing data breaching) its low-invocations alarm too; the health route itself fails.
None of that is a fault of the region: the verdict, the watcher's good/bad and the failback
precheck must accept it. The same signals in the region that serves still fail it.
"""

from __future__ import annotations

from controller import graph as graphs
from controller import health
from controller.actions.base import Observed, State
from controller.contract import FunctionAlarm
from controller.health import Health, RegionStatus
from controller.plan import build_plan
from controller.prechecks import target_check
from controller.spec import load
from controller.watcher import Evaluation
from tests.conftest import EXAMPLE

TOPOLOGY = load(EXAMPLE)
PRIMARY, STANDBY = "us-east-1", "us-west-2"
HANDLER = TOPOLOGY.physical_name("api-handler", PRIMARY)
THROTTLES = f"{HANDLER}-{FunctionAlarm.THROTTLES_HIGH.value}"
QUIET = f"{HANDLER}-{FunctionAlarm.INVOCATIONS_LOW.value}"
ERRORS = f"{HANDLER}-{FunctionAlarm.ERRORS_HIGH.value}"
#: What AWS computes for the api-handler of a fenced deploy-time primary.
FENCED_ALARMS = {THROTTLES: "ALARM", QUIET: "ALARM", ERRORS: "OK"}


def region(mode: str, alarms: dict[str, str], *, http_ok: bool | None = False) -> RegionStatus:
    """``PRIMARY`` as the health reads put it together: the api-handler read back in the state
    the mode gives it (concurrency 0 when fenced), its alarms, a failing health route."""
    state = State.FENCED if mode == "fenced" else State.ACTIVE
    observed = Observed(state, facts={"concurrency": 0 if mode == "fenced" else None})
    expected = health.expected_alarms(alarms, mode, fenced=state == State.FENCED)
    handler = health.component_status("api-handler", "function", observed, None, alarms, expected)
    signals = health.region_signals(alarms, mode, expected, route53=http_ok, http_ok=http_ok)
    verdict = health.region_verdict([handler], signals, mode)
    return RegionStatus(
        PRIMARY, True, verdict, mode=mode, components={"api-handler": handler}, signals=signals
    )


def evaluation(status: RegionStatus) -> Evaluation:
    ok = {"control_plane": False, "alarms": False}
    return Evaluation(
        0.0,
        STANDBY,
        {PRIMARY: status.health.value, STANDBY: "healthy"},
        {PRIMARY: health.votes(status), STANDBY: ok},
        quorum=2,
    )


def test_a_fenced_regions_own_throttles_and_silence_are_expected_not_a_fault() -> None:
    fenced = region("fenced", FENCED_ALARMS)
    assert fenced.health is Health.HEALTHY, fenced
    assert fenced.signals.alarms_firing == ()
    assert set(fenced.signals.alarms_expected) == {THROTTLES, QUIET}
    assert fenced.components["api-handler"].health is Health.HEALTHY
    # the health route answered by a throttled function says nothing of the region: no vote
    assert health.votes(fenced) == {"control_plane": False, "alarms": False}
    assert evaluation(fenced).good(PRIMARY)  # the standby choice and the failback's count


def test_the_failback_precheck_accepts_a_fenced_region_with_those_alarms() -> None:
    plan = build_plan(TOPOLOGY, graphs.build(TOPOLOGY), source=STANDBY, target=PRIMARY)
    check = target_check(TOPOLOGY, plan, region("fenced", FENCED_ALARMS))
    assert check.ok, check.detail


def test_the_same_signals_in_the_serving_region_still_fail_it() -> None:
    active = region("active", FENCED_ALARMS)
    assert active.health is Health.UNHEALTHY
    assert set(active.signals.alarms_firing) == {THROTTLES, QUIET}
    assert health.votes(active) == {
        "control_plane": False,
        "alarms": True,
        "route53": True,
        "http": True,
    }
    assert evaluation(active).bad(PRIMARY)
    plan = build_plan(TOPOLOGY, graphs.build(TOPOLOGY), source=STANDBY, target=PRIMARY)
    assert not target_check(TOPOLOGY, plan, active).ok


def test_a_fenced_region_whose_function_errors_is_still_unhealthy() -> None:
    broken = region("fenced", {**FENCED_ALARMS, ERRORS: "ALARM"})
    assert broken.health is Health.UNHEALTHY
    assert broken.signals.alarms_firing == (ERRORS,)
    assert not evaluation(broken).good(PRIMARY)


def test_a_standby_expects_no_traffic_but_not_throttles() -> None:
    """A standby is not fenced: its functions may run, so a throttle there is a fault (the
    account's concurrency is gone), while its silence is not."""
    quiet = region("standby", {QUIET: "ALARM"}, http_ok=True)
    assert quiet.health is Health.HEALTHY and quiet.signals.alarms_expected == (QUIET,)
    throttled = region("standby", {THROTTLES: "ALARM"}, http_ok=True)
    assert throttled.health is Health.UNHEALTHY
    assert throttled.signals.alarms_firing == (THROTTLES,)


def test_a_fenced_function_in_a_region_that_says_active_expects_its_throttles() -> None:
    """Mid-run (the mode is written last) or fenced by hand: the component's own state
    explains its throttles; the region still counts its other signals."""
    observed = Observed(State.FENCED, facts={"concurrency": 0})
    expected = health.expected_alarms({THROTTLES: "ALARM"}, "active", fenced=True)
    status = health.component_status(
        "api-handler", "function", observed, None, {THROTTLES: "ALARM"}, expected
    )
    assert status.health is Health.HEALTHY and expected == {THROTTLES}
