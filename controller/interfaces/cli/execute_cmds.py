"""``failover execute``, ``resume``, ``failback`` and ``runs``: the verbs that act."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from controller.contract import DEFAULT_MANIFEST
from controller.controltable.rpo import describe as describe_lags
from controller.controltable.rpo import worst as worst_lag
from controller.errors import UsageError
from controller.interfaces.cli.app import (
    JsonOption,
    ManifestOption,
    SpecOption,
    app,
    console,
    err_console,
    load_deployment,
    print_json,
)
from controller.interfaces.cli.ending import leave_at_once
from controller.interfaces.cli.plan_view import render_plan

if TYPE_CHECKING:
    from controller.controltable.desired import Desired
    from controller.controltable.journal import RunKind
    from controller.engine.executor import RunResult, StepEvent
    from controller.engine.prechecks import Precheck

YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
AcceptLagOption = Annotated[
    bool,
    typer.Option(
        "--accept-unknown-lag",
        envvar="FAILOVER_ACCEPT_UNKNOWN_LAG",
        help="Fail over even when a table's replication lag cannot be read (the source region "
        "does not answer, or no replication was measured); a lag known to be over the "
        "table's bound is refused anyway.",
    ),
]
STATE_STYLE = {
    "done": "green",
    "failed": "red",
    "unverified": "yellow",
    "skipped": "dim",
    "running": "cyan",
    "pending": "dim",
}
STATUS_STYLE = {
    "completed": "green",
    "completed_degraded": "yellow",
    "rolled_back": "red",
    "failed": "red",
    "running": "cyan",
}


@app.command()
def execute(
    to: Annotated[str, typer.Option("--to", help="Region to fail over to.")],
    from_: Annotated[
        str | None,
        typer.Option("--from", help="Region to fail over from (default: the active region)."),
    ] = None,
    unavailable: Annotated[
        list[str] | None,
        typer.Option(
            "--unavailable", "-u", help="A component known not to activate in the target."
        ),
    ] = None,
    yes: YesOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan and the live prechecks; touch nothing.")
    ] = False,
    sequential: Annotated[bool, typer.Option("--sequential", help="One step at a time.")] = False,
    accept_unknown_lag: AcceptLagOption = False,
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> int:
    """Fail over: fence the source, activate the target dependencies first, traffic last."""
    from controller.controltable.journal import RunKind

    topology, deployed, clients = load_deployment(manifest, spec)
    # Read before the lease only to show the plan and to notice a decision gone stale; the
    # executor reads it again under the lease, and that read decides.
    desired = _desired(topology, deployed, clients, required=False)
    if from_ is None and desired is not None and desired.active == to:
        from controller.controltable.journal import Journal
        from controller.engine.policy import refuse_already_active

        journal = Journal(clients, deployed)
        running_id = journal.current_run_id()
        refuse_already_active(desired, to, journal.run(running_id) if running_id else None)
    run = _Run(
        kind=RunKind.FAILOVER,
        target=to,
        source=from_ or (desired.active if desired else topology.regions.primary),
        source_given=from_ is not None,
        epoch=desired.epoch if desired else None,
        unavailable=tuple(unavailable or ()),
        workers=1 if sequential else 8,
    )
    asked = _Asked(yes, dry_run, as_json, accept_unknown_lag)
    return _run_plan(run, asked, topology, deployed, clients)


@app.command()
def failback(
    yes: YesOption = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and precheck only.")] = False,
    accept_unknown_lag: AcceptLagOption = False,
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> int:
    """Go back to the original primary, once it is healthy again, with the same machinery."""
    from controller.controltable.journal import RunKind

    topology, deployed, clients = load_deployment(manifest, spec)
    desired = _desired(topology, deployed, clients)
    assert desired is not None  # required: failback needs to know where it comes from
    primary = topology.regions.primary
    if desired.active == primary:
        raise UsageError(f"{primary} is already the active region: nothing to fail back")
    run = _Run(RunKind.FAILBACK, primary, desired.active, False, desired.epoch)
    asked = _Asked(yes, dry_run, as_json, accept_unknown_lag)
    return _run_plan(run, asked, topology, deployed, clients)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run to continue.")],
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> int:
    """Continue a run whose controller died: take the lease anew, redo what is not done."""
    from controller.controltable.journal import Journal
    from controller.engine.executor import Executor
    from controller.topology.manifest import check_steps

    topology, deployed, clients = load_deployment(manifest, spec)
    journal = Journal(clients, deployed)
    planned = journal.run(run_id).plan.steps
    check_steps(deployed, ((s.component, s.region) for s in planned))
    with _progress(len(planned), as_json) as show:
        executor = Executor(topology, deployed, clients, journal=journal, progress=show)
        result = executor.resume(run_id)
    return _render_result(result, as_json)


@app.command()
def runs(
    manifest: ManifestOption = DEFAULT_MANIFEST,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the journalled runs, newest first."""
    leave_at_once()  # reads and prints: its AWS clients need no finalization
    from rich.table import Table

    from controller.interfaces.views import read_runs, runs_to_dict

    _, deployed, clients = load_deployment(manifest, spec)
    found = read_runs(deployed, clients)
    if as_json:
        print_json(runs_to_dict(found))
        return
    table = Table(title="runs")
    # The id is what an operator copies (failover resume RUN): never cut, whatever the width.
    table.add_column(
        "run", no_wrap=True, overflow="ignore", min_width=max((len(r.id) for r in found), default=3)
    )
    # lag: the worst table's replication lag read at the switch (RPO); --json has each, aged
    for column in ("kind", "from", "to", "status", "started", "owner", "lag"):
        table.add_column(column, overflow="fold")
    for run in found:
        style = STATUS_STYLE.get(run.status.value, "")
        table.add_row(
            run.id,
            run.kind,
            run.plan.source,
            run.plan.target,
            f"[{style}]{run.status.value}[/]",
            _when(run.created),
            run.owner,
            worst_lag(run.rpo),
        )
    console.print(table if found else "no runs yet")


