"""The failover plan: which steps, in which order, and who answers degraded.

Called by the CLI (``failover plan``), the executor and the watcher. A plan is pure data built from
the graph and the request; it touches no AWS and can be rendered as a table, JSON, Mermaid or
Graphviz. Order: fence the source dependents first, then activate the target dependencies first,
traffic last; every step names the steps it needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import networkx as nx

from controller import graph as graphs
from controller.bulk import paused_gc
from controller.contract import DegradedMode
from controller.errors import UsageError
from controller.spec import Topology

Phase = Literal["fence", "activate"]


class Step(NamedTuple):
    """One action on one component in one region.

    ``action`` is ``fence`` (source), ``activate`` or ``activate_degraded`` (target; the mode is
    in the plan's degraded map). A named tuple, not a dataclass: a plan of 10,000 components
    makes 20,000 of them, and a tuple is built several times faster than a frozen dataclass.
    """

    id: str
    component: str
    region: str
    phase: Phase
    action: str
    level: int
    needs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The step as the JSON the CLI prints."""
        return {
            "id": self.id,
            "component": self.component,
            "region": self.region,
            "phase": self.phase,
            "action": self.action,
            "level": self.level,
            "needs": list(self.needs),
        }


@dataclass(frozen=True)
class FailoverPlan:
    """An ordered failover from ``source`` to ``target``."""

    app: str
    source: str
    target: str
    steps: tuple[Step, ...]
    degraded: dict[str, DegradedMode] = field(default_factory=dict)
    unavailable: tuple[str, ...] = ()

    @property
    def levels(self) -> list[list[Step]]:
        """The steps grouped by level, in order; a level's steps can run in parallel."""
        out: dict[int, list[Step]] = {}
        for step in self.steps:
            out.setdefault(step.level, []).append(step)
        return [out[k] for k in sorted(out)]

    def step(self, step_id: str) -> Step:
        """The step with id ``step_id``."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_dict(self) -> dict[str, Any]:
        """The plan as the JSON ``failover plan --json`` prints."""
        return {
            "app": self.app,
            "from": self.source,
            "to": self.target,
            "steps": [s.to_dict() for s in self.steps],
            "degraded": {k: v.value for k, v in sorted(self.degraded.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailoverPlan:
        """Rebuild a plan from :meth:`to_dict` (the journal stores plans this way)."""
        steps = tuple(
            Step(
                id=s["id"],
                component=s["component"],
                region=s["region"],
                phase=s["phase"],
                action=s["action"],
                level=int(s["level"]),
                needs=tuple(s["needs"]),
            )
            for s in data["steps"]
        )
        return cls(
            app=data["app"],
            source=data["from"],
            target=data["to"],
            steps=steps,
            degraded={k: DegradedMode(v) for k, v in data.get("degraded", {}).items()},
            unavailable=tuple(data.get("unavailable", ())),
        )


def step_id(phase: str, component: str, region: str) -> str:
    """The id of a step: ``phase:component@region``.

    >>> step_id("fence", "api", "us-east-1")
    'fence:api@us-east-1'
    """
    return f"{phase}:{component}@{region}"


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
    topology, graph : the topology and its graph (:func:`controller.graph.build`).
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
    >>> from controller.spec import loads
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
    fence_id = {name: step_id("fence", name, source) for name in graph}
    activate_id = {name: step_id("activate", name, target) for name in graph}
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
                "fence",
                "fence",
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
                "activate",
                "activate_degraded" if name in degraded else "activate",
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


def plan_to_mermaid(plan: FailoverPlan) -> str:
    """The plan as a Mermaid flowchart, one subgraph per level."""
    lines = ["flowchart LR"]
    for steps in plan.levels:
        lines.append(f"    subgraph L{steps[0].level}[level {steps[0].level}]")
        lines += [f'        {_nid(s.id)}["{s.action} {s.component}<br/>{s.region}"]' for s in steps]
        lines.append("    end")
    lines += [f"    {_nid(n)} --> {_nid(s.id)}" for s in plan.steps for n in s.needs]
    return "\n".join(lines)


def plan_to_dot(plan: FailoverPlan) -> str:
    """The plan in Graphviz DOT, one cluster per level."""
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for steps in plan.levels:
        lines.append(f'  subgraph cluster_{steps[0].level} {{ label="level {steps[0].level}";')
        lines += [f'    "{s.id}" [label="{s.action} {s.component}\\n{s.region}"];' for s in steps]
        lines.append("  }")
    lines += [f'  "{n}" -> "{s.id}";' for s in plan.steps for n in s.needs]
    lines.append("}")
    return "\n".join(lines)


def _nid(step: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in step)
