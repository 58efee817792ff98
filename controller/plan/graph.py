"""The dependency graph of a topology, and the orders that come from it.

Called by the plan, the CLI (``failover graph``) and the watcher. An edge ``A -> B`` means
*A needs B*. Everything here is a small function over a networkx DiGraph, built on networkx's own
algorithms (``find_cycle``, ``topological_generations``, ``bfs_layers``).
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from controller.collector import paused_gc
from controller.errors import SpecError
from controller.topology import Tier, Topology

#: Where :func:`build` keeps the levels it computed while checking for cycles.
_LEVELS = "controller.plan.graph.activation_levels"


@paused_gc()
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
    >>> from controller.topology import loads
    >>> t = loads('{app: a, regions: {primary: us-east-1, standby: [us-west-2]}, components: '
    ...           '{q: {kind: queue}, f: {kind: function, events: [{source: q}]}}}')
    >>> sorted(build(t).edges), build(t).nodes["f"]["tier"]  # an event source is a need
    ([('f', 'q')], <Tier.COMPUTE: 'compute'>)
    """
    components = topology.components
    graph = nx.DiGraph()
    graph.add_nodes_from(
        (
            name,
            {
                "kind": comp.kind,
                "tier": comp.resolved_tier,
                "degraded": comp.degraded,
                "on_failure": comp.on_failure,
            },
        )
        for name, comp in components.items()
    )
    edges = [(name, dep) for name, comp in components.items() for dep in comp.all_dependencies()]
    for name, dep in edges:
        if dep not in components or dep == name:
            _bad_dependency(topology, name, dep, source)
    kinds = {name: str(comp.kind) for name, comp in components.items()}
    for name, comp in components.items():
        try:
            comp.check_references(kinds)
        except ValueError as exc:
            raise SpecError(
                str(exc), source=source, component=name, field=comp.implied_field
            ) from None
    graph.add_edges_from(edges)
    levels = _levels_or_cycle(graph, source)
    _check_traffic_last(graph, source)
    # networkx clears this cache on any change to the graph's nodes or edges.
    graph.__networkx_cache__[_LEVELS] = levels
    return graph


def _bad_dependency(topology: Topology, name: str, dep: str, source: str | None) -> None:
    comp = topology.components[name]
    field = "depends_on" if dep in comp.depends_on else comp.implied_field
    what = "a component cannot depend on itself" if dep == name else f"unknown component {dep!r}"
    raise SpecError(what, source=source, component=name, field=field)


def _levels_or_cycle(graph: nx.DiGraph, source: str | None) -> list[list[str]]:
    """The activation levels, which a topological pass gives, or the cycle that prevents them.

    ``find_cycle`` is much slower than a topological pass on a large DAG, so it only runs to name
    the cycle once the pass has found there is one.
    """
    try:
        return activation_levels(graph)
    except nx.NetworkXUnfeasible:
        pass
    cycle = nx.find_cycle(graph)
    path = " -> ".join([cycle[0][0], *(v for _, v in cycle)])
    raise SpecError(
        f"dependency cycle: {path}", source=source, component=cycle[0][0], field="depends_on"
    )


def _check_traffic_last(graph: nx.DiGraph, source: str | None) -> None:
    traffic = {n for n, t in graph.nodes(data="tier") if t == Tier.TRAFFIC}
    for dep in sorted(traffic):
        node = next((n for n in sorted(graph.predecessors(dep)) if n not in traffic), None)
        if node is not None:
            raise SpecError(
                f"needs {dep!r}, a traffic component: traffic shifts last, so only traffic "
                "components may need it",
                source=source,
                component=node,
                field="depends_on",
            )


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
    cached = getattr(graph, "__networkx_cache__", {}).get(_LEVELS)
    if cached is not None:
        return [list(level) for level in cached]
    traffic = {n for n, t in graph.nodes(data="tier") if t == Tier.TRAFFIC}
    # Nothing but traffic may need traffic (see build), so the other components' generations in
    # the whole graph are their generations among themselves: one pass over a reversed view, no
    # copy of the graph. Traffic components then get levels of their own, after all others.
    first = nx.topological_generations(graph.reverse(copy=False))
    levels = [level for g in first if (level := sorted(n for n in g if n not in traffic))]
    last = nx.topological_generations(graph.subgraph(traffic).reverse(copy=False))
    return levels + [sorted(g) for g in last]


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
    # One breadth-first walk from all of them at once, along the edges reversed (to dependents).
    reached = set().union(*nx.bfs_layers(graph.reverse(copy=False), down)) if down else set()
    return reached - down


def dependencies(graph: nx.DiGraph, component: str) -> set[str]:
    """Every component that ``component`` needs, transitively (not itself): :func:`impact`'s
    other direction.

    >>> sorted(dependencies(nx.DiGraph([("a", "b"), ("b", "c"), ("d", "e")]), "a"))
    ['b', 'c']
    """
    return set(nx.descendants(graph, component))


def critical_path(graph: nx.DiGraph) -> list[str]:
    """The longest chain of needs: the lower bound of any parallel activation's step count."""
    return list(nx.dag_longest_path(graph))
