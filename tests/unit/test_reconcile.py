"""The reconciler's decisions as data: what it would do for a given desired state and report."""

from __future__ import annotations

from controller.controltable.desired import Desired
from controller.engine.reconcile import decide
from controller.health.model import ComponentStatus, Health, RegionStatus, StatusReport
from controller.plan import graph as graphs
from controller.topology import load
from tests.kit.paths import EXAMPLE

TOPOLOGY = load(EXAMPLE)
GRAPH = graphs.build(TOPOLOGY)
PRIMARY, STANDBY, OTHER = "us-east-1", "us-west-2", "eu-west-1"


def region(
    name: str, state: str | dict[str, str], mode: str, reachable: bool = True
) -> RegionStatus:
    states = state if isinstance(state, dict) else {}
    comps = {
        n: ComponentStatus(
            n,
            str(c.kind),
            states.get(n, state if isinstance(state, str) else "active"),
            Health.HEALTHY,
        )
        for n, c in TOPOLOGY.components.items()
    }
    return RegionStatus(
        name,
        reachable,
        Health.HEALTHY if reachable else Health.UNREACHABLE,
        mode,
        comps if reachable else {},
    )


def report(*regions: RegionStatus) -> StatusReport:
    return StatusReport("orders", None, {r.region: r for r in regions})


def test_converged_deployment_needs_nothing() -> None:
    got = decide(
        TOPOLOGY,
        GRAPH,
        Desired(STANDBY, 1),
        report(
            region(PRIMARY, "fenced", "fenced"),
            region(STANDBY, "active", "active"),
            region(OTHER, "fenced", "fenced"),
        ),
    )
    assert got == []


def test_a_returning_region_is_fenced_dependents_first_even_when_paused() -> None:
    got = decide(
        TOPOLOGY,
        GRAPH,
        Desired(STANDBY, 1),
        report(
            region(PRIMARY, "active", "active"),
            region(STANDBY, "active", "active"),
            region(OTHER, "fenced", "fenced"),
        ),
        fence_only=True,
    )
    fences = [f.component for f in got if f.action == "fence"]
    order = [c for level in graphs.fencing_levels(GRAPH) for c in level]
    assert fences == [*order, None]  # every component, dependents first, then the region mode
    assert {f.region for f in got} == {PRIMARY}
    assert fences[0] == "dns"


def test_drift_in_the_active_region_is_activated_dependencies_first_unless_paused() -> None:
    drifted = {n: "active" for n in TOPOLOGY.components} | {"worker": "fenced"}
    desired = Desired(STANDBY, 1)
    state = report(
        region(PRIMARY, "fenced", "fenced"),
        region(STANDBY, drifted, "active"),
        region(OTHER, "fenced", "fenced"),
    )
    assert [(f.action, f.component) for f in decide(TOPOLOGY, GRAPH, desired, state)] == [
        ("activate", "worker")
    ]
    paused = decide(TOPOLOGY, GRAPH, desired, state, fence_only=True)
    assert [f.action for f in paused] == ["report"]


def test_traffic_never_points_at_a_region_whose_dependencies_are_not_serving() -> None:
    broken = {n: "standby" for n in TOPOLOGY.components} | {"orders-table": "missing"}
    got = decide(
        TOPOLOGY,
        GRAPH,
        Desired(STANDBY, 1),
        report(
            region(PRIMARY, "fenced", "fenced"),
            region(STANDBY, broken, "active"),
            region(OTHER, "fenced", "fenced"),
        ),
    )
    dns = [f for f in got if f.component == "dns"]
    assert [f.action for f in dns] == ["report"] and "not pointing traffic" in dns[0].reason


def test_an_unreachable_region_is_reported_not_acted_on() -> None:
    got = decide(
        TOPOLOGY,
        GRAPH,
        Desired(STANDBY, 1),
        report(
            region(PRIMARY, "active", "active", reachable=False),
            region(STANDBY, "active", "active"),
            region(OTHER, "fenced", "fenced"),
        ),
    )
    assert [(f.action, f.region) for f in got] == [("report", PRIMARY)]


def test_a_run_without_a_live_lease_is_taken_over_first() -> None:
    state = report(region(PRIMARY, "active", "active"), region(STANDBY, "standby", "standby"))
    orphan = decide(TOPOLOGY, GRAPH, Desired(STANDBY, 1), state, run_in_progress="r1")
    assert [(f.action, f.run_id) for f in orphan] == [("resume", "r1")]
    held = decide(
        TOPOLOGY, GRAPH, Desired(STANDBY, 1), state, run_in_progress="r1", lease_live=True
    )
    assert [f.action for f in held] == ["report"]


def test_degraded_components_go_back_to_active_once_what_they_need_serves() -> None:
    left = {n: "active" for n in TOPOLOGY.components} | {
        "orders-table": "standby",
        "worker": "degraded",
    }
    got = decide(
        TOPOLOGY,
        GRAPH,
        Desired(STANDBY, 1),
        report(region(PRIMARY, "fenced", "fenced"), region(STANDBY, left, "active")),
    )
    assert [(f.action, f.component) for f in got] == [
        ("activate", "orders-table"),
        ("activate", "worker"),
    ]
    broken = left | {"orders-table": "missing"}
    still = decide(
        TOPOLOGY,
        GRAPH,
        Desired(STANDBY, 1),
        report(region(PRIMARY, "fenced", "fenced"), region(STANDBY, broken, "active")),
    )
    assert [f.action for f in still if f.component == "worker"] == ["report"]
