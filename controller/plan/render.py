"""How a graph and a plan are drawn: Mermaid, Graphviz DOT, and plain data for JSON.

Called by ``failover graph``, ``failover plan`` and the status page (``/api/graph``). Pure
functions; the graph's algorithms are :mod:`controller.plan.graph`'s, the plan's order
:mod:`controller.plan.build`'s.
"""

from __future__ import annotations

import networkx as nx

from controller.plan import graph as graphs
from controller.plan.steps import FailoverPlan


def graph_to_mermaid(graph: nx.DiGraph) -> str:
    """The graph as a Mermaid flowchart (dependencies point down)."""
    lines = ["flowchart TD"]
    for node, data in sorted(graph.nodes(data=True)):
        lines.append(f'    {_mid(node)}["{node}<br/><i>{data["kind"]} · {data["tier"]}</i>"]')
    lines += [f"    {_mid(a)} --> {_mid(b)}" for a, b in sorted(graph.edges)]
    return "\n".join(lines)


def graph_to_dot(graph: nx.DiGraph) -> str:
    """The graph in Graphviz DOT (one node per component, labelled with kind and tier)."""
    lines = ["digraph topology {", "  rankdir=TB;", "  node [shape=box, style=rounded];"]
    for node, data in sorted(graph.nodes(data=True)):
        lines.append(f'  "{node}" [label="{node}\\n{data["kind"]} / {data["tier"]}"];')
    lines += [f'  "{a}" -> "{b}";' for a, b in sorted(graph.edges)]
    lines.append("}")
    return "\n".join(lines)


def graph_to_data(graph: nx.DiGraph) -> dict[str, object]:
    """The graph as plain data: nodes with attributes, edges, and both level orders."""
    return {
        "nodes": [
            {
                "name": n,
                "kind": str(d["kind"]),
                "tier": str(d["tier"]),
                "degraded": str(d["degraded"]) if d["degraded"] else None,
                "needs": sorted(graph.successors(n)),
            }
            for n, d in sorted(graph.nodes(data=True))
        ],
        "edges": [list(e) for e in sorted(graph.edges)],
        "activation_levels": graphs.activation_levels(graph),
        "fencing_levels": graphs.fencing_levels(graph),
    }


def _mid(name: str) -> str:
    return name.replace("-", "_")


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
