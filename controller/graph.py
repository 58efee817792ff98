"""The dependency graph of a topology, and the orders that come from it.

Called by the plan, the CLI (``failover graph``) and the watcher. An edge ``A -> B`` means
*A needs B*. Everything here is a small function over a networkx DiGraph, built on networkx's own
algorithms (``find_cycle``, ``topological_generations``, ``ancestors``).
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from controller.errors import SpecError
from controller.spec import Tier, Topology


def build(topology: Topology, *, source: str | None = None) -> nx.DiGraph:
    """Build and validate the dependency graph of ``topology``.

    Parameters
    ----------
    topology : a validated topology.
    source : the file it came from, named in errors.

    Returns
    -------
    A DiGraph with one node per component (attributes ``kind``, ``tier``, ``degraded``,
    ``on_failure``) and an edge ``A -> B`` when A needs B.

    Raises
    ------
    SpecError
        A dependency names an unknown component, a component needs itself, the graph has a
        cycle (the message shows it), or a non-traffic component needs a traffic one.

    Examples
    --------
    >>> from controller.spec import loads
    >>> t = loads('''
    ... app: a
    ... regions: {primary: us-east-1, standby: [us-west-2]}
    ... components:
    ...   t: {kind: table}
    ...   f: {kind: function, depends_on: [t]}
    ... ''')
    >>> sorted(build(t).edges)
    [('f', 't')]
    """
    graph = nx.DiGraph()
    for name, comp in topology.components.items():
        graph.add_node(name, kind=comp.kind, tier=comp.resolved_tier, degraded=comp.degraded,
                       on_failure=comp.on_failure)
    for name, comp in topology.components.items():
        for dep in comp.all_dependencies():
            field = "depends_on" if dep in comp.depends_on else _implied_field(comp.kind)
            if dep not in topology.components:
                raise SpecError(f"unknown component {dep!r}", source=source, component=name,
                                field=field)
            if dep == name:
                raise SpecError("a component cannot depend on itself", source=source,
                                component=name, field=field)
            graph.add_edge(name, dep)
    _check_acyclic(graph, source)
    _check_traffic_last(graph, source)
    return graph


def _implied_field(kind: str) -> str:
    return {"function": "events", "schedule": "target", "api": "routes", "dns": "target"}.get(
        kind, "depends_on")


def _check_acyclic(graph: nx.DiGraph, source: str | None) -> None:
    # is_directed_acyclic_graph is linear; find_cycle is much slower on a large DAG, so it
    # only runs to name the cycle once we know there is one.
    if nx.is_directed_acyclic_graph(graph):
        return
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    path = " -> ".join([cycle[0][0], *(v for _, v in cycle)])
    raise SpecError(f"dependency cycle: {path}", source=source, component=cycle[0][0],
                    field="depends_on")


def _check_traffic_last(graph: nx.DiGraph, source: str | None) -> None:
    for node, dep in graph.edges:
        if graph.nodes[dep]["tier"] == Tier.TRAFFIC and graph.nodes[node]["tier"] != Tier.TRAFFIC:
            raise SpecError(
                f"needs {dep!r}, a traffic component: traffic shifts last, so only traffic "
                "components may need it",
                source=source, component=node, field="depends_on")


def activation_levels(graph: nx.DiGraph) -> list[list[str]]:
    """Levels to activate in, dependencies first; traffic components only after all others.

    Each level's components need only components of earlier levels, so a level's steps can run
    in parallel. Within a level, names are sorted, so the result is deterministic.

    >>> g = nx.DiGraph([("dns", "api"), ("api", "fn"), ("fn", "table")])
    >>> for n, t in [("dns", "traffic"), ("api", "traffic"), ("fn", "compute"), ("table", "data")]:
    ...     g.nodes[n]["tier"] = t
    >>> activation_levels(g)
    [['table'], ['fn'], ['api'], ['dns']]
    """
    traffic = {n for n, t in graph.nodes(data="tier") if t == Tier.TRAFFIC}
    levels: list[list[str]] = []
    for drop in (traffic, set(graph) - traffic):
        # A pruned copy, not a subgraph view: walking a filtered view costs far more.
        sub = graph.copy(as_view=False)
        sub.remove_nodes_from(drop)
        levels += [sorted(g) for g in nx.topological_generations(sub.reverse(copy=False))]
    return levels


def fencing_levels(graph: nx.DiGraph) -> list[list[str]]:
    """Levels to fence in, dependents first: the exact reverse of :func:`activation_levels`.

    >>> g = nx.DiGraph([("fn", "table")])
    >>> g.nodes["fn"]["tier"], g.nodes["table"]["tier"] = "compute", "data"
    >>> fencing_levels(g)
    [['fn'], ['table']]
    """
    return list(reversed(activation_levels(graph)))


def impact(graph: nx.DiGraph, unavailable: Iterable[str]) -> set[str]:
    """Every component that needs one of ``unavailable``, transitively (not those themselves).

    >>> sorted(impact(nx.DiGraph([("a", "b"), ("b", "c"), ("d", "e")]), ["c"]))
    ['a', 'b']
    """
    down = set(unavailable)
    out: set[str] = set()
    for name in down:
        out |= nx.ancestors(graph, name)
    return out - down


def critical_path(graph: nx.DiGraph) -> list[str]:
    """The longest chain of needs: the lower bound of any parallel activation's step count."""
    return list(nx.dag_longest_path(graph))


def to_mermaid(graph: nx.DiGraph) -> str:
    """The graph as a Mermaid flowchart (dependencies point down)."""
    lines = ["flowchart TD"]
    for node, data in sorted(graph.nodes(data=True)):
        lines.append(f'    {_mid(node)}["{node}<br/><i>{data["kind"]} · {data["tier"]}</i>"]')
    lines += [f"    {_mid(a)} --> {_mid(b)}" for a, b in sorted(graph.edges)]
    return "\n".join(lines)


def to_dot(graph: nx.DiGraph) -> str:
    """The graph in Graphviz DOT (one node per component, labelled with kind and tier)."""
    lines = ["digraph topology {", "  rankdir=TB;", "  node [shape=box, style=rounded];"]
    for node, data in sorted(graph.nodes(data=True)):
        lines.append(f'  "{node}" [label="{node}\\n{data["kind"]} / {data["tier"]}"];')
    lines += [f'  "{a}" -> "{b}";' for a, b in sorted(graph.edges)]
    lines.append("}")
    return "\n".join(lines)


def to_data(graph: nx.DiGraph) -> dict[str, object]:
    """The graph as plain data: nodes with attributes, edges, and both level orders."""
    return {
        "nodes": [{"name": n, "kind": str(d["kind"]), "tier": str(d["tier"]),
                   "degraded": str(d["degraded"]) if d["degraded"] else None,
                   "needs": sorted(graph.successors(n))}
                  for n, d in sorted(graph.nodes(data=True))],
        "edges": [list(e) for e in sorted(graph.edges)],
        "activation_levels": activation_levels(graph),
        "fencing_levels": fencing_levels(graph),
    }


def _mid(name: str) -> str:
    return name.replace("-", "_")
