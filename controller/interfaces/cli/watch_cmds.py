"""``failover watch`` (automated, health-triggered failover) and ``failover automation``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from controller.contract import DEFAULT_MANIFEST
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
    from controller.watchers.decisions import Decision


@app.command()
def reconcile(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be done; touch nothing.")
    ] = False,
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> int:
    """Converge every region to the control table's active region: fence the others, re-activate
    what drifted, take over a run whose controller died."""
    from rich.markup import escape

    from controller.engine.fixes import FixAction
    from controller.engine.reconcile import reconcile as converge

    if dry_run:  # reads and prints, as status does: its AWS clients need no finalization
        leave_at_once()
    topology, deployed, clients = load_deployment(manifest, spec)
    result = converge(topology, deployed, clients, dry_run=dry_run)
    if not result.outcomes:  # nothing was done (converged): it only read, too
        leave_at_once()
    if as_json:
        print_json(result.to_dict())
        return 1 if result.failed else 0
    d = result.desired
    console.print(
        f"desired: {d.active} active (epoch {d.epoch})"
        + (f", set by run {d.run_id}" if d.run_id else ""),
        highlight=False,
    )
    if not result.fixes:
        console.print("[green]converged[/]: nothing to do")
    for i, fix in enumerate(result.fixes):
        done = result.outcomes.get(i)
        outcome = (
            done.text if done else "would do" if dry_run and fix.action != FixAction.REPORT else ""
        )
        what = (
            f"{fix.action} {fix.component or '(region mode)'} in {fix.region}"
            if fix.action in (FixAction.FENCE, FixAction.ACTIVATE)
            else fix.action
        )
        console.print(
            f"  {what}: {escape(fix.reason)}" + (f"  -> {escape(outcome)}" if outcome else ""),
            highlight=False,
        )
    return 1 if result.failed else 0


@app.command("watchers")
def watchers(
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> int:
    """The last decision of each region's watcher, and where its logs are (exit 1 when a
    region's watcher has been silent for three minutes)."""
    leave_at_once()  # reads and prints: its AWS clients need no finalization
    from rich.markup import escape
    from rich.table import Table

    from controller.interfaces.views import SILENT_AFTER, watcher_rows

    topology, deployed, clients = load_deployment(manifest, spec)
    rows = watcher_rows(topology, deployed, clients)
    silent = [r["region"] for r in rows if r["silent"]]
    if as_json:
        print_json({"watchers": rows, "silent": silent})
        return 1 if silent else 0
    table = Table(title="watchers (last decision of each region's watcher)")
    columns = ("region", "last evaluation", "decision", "bad in a row", "owes a full read of")
    for column in (*columns, "owner", "logs"):
        table.add_column(column)
    for row in rows:
        last = row.get("last", {})
        decision = last.get("decision", {})
        when = (
            "never"
            if row["seconds_since_evaluation"] is None
            else f"{row['seconds_since_evaluation']:.0f} s ago"
        )
        table.add_row(
            row["region"],
            ("[red]" if row["silent"] else "") + when,
            escape(f"{decision.get('action', '-')}: {decision.get('reason', '')}"),
            str(last.get("consecutive_bad", "-")),
            ", ".join(last.get("unsettled") or ()) or "-",  # until a full read covers it
            last.get("owner", "-"),
            row["log_file"] or row["log_group"],
        )
    console.print(table)
    if len(silent) == len(rows):
        console.print(
            f"[red]no watcher evaluated for {SILENT_AFTER:.0f} s[/]: nothing fails "
            "over on its own (the dead-man alarm fires)"
        )
    elif silent:
        console.print(
            f"[yellow]silent[/]: {', '.join(silent)} evaluated nothing for "
            f"{SILENT_AFTER:.0f} s (its region is out, or its function fails: "
            "read its logs)"
        )
    return 1 if silent else 0


automation = typer.Typer(
    help="Pause or resume automatic failover (for every watcher).", no_args_is_help=True
)
app.add_typer(automation, name="automation")


@app.command()
def watch(
    once: Annotated[bool, typer.Option("--once", help="Evaluate once, decide, exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between evaluations.")
    ] = 10.0,
    iterations: Annotated[
        int | None, typer.Option("--iterations", help="Stop after N evaluations.")
    ] = None,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe/--no-probe",
            help="HTTP-probe each region's health route.",
        ),
    ] = True,
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
) -> None:
    """Watch every region; fail over when the active one fails (one JSON line per decision)."""
    from controller import health
    from controller.watchers.watcher import Watcher

    topology, deployed, clients = load_deployment(manifest, spec)
    watcher = Watcher(topology, deployed, clients, http_probe=health.http_probe if probe else None)
    for decision in watcher.run(interval, iterations=1 if once else iterations):
        _emit(decision)


def _emit(decision: Decision) -> None:
    sys.stdout.write(json.dumps(decision.to_dict()) + "\n")
    sys.stdout.flush()


@automation.command("pause")
def pause(
    reason: Annotated[str, typer.Option("--reason", help="Why (shown to others).")] = "",
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
) -> None:
    """Stop automatic failover; watchers keep evaluating and logging."""
    from controller.controltable.journal import Journal
    from controller.controltable.lease import default_owner

    _, deployed, clients = load_deployment(manifest, spec)
    Journal(clients, deployed).set_automation(True, default_owner(), reason)
    console.print("[yellow]automation paused[/]: watchers will not act")


@automation.command("resume")
def resume_automation(manifest: ManifestOption = DEFAULT_MANIFEST, spec: SpecOption = None) -> None:
    """Let watchers act again."""
    from controller.controltable.journal import Journal
    from controller.controltable.lease import default_owner

    _, deployed, clients = load_deployment(manifest, spec)
    Journal(clients, deployed).set_automation(False, default_owner())
    console.print("[green]automation resumed[/]")


@automation.command("show")
def show(
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Say whether automation is paused, by whom and why."""
    leave_at_once()  # reads and prints: its AWS clients need no finalization
    from controller.controltable.journal import Journal

    _, deployed, clients = load_deployment(manifest, spec)
    state = Journal(clients, deployed).automation()
    if as_json:
        print_json(state)
    elif state["paused"]:
        console.print(f"[yellow]paused[/] by {state['by']}: {state['reason'] or '-'}")
    else:
        console.print("[green]active[/]: watchers act on failures")
