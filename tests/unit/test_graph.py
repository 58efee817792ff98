"""The dependency graph: properties every order must have, over random graphs (hypothesis),
and what the example topology's spec says its edges are.

Each test states what a correct order guarantees rather than how graph.py computes it, so a
wrong implementation (a dependency activated after what needs it, traffic before the rest, a
level that could have run earlier, an impact that misses a transitive dependent) fails here.
"""

from __future__ import annotations

import itertools
import json

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import topology as spec
from controller.errors import SpecError
from controller.plan import graph as graphs
from controller.plan import render
from controller.topology import Tier
from tests.kit.paths import EXAMPLE

TIERS = [Tier.DATA, Tier.EVENTS, Tier.COMPUTE, Tier.TRAFFIC]
#: Made once: hypothesis validates a strategy made from a list (``sampled_from(TIERS)``) each
#: time it is made; the lists below are made of it and sizes, which hypothesis keeps.
TIER = st.sampled_from(TIERS)


@st.composite
def dags(draw: st.DrawFn) -> nx.DiGraph:
    """A DAG of tiered nodes where only traffic needs traffic (what build() accepts)."""
    n = draw(st.integers(1, 14))
    tiers = draw(st.lists(TIER, min_size=n, max_size=n))
    graph = nx.DiGraph()
    for i, tier in enumerate(tiers):
        graph.add_node(f"n{i:02d}", tier=tier, kind="x", degraded=None)
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    for a, b in pairs:
        if a > b and (tiers[b] != Tier.TRAFFIC or tiers[a] == Tier.TRAFFIC):
            graph.add_edge(f"n{a:02d}", f"n{b:02d}")  # a needs b
    return graph


def positions(levels: list[list[str]]) -> dict[str, int]:
    return {n: i for i, names in enumerate(levels) for n in names}


def traffic(graph: nx.DiGraph) -> set[str]:
    return {n for n, t in graph.nodes(data="tier") if t == Tier.TRAFFIC}


@settings(max_examples=200, deadline=None)
@given(dags())
def test_activation_levels_are_a_partition_in_dependency_order(graph: nx.DiGraph) -> None:
    levels = graphs.activation_levels(graph)
    flat = [n for level in levels for n in level]
    assert sorted(flat) == sorted(graph)  # every component exactly once
    assert all(level and level == sorted(level) for level in levels)
    where = positions(levels)
    for a, b in graph.edges:  # a needs b: b is active first
        assert where[b] < where[a], (a, b, levels)


@settings(max_examples=200, deadline=None)
@given(dags())
def test_traffic_is_activated_after_everything_else(graph: nx.DiGraph) -> None:
    where = positions(graphs.activation_levels(graph))
    shifting, rest = traffic(graph), set(graph) - traffic(graph)
    if shifting and rest:
        assert min(where[n] for n in shifting) > max(where[n] for n in rest)


@settings(max_examples=200, deadline=None)
@given(dags())
def test_activation_levels_are_as_early_as_they_can_be(graph: nx.DiGraph) -> None:
    """Nothing waits without a reason: a component not at the start of its part (the other
    components, then traffic) needs something of the level just before it."""
    levels = graphs.activation_levels(graph)
    where = positions(levels)
    shifting = traffic(graph)
    first_traffic = min((where[n] for n in shifting), default=len(levels))
    for node, level in where.items():
        start = first_traffic if node in shifting else 0
        if level > start:
            assert any(where[dep] == level - 1 for dep in graph.successors(node)), (node, levels)


