"""``failover validate``, ``failover graph`` and ``failover plan``: the pure-data verbs.

Imported only to run one of them (``controller.interfaces.cli.VERBS``), so it imports what they
need at the top: while a ``failover`` process starts, without the garbage collector
(:mod:`controller.collector`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from controller.interfaces.cli.app import (
    JsonOption,
    SpecOption,
    app,
    console,
    load_spec,
    print_json,
)
from controller.interfaces.cli.plan_view import render_plan
from controller.plan import graph as graphs
from controller.plan import render
from controller.plan.build import build_plan


class Format(StrEnum):
    """Output formats of the graph and the plan."""

    text = "text"
    json = "json"
    mermaid = "mermaid"
    dot = "dot"


@app.command()
def validate(spec: SpecOption = None) -> None:
    """Check a topology file: schema, regions, references, cycles."""
    topology, graph = load_spec(spec)
    levels = graphs.activation_levels(graph)
    console.print(
        f"[green]ok[/]: {topology.app}: {len(topology.components)} components, "
        f"{len(topology.regions.all)} regions, {len(levels)} levels"
    )


@app.command("graph")
def graph_cmd(
    spec: SpecOption = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
) -> None:
    """Show the dependency graph (an edge A -> B means A needs B)."""
    topology, graph = load_spec(spec)
    if fmt == Format.json:
        print_json({"app": topology.app, **render.graph_to_data(graph)})
    elif fmt == Format.mermaid:
        console.print(render.graph_to_mermaid(graph), markup=False, highlight=False)
    elif fmt == Format.dot:
        console.print(render.graph_to_dot(graph), markup=False, highlight=False)
    else:
        table = Table(title=f"{topology.app}: activation levels (dependencies first)")
        for column in ("level", "component", "kind", "tier", "needs", "degraded"):
            table.add_column(column)
        for level, names in enumerate(graphs.activation_levels(graph)):
            for name in names:
                data = graph.nodes[name]
                table.add_row(
                    str(level),
                    name,
                    str(data["kind"]),
                    str(data["tier"]),
                    ", ".join(sorted(graph.successors(name))) or "-",
                    str(data["degraded"] or "-"),
                )
        console.print(table)


@app.command()
def plan(
    to: Annotated[str, typer.Option("--to", help="Region to fail over to.")],
    from_: Annotated[
        str | None, typer.Option("--from", help="Region to fail over from (default: the primary).")
    ] = None,
    unavailable: Annotated[
        list[str] | None,
        typer.Option(
            "--unavailable",
            "-u",
            help="A component that cannot be activated in the target (repeatable).",
        ),
    ] = None,
    spec: SpecOption = None,
    as_json: JsonOption = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
) -> None:
    """Show the ordered failover plan: fence the source, activate the target, traffic last."""
    topology, graph = load_spec(spec)
    result = build_plan(topology, graph, target=to, source=from_, unavailable=unavailable or ())
    if as_json or fmt == Format.json:
        print_json(result.to_dict())
    elif fmt == Format.mermaid:
        console.print(render.plan_to_mermaid(result), markup=False, highlight=False)
    elif fmt == Format.dot:
        console.print(render.plan_to_dot(result), markup=False, highlight=False)
    else:
        render_plan(result)
