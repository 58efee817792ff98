"""``failover validate``, ``failover graph`` and ``failover plan``: the pure-data verbs."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.app import JsonOption, SpecOption, app, console, load_spec, print_json

if TYPE_CHECKING:
    from controller.steps import FailoverPlan


class Format(StrEnum):
    """Output formats of the graph and the plan."""

    text = "text"
    json = "json"
    mermaid = "mermaid"
    dot = "dot"


@app.command()
def validate(spec: SpecOption = None) -> None:
    """Check a topology file: schema, regions, references, cycles."""
    from controller import graph as graphs

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
    from rich.table import Table

    from controller import graph as graphs

    topology, graph = load_spec(spec)
    if fmt == Format.json:
        print_json({"app": topology.app, **graphs.to_data(graph)})
    elif fmt == Format.mermaid:
        console.print(graphs.to_mermaid(graph), markup=False, highlight=False)
    elif fmt == Format.dot:
        console.print(graphs.to_dot(graph), markup=False, highlight=False)
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
    from controller.plan import build_plan, plan_to_dot, plan_to_mermaid

    topology, graph = load_spec(spec)
    result = build_plan(topology, graph, target=to, source=from_, unavailable=unavailable or ())
    if as_json or fmt == Format.json:
        print_json(result.to_dict())
    elif fmt == Format.mermaid:
        console.print(plan_to_mermaid(result), markup=False, highlight=False)
    elif fmt == Format.dot:
        console.print(plan_to_dot(result), markup=False, highlight=False)
    else:
        render_plan(result)


def render_plan(result: FailoverPlan) -> None:
    """Print a plan as a table grouped by level, then its degraded answers."""
    from rich.table import Table

    table = Table(
        title=f"{result.app}: fail over {result.source} -> {result.target}", show_lines=False
    )
    for column in ("level", "phase", "action", "component", "region"):
        table.add_column(column, no_wrap=True)
    table.add_column("waits for", overflow="fold")
    for steps in result.levels:
        for i, step in enumerate(steps):
            needs = (
                ", ".join(
                    result.step(n).component
                    for n in step.needs
                    if result.step(n).phase == step.phase
                )
                or "-"
            )
            table.add_row(
                str(step.level) if i == 0 else "",
                step.phase,
                step.action,
                step.component,
                step.region,
                needs,
                end_section=i == len(steps) - 1,
            )
    console.print(table)
    if result.degraded:
        console.print(
            "[yellow]degraded in the target:[/] "
            + ", ".join(f"{name} -> {mode.value}" for name, mode in sorted(result.degraded.items()))
        )
    console.print(
        f"{len(result.steps)} steps in {len(result.levels)} levels; each activation "
        "also waits for its own fence in the source"
    )
