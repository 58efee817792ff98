"""``failover status``: every component's state and health in every region."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from controller import clock
from controller.contract import DEFAULT_MANIFEST, STATUS_DEADLINE_SECONDS
from controller.interfaces.cli.app import (
    JsonOption,
    ManifestOption,
    SpecOption,
    app,
    console,
    load_deployment,
    print_json,
)
from controller.interfaces.cli.ending import leave_at_once

if TYPE_CHECKING:
    from controller.health import StatusReport
    from controller.topology import Topology

TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.5,
        help="Seconds to wait for a region's answers; "
        "what has not answered by then is shown unreachable.",
    ),
]

STYLE = {"healthy": "green", "degraded": "yellow", "unhealthy": "red", "unreachable": "magenta"}


@app.command()
def status(
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
    timeout: TimeoutOption = STATUS_DEADLINE_SECONDS,
    as_json: JsonOption = False,
) -> None:
    """Show every component's state and health in every region (regions as columns)."""
    leave_at_once()
    from controller.interfaces.views import read_status

    topology, deployed, clients = load_deployment(manifest, spec)
    view = read_status(topology, deployed, clients, deadline=timeout)
    if as_json:
        print_json(view.to_dict())
    else:
        render(view.report, topology)
        running = view.run_in_progress
        if running:
            console.print(
                f"[cyan]run {running} is in progress[/] (failover runs; "
                f"failover resume {running} if its controller died)",
                highlight=False,
            )
        _render_control(view.control, view.report)


def _render_control(control: dict[str, Any], report: StatusReport) -> None:
    if "error" in control:
        console.print(f"[bold red]control table[/]: {escape(control['error'])}", highlight=False)
        return
    console.print(
        f"control table: {control['active']} active (epoch {control['epoch']}"
        + (f", run {control['run_id']})" if control["run_id"] else ")"),
        highlight=False,
    )
    lease = control.get("lease")
    if lease and lease["expires_at"] > clock.now():
        console.print(
            f"lease: held by {lease['owner']} (token {lease['token']}) for "
            f"{lease['expires_at'] - clock.now():.0f} s more",
            highlight=False,
        )
    if report.active_region and report.active_region != control["active"]:
        console.print(
            f"[bold yellow]warning[/]: the regions say {report.active_region} is "
            f"active, the control table {control['active']}: failover reconcile",
            highlight=False,
        )


def render(report: StatusReport, topology: Topology) -> None:
    """Print the report as one table: a row per component, a column per region."""
    from rich.table import Table

    from controller.health import Health

    table = Table(title=f"{report.app}: active region {report.active_region or '?'}")
    table.add_column("component")
    table.add_column("kind")
    for name in report.regions:
        table.add_column(name)
    table.add_row(
        "[bold]region[/]",
        "",
        *(
            f"[{STYLE[r.health]}]{r.health}[/]" + (f" ({r.mode})" if r.mode else "")
            for r in report.regions.values()
        ),
        end_section=True,
    )
    for name, spec in topology.components.items():
        cells = []
        for region in report.regions.values():
            comp = region.components.get(name)
            cells.append(f"[{STYLE[comp.health]}]{comp.state}[/]" if comp else "-")
        table.add_row(name, str(spec.kind), *cells)
    console.print(table)
    for name, region in report.regions.items():
        problems = [
            f"{c.name}: {c.detail}"
            for c in region.components.values()
            if c.detail and c.health != Health.HEALTHY
        ]
        if region.error:
            problems.insert(0, region.error)
        if region.signals.alarms_firing:
            problems.append("alarms: " + ", ".join(region.signals.alarms_firing))
        for problem in problems[:5]:
            console.print(f"[{STYLE[region.health]}]{name}[/]: {escape(problem)}", highlight=False)
    for warning in report.warnings:
        console.print(f"[bold yellow]warning[/]: {escape(warning)}", highlight=False)
    console.print(f"read in {report.elapsed:.2f}s", style="dim")