# -- shared ------------------------------------------------------------------------------------


def _desired(
    topology: Any, deployed: Any, clients: Any, *, required: bool = True
) -> Desired | None:
    """The active region as the control table's desired state names it (the one truth); None
    when the control table does not answer and ``required`` is false."""
    from controller.controltable.journal import Journal
    from controller.errors import AwsError, FailoverError

    try:
        return Journal(clients, deployed).desired(topology.regions.primary)
    except AwsError:
        raise
    except FailoverError:
        if required:
            raise
        return None


@dataclass(frozen=True)
class _Run:
    """The run a verb asks for: its kind, where from and to, and what the request knew."""

    kind: RunKind
    target: str
    source: str
    #: The source was asked for (``--from``): it must be the active region.
    source_given: bool
    #: The desired state's epoch the request was decided on (None: not known).
    epoch: int | None
    unavailable: tuple[str, ...] = ()
    workers: int = 8


@dataclass(frozen=True)
class _Asked:
    """How the operator asked for it."""

    yes: bool
    dry_run: bool
    as_json: bool
    accept_unknown_lag: bool


def _run_plan(run: _Run, asked: _Asked, topology: Any, deployed: Any, clients: Any) -> int:
    """Plan ``run``, check it, confirm it and carry it out (or only check it: ``--dry-run``)."""
    if asked.dry_run:  # reads and prints, as status does: about a quarter of its CPU saved
        leave_at_once()
    from controller.engine.executor import Executor
    from controller.plan import graph as graphs
    from controller.plan.build import build_plan
    from controller.topology.manifest import check_steps

    plan = build_plan(
        topology,
        graphs.build(topology),
        target=run.target,
        source=run.source,
        unavailable=run.unavailable,
    )
    # The same refusal for the dry run and the real run: a step the manifest cannot place.
    check_steps(deployed, ((s.component, s.region) for s in plan.steps))
    executor = Executor(
        topology,
        deployed,
        clients,
        max_workers=run.workers,
        accept_unknown_lag=asked.accept_unknown_lag,
    )
    dry_run, as_json, yes = asked.dry_run, asked.as_json, asked.yes
    source_given, kind, epoch = run.source_given, run.kind, run.epoch
    if dry_run:
        plan = executor.checked(
            plan, executor.desired(), source_given=source_given, expect_epoch=None
        )
        checks = executor.prechecks(plan, kind=kind)
        if as_json:
            print_json({**plan.to_dict(), "prechecks": [c.to_dict() for c in checks]})
        else:
            render_plan(plan)
            render_checks(checks)
        return 0 if all(c.ok for c in checks) else 1
    if not as_json:
        render_plan(plan)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("refusing to act without confirmation: pass --yes")
        typer.confirm(f"Fail over {plan.app} from {plan.source} to {plan.target}?", abort=True)
    with _progress(len(plan.steps), as_json) as show:
        executor.progress = show
        result = executor.execute(plan, kind=kind, source_given=source_given, expect_epoch=epoch)
    return _render_result(result, as_json)


class _progress:
    """A Rich progress bar on stderr, one line per finished step (quiet with ``--json``)."""

    def __init__(self, total: int, quiet: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.quiet = quiet
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=quiet,
        )
        self.task = self.bar.add_task("steps", total=total)

    def __enter__(self) -> _progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def __call__(self, event: StepEvent) -> None:
        if self.quiet:
            return
        from controller.controltable.journal import StepState

        if event.state == StepState.RUNNING:
            self.bar.update(self.task, description=f"{event.step.id}")
            return
        self.bar.advance(self.task)
        style = STATE_STYLE.get(event.state.value, "")
        note = f"  {escape(event.error)}" if event.error else ""
        self.bar.console.print(
            f"  [{style}]{event.state.value:<10}[/] {event.step.id}{note}", highlight=False
        )


def render_checks(checks: list[Precheck]) -> None:
    for check in checks:
        mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
        console.print(f"  {mark} {check.name}: {escape(check.detail)}", highlight=False)


def _render_result(result: RunResult, as_json: bool) -> int:
    run = result.run
    if as_json:
        print_json(result.to_dict())
        return result.exit_code
    counts: dict[str, int] = {}
    for record in run.steps.values():
        counts[record.state.value] = counts.get(record.state.value, 0) + 1
    style = STATUS_STYLE.get(run.status.value, "")
    console.print(
        f"run {run.id}: [{style}]{run.status.value}[/] ({run.plan.source} -> "
        f"{run.plan.target}; " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ")",
        highlight=False,
    )
    if run.degraded:
        console.print(
            "[yellow]degraded:[/] "
            + ", ".join(f"{k} -> {v}" for k, v in sorted(run.degraded.items()))
        )
    if run.rpo:
        console.print(f"lag at the switch (RPO): {escape(describe_lags(run.rpo))}", highlight=False)
    if run.error:
        console.print(f"[red]{escape(run.error)}[/]")
    return result.exit_code


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
