"""The failover plan: which steps, in which order, and who answers degraded.

Called by the CLI (``failover plan``), the executor and the watcher. A plan
(:class:`controller.plan.steps.FailoverPlan`) is pure data built from the graph and the request;
it touches no AWS and is drawn as a table, JSON, Mermaid or Graphviz elsewhere
(:mod:`controller.plan.render`). Order: fence the source dependents first, then activate the
target dependencies first, traffic last; every step names the steps it needs.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from controller.collector import paused_gc
from controller.contract import DegradedMode
from controller.errors import UsageError
from controller.plan import graph as graphs
from controller.plan.steps import FailoverPlan, Phase, Step, StepAction, step_id
from controller.topology import Topology


def degraded_map(
    topology: Topology, graph: nx.DiGraph, unavailable: Iterable[str]
) -> dict[str, DegradedMode]:
    """Every component that needs an unavailable one, with its declared degraded mode.

    A component that declares no mode is ``unavailable``: it cannot answer at all.
    """
    return {
        name: topology.components[name].degraded or DegradedMode.UNAVAILABLE
        for name in sorted(graphs.impact(graph, unavailable))
    }


@paused_gc()
def build_plan(
    topology: Topology,
    graph: nx.DiGraph,
    *,
    target: str,
    source: str | None = None,
    unavailable: Iterable[str] = (),
) -> FailoverPlan:
    """Build the plan of a failover from ``source`` (default: the primary) to ``target``.

    Parameters
    ----------
    topology, graph : the topology and its graph (:func:`controller.plan.graph.build`).
    target : the region to activate.
    source : the region to fence; defaults to the primary.
    unavailable : components that cannot be activated in ``target``; they get no activate step,
        and everything that needs them runs degraded.

    Returns
    -------
    A :class:`FailoverPlan`: fence steps in ``source`` (dependents first), then activate steps in
    ``target`` (dependencies first, traffic last), each with its level and the ids it needs.

    Raises
    ------
    UsageError
        Unknown region or component, or ``source == target``.

    Examples
    --------
    >>> from controller.topology import loads
    >>> t = loads('''
    ... app: a
    ... regions: {primary: us-east-1, standby: [us-west-2]}
    ... components:
    ...   t: {kind: table}
    ...   f: {kind: function, depends_on: [t], degraded: read_only}
    ... ''')
    >>> p = build_plan(t, graphs.build(t), target="us-west-2")
    >>> [s.id for s in p.steps]  # doctest: +NORMALIZE_WHITESPACE
    ['fence:f@us-east-1', 'fence:t@us-east-1', 'activate:t@us-west-2', 'activate:f@us-west-2']
    >>> build_plan(t, graphs.build(t), target="us-west-2", unavailable=["t"]).degraded
    {'f': <DegradedMode.READ_ONLY: 'read_only'>}
    """
    source = source or topology.regions.primary
    regions = topology.regions.all
    for label, region in (("--from", source), ("--to", target)):
        if region not in regions:
            raise UsageError(
                f"{label} {region!r} is not a region of {topology.app} "
                f"(regions: {', '.join(regions)})"
            )
    if source == target:
        raise UsageError(f"--from and --to are both {source!r}: nothing to fail over")
    down = tuple(sorted(set(unavailable)))
    unknown = [c for c in down if c not in topology.components]
    if unknown:
        raise UsageError(f"--unavailable {unknown[0]!r} is not a component of {topology.app}")
    degraded = degraded_map(topology, graph, down)

    activation = graphs.activation_levels(graph)
    fence_id = {name: step_id(Phase.FENCE, name, source) for name in graph}
    activate_id = {name: step_id(Phase.ACTIVATE, name, target) for name in graph}
    # Plain dicts of neighbours (A -> B when A needs B): a view's lookups cost more.
    needs_of, needed_by = dict(graph.adjacency()), dict(graph.reverse(copy=False).adjacency())
    steps: list[Step] = []
    fence = activation[::-1]  # the exact reverse: see graphs.fencing_levels
    for level, names in enumerate(fence):
        steps += [
            Step(
                fence_id[name],
                name,
                source,
                Phase.FENCE,
                StepAction.FENCE,
                level,
                tuple([fence_id[d] for d in sorted(needed_by[name])]),
            )
            for name in names
        ]
    level = len(fence)
    for names in activation:
        live = [n for n in names if n not in down]
        if not live:
            continue
        steps += [
            Step(
                activate_id[name],
                name,
                target,
                Phase.ACTIVATE,
                StepAction.ACTIVATE_DEGRADED if name in degraded else StepAction.ACTIVATE,
                level,
                (
                    fence_id[name],
                    *[activate_id[d] for d in sorted(needs_of[name]) if d not in down],
                ),
            )
            for name in live
        ]
        level += 1
    return FailoverPlan(
        app=topology.app,
        source=source,
        target=target,
        steps=tuple(steps),
        degraded=degraded,
        unavailable=down,
    )
