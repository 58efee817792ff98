"""The dependency graph: edges, levels, impact, renderings."""

from __future__ import annotations

import json

import networkx as nx

from controller import graph as graphs
from controller import spec
from tests.conftest import EXAMPLE


def example() -> nx.DiGraph:
    return graphs.build(spec.load(EXAMPLE))


def test_edge_means_needs() -> None:
    g = example()
    assert g.has_edge("worker", "orders-queue")
    assert g.has_edge("dns", "api")
    assert not g.has_edge("orders-queue", "worker")


def test_example_is_at_least_four_levels_deep() -> None:
    assert len(graphs.activation_levels(example())) >= 4
    assert len(graphs.critical_path(example())) >= 4


def test_activation_puts_dependencies_first_and_traffic_last() -> None:
    g = example()
    levels = graphs.activation_levels(g)
    where = {n: i for i, names in enumerate(levels) for n in names}
    for a, b in g.edges:
        assert where[b] < where[a], (a, b)
    assert levels[-1] == ["dns"]
    assert levels[-2] == ["api"]


def test_fencing_is_the_reverse() -> None:
    g = example()
    assert graphs.fencing_levels(g) == graphs.activation_levels(g)[::-1]


def test_levels_kept_by_build_follow_a_later_change_to_the_graph() -> None:
    g = example()
    before = graphs.activation_levels(g)
    before[0].append("not-a-component")  # the caller's copy, not the graph's
    assert "not-a-component" not in graphs.activation_levels(g)[0]
    g.add_edge("orders-table", "config")  # networkx clears its cache: the levels follow
    where = {n: i for i, names in enumerate(graphs.activation_levels(g)) for n in names}
    assert where["config"] < where["orders-table"]
    assert graphs.activation_levels(g) == graphs.activation_levels(nx.DiGraph(g))


def test_impact_is_transitive() -> None:
    assert graphs.impact(example(), ["orders-table"]) == {
        "api-handler", "worker", "projector", "nightly-report", "api", "dns"}
    assert graphs.impact(example(), ["receipts-bucket"]) == {"projector"}


def test_renderings_name_every_component() -> None:
    g = example()
    mermaid, dot = graphs.to_mermaid(g), graphs.to_dot(g)
    data = json.loads(json.dumps(graphs.to_data(g)))
    for name in g:
        assert f'"{name}"' in dot
        assert name in mermaid
    assert {n["name"] for n in data["nodes"]} == set(g)
    assert "api_handler --> config" in mermaid