@settings(max_examples=200, deadline=None)
@given(dags())
def test_fencing_takes_dependents_first(graph: nx.DiGraph) -> None:
    levels = graphs.fencing_levels(graph)
    assert sorted(n for level in levels for n in level) == sorted(graph)
    where = positions(levels)
    for a, b in graph.edges:  # a needs b: a is fenced before b
        assert where[a] < where[b]
    if traffic(graph) and set(graph) - traffic(graph):
        assert max(where[n] for n in traffic(graph)) < min(
            where[n] for n in set(graph) - traffic(graph)
        )


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_impact_is_every_transitive_dependent_and_nothing_else(
    graph: nx.DiGraph, data: st.DataObject
) -> None:
    down = data.draw(st.sets(st.sampled_from(sorted(graph)), max_size=3))
    got = graphs.impact(graph, down)
    assert not got & down
    for node in set(graph) - down:
        needs_a_lost_one = any(nx.has_path(graph, node, d) for d in down)
        assert (node in got) == needs_a_lost_one, node
    # What a lost component's dependents need is still there: impact is closed upwards.
    assert all(set(graph.predecessors(n)) <= got | down for n in got)


@settings(max_examples=100, deadline=None)
@given(dags())
def test_the_critical_path_is_a_chain_of_needs_no_longer_than_the_levels(graph: nx.DiGraph) -> None:
    path = graphs.critical_path(graph)
    assert all(graph.has_edge(a, b) for a, b in itertools.pairwise(path))
    assert 1 <= len(path) <= len(graphs.activation_levels(graph))
    if not traffic(graph):  # one part: the levels are exactly as many as the longest chain
        assert len(path) == len(graphs.activation_levels(graph))


def test_a_cycle_is_refused_and_named() -> None:
    ring = "\n".join(f"  f{i}: {{kind: function, depends_on: [f{(i + 1) % 4}]}}" for i in range(4))
    topology = spec.loads(
        f"app: a\nregions: {{primary: us-east-1, standby: [us-west-2]}}\ncomponents:\n{ring}\n"
    )
    with pytest.raises(SpecError, match="dependency cycle: f") as err:
        graphs.build(topology, source="t.yaml")
    named = str(err.value).split("dependency cycle: ")[1].split(" -> ")
    assert named[0] == named[-1] and len(named) == 5
    assert all(f"f{(int(a[1]) + 1) % 4}" == b for a, b in itertools.pairwise(named))


def test_a_component_may_not_need_traffic() -> None:
    text = """
app: a
regions: {primary: us-east-1, standby: [us-west-2]}
components:
  t: {kind: table}
  f: {kind: function, depends_on: [t]}
  api: {kind: api, routes: [{method: GET, path: /, function: f}]}
  g: {kind: function, depends_on: [api]}
"""
    with pytest.raises(SpecError, match="traffic"):
        graphs.build(spec.loads(text))


def test_the_example_edges_follow_its_spec() -> None:
    topology = spec.load(EXAMPLE)
    g = graphs.build(topology)
    assert set(g) == set(topology.components)
    for name, comp in topology.components.items():
        assert set(g.successors(name)) == set(comp.all_dependencies()), name
    assert g.has_edge("worker", "orders-queue") and not g.has_edge("orders-queue", "worker")


def test_levels_kept_by_build_follow_a_later_change_to_the_graph() -> None:
    g = graphs.build(spec.load(EXAMPLE))
    before = graphs.activation_levels(g)
    before[0].append("not-a-component")  # the caller's copy, not the graph's
    assert "not-a-component" not in graphs.activation_levels(g)[0]
    g.add_edge("orders-table", "config")  # networkx clears its cache: the levels follow
    where = positions(graphs.activation_levels(g))
    assert where["config"] < where["orders-table"]
    assert graphs.activation_levels(g) == graphs.activation_levels(nx.DiGraph(g))


def test_renderings_name_every_component_and_edge() -> None:
    g = graphs.build(spec.load(EXAMPLE))
    mermaid, dot = render.graph_to_mermaid(g), render.graph_to_dot(g)
    data = json.loads(json.dumps(render.graph_to_data(g)))
    for name in g:
        assert f'"{name}"' in dot
    for a, b in g.edges:
        assert f'"{a}" -> "{b}"' in dot
        assert f"{a.replace('-', '_')} --> {b.replace('-', '_')}" in mermaid
    assert {n["name"] for n in data["nodes"]} == set(g)
    assert sorted(map(tuple, data["edges"])) == sorted(g.edges)
