"""Plan properties over random valid topologies (hypothesis), and the example's plan."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controller import topology as spec
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from controller.plan.steps import FailoverPlan
from tests.kit.paths import EXAMPLE

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]
PLAIN_KINDS = ["function", "queue", "table", "bucket", "stream", "parameter"]
MODES = [None, "read_only", "queue_writes", "static", "unavailable"]
#: Strategies made once: hypothesis validates each strategy it is given, and one made from a
#: list at every draw (``sampled_from(pool)``) was validated at every draw, about half the
#: module's time. Those below that depend on a size are made from hashable arguments, which
#: hypothesis keeps: one per size.
KINDS, DEGRADED, REGION_ORDERS = (
    st.sampled_from(PLAIN_KINDS),
    st.sampled_from(MODES),
    st.permutations(REGIONS),
)


def _picks(size: int, most: int) -> st.SearchStrategy[list[int]]:
    """Up to ``most`` distinct positions in a list of ``size``."""
    return st.lists(st.integers(0, size - 1), max_size=most, unique=True)


@st.composite
def topologies(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid topology: a DAG over up to 25 components, traffic only needed by traffic."""
    n = draw(st.integers(1, 25))
    components: dict[str, dict[str, Any]] = {}
    traffic: set[str] = set()
    for i in range(n):
        name = f"c{i}"
        is_traffic = draw(st.integers(0, 5)) == 0
        kind = "api" if is_traffic else draw(KINDS)
        pool = [f"c{j}" for j in range(i) if is_traffic or f"c{j}" not in traffic]
        deps = [pool[k] for k in draw(_picks(len(pool), 4))] if pool else []
        comp: dict[str, Any] = {"kind": kind, "depends_on": deps}
        mode = draw(DEGRADED)
        if mode:
            comp["degraded"] = mode
        components[name] = comp
        if is_traffic:
            traffic.add(name)
    names = tuple(components)
    order = draw(st.permutations(names))
    regions = draw(REGION_ORDERS)
    return {
        "app": "gen",
        "regions": {"primary": regions[0], "standby": list(regions[1:3])},
        "components": {k: components[k] for k in order},
    }


def plan_for(data: dict[str, Any], unavailable: list[str]) -> tuple[spec.Topology, FailoverPlan]:
    topology = spec.Topology.model_validate(data)
    g = graphs.build(topology)
    target = topology.regions.standby[0]
    return topology, build_plan(topology, g, target=target, unavailable=unavailable)


def dependents(data: dict[str, Any], roots: set[str]) -> set[str]:
    """Transitive dependents, computed without networkx (an independent oracle)."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, comp in data["components"].items():
            if name in found or name in roots:
                continue
            if any(d in roots or d in found for d in comp["depends_on"]):
                found.add(name)
                changed = True
    return found


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    data = draw(topologies())
    names = sorted(data["components"])
    return data, [names[k] for k in draw(_picks(len(names), 3))]


@settings(max_examples=150, deadline=None)
@given(requests())
def test_every_step_comes_after_what_it_needs(req: tuple[dict[str, Any], list[str]]) -> None:
    data, down = req
    _, plan = plan_for(data, down)
    level = {s.id: s.level for s in plan.steps}
    for step in plan.steps:
        for need in step.needs:
            assert level[need] < step.level, (need, step.id)


@settings(max_examples=150, deadline=None)
@given(requests())
def test_steps_cover_every_component_once(req: tuple[dict[str, Any], list[str]]) -> None:
    data, down = req
    _, plan = plan_for(data, down)
    fences = [s.component for s in plan.steps if s.phase == "fence"]
    activations = [s.component for s in plan.steps if s.phase == "activate"]
    assert sorted(fences) == sorted(data["components"])
    assert sorted(activations) == sorted(set(data["components"]) - set(down))
    assert all(s.region == plan.source for s in plan.steps if s.phase == "fence")
    assert all(s.region == plan.target for s in plan.steps if s.phase == "activate")
    last_fence = max(s.level for s in plan.steps if s.phase == "fence")
    assert all(s.level > last_fence for s in plan.steps if s.phase == "activate")


@settings(max_examples=150, deadline=None)
@given(topologies())
def test_fencing_is_the_exact_reverse_of_activation(data: dict[str, Any]) -> None:
    _, plan = plan_for(data, [])
    fence = [sorted(s.component for s in lv) for lv in plan.levels if lv[0].phase == "fence"]
    act = [sorted(s.component for s in lv) for lv in plan.levels if lv[0].phase == "activate"]
    assert fence == act[::-1]


@settings(max_examples=150, deadline=None)
@given(requests())
def test_traffic_comes_last(req: tuple[dict[str, Any], list[str]]) -> None:
    data, down = req
    topology, plan = plan_for(data, down)
    act = [s for s in plan.steps if s.phase == "activate"]
    traffic = [s.level for s in act if topology.components[s.component].resolved_tier == "traffic"]
    other = [s.level for s in act if topology.components[s.component].resolved_tier != "traffic"]
    if traffic and other:
        assert min(traffic) > max(other)


@settings(max_examples=150, deadline=None)
@given(requests())
def test_degraded_map_is_the_transitive_dependents(req: tuple[dict[str, Any], list[str]]) -> None:
    data, down = req
    _, plan = plan_for(data, down)
    assert set(plan.degraded) == dependents(data, set(down))
    for name, mode in plan.degraded.items():
        assert mode == (data["components"][name].get("degraded") or "unavailable")
    for step in plan.steps:
        if step.phase == "activate":
            assert (step.action == "activate_degraded") == (step.component in plan.degraded)


@settings(max_examples=100, deadline=None)
@given(requests())
def test_plans_are_deterministic(req: tuple[dict[str, Any], list[str]]) -> None:
    data, down = req
    first = json.dumps(plan_for(data, down)[1].to_dict())
    again = json.dumps(plan_for(json.loads(json.dumps(data)), list(reversed(down)))[1].to_dict())
    assert first == again
    assert FailoverPlan.from_dict(json.loads(first)).to_dict() == json.loads(first)


def test_example_plan_fences_traffic_first_and_activates_it_last() -> None:
    t = spec.load(EXAMPLE)
    plan = build_plan(t, graphs.build(t), target="us-west-2")
    assert plan.steps[0].id == "fence:dns@us-east-1"
    assert plan.steps[-1].id == "activate:dns@us-west-2"
    worker = plan.step("activate:worker@us-west-2")
    assert set(worker.needs) == {
        "fence:worker@us-east-1",
        "activate:orders-queue@us-west-2",
        "activate:orders-table@us-west-2",
        "activate:config@us-west-2",
    }
