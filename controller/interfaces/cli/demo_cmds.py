"""``failover demo``: the whole story on the emulator, with a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from controller.contract import DEFAULT_TIME_SCALE, DEMO_AFTER_SECONDS, DEMO_RATE, FailMode
from controller.interfaces.cli.app import (
    JsonOption,
    SpecOption,
    app,
    console,
    err_console,
    extra,
    print_json,
)
from controller.interfaces.cli.app import spec_path as resolve_spec
from controller.interfaces.cli.sandbox_cmds import (
    OutageModeOption,
    OutageRegionOption,
    TimeScaleOption,
)


@app.command()
def demo(
    region: OutageRegionOption = None,
    mode: OutageModeOption = FailMode.HANG,
    lag: Annotated[
        float,
        typer.Option(
            "--replication-lag", help="Seconds of asynchronous replication; 0 is synchronous."
        ),
    ] = 0.0,
    warmup: Annotated[
        float, typer.Option("--warmup", help="AWS seconds of load before the outage.")
    ] = 120.0,
    after: Annotated[
        float, typer.Option("--after", help="AWS seconds of load after the shift.")
    ] = DEMO_AFTER_SECONDS,
    rate: Annotated[
        float, typer.Option("--rate", help="The clients' requests per AWS second.")
    ] = DEMO_RATE,
    time_scale: TimeScaleOption = DEFAULT_TIME_SCALE,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where the sandbox and the report live.")
    ] = Path(".failover"),
    port: Annotated[
        int | None,
        typer.Option("--port", help="The live status page's port (default: a free one)."),
    ] = None,
    no_page: Annotated[bool, typer.Option("--no-page", help="Serve no status page.")] = False,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> int:
    """Deploy the example to the emulator, send traffic, fail a region, fail over, report."""
    from controller.interfaces.cli.logs import to_file

    demos = extra("demo", "sandbox")
    phases = _Phases(quiet=as_json)
    options = demos.DemoOptions(
        spec=resolve_spec(spec).resolve(),
        state_dir=state_dir,
        region=region,
        mode=mode.value,
        warmup=warmup,
        after=after,
        rate=rate,
        replication_lag=lag,
        time_scale=time_scale,
        page_port=None if no_page else port or 0,
        on_page=phases.page,
    )
    demos.check_options(options)  # before the log file, the sandbox or the page: exit 2
    with to_file(state_dir / demos.LOG_NAME), phases:
        result = demos.run_demo(options, phases.show)
    return finish(result, as_json)


class _Phases:
    """One live line per phase of the demo on stderr; a phase that ends leaves its last line."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=quiet,
        )
        self.quiet = quiet
        self.task = self.bar.add_task("starting", total=1.0, counts="")
        self.phase = ""
        self.counts = ""
        self.started = 0.0

    def __enter__(self) -> _Phases:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
        self.bar.__exit__(None, None, None)

    def page(self, url: str) -> None:
        """Say where the live status page is (on stderr: stdout stays the report)."""
        self.bar.console.print(
            f"[bold]status page:[/] {url}  (open it to watch live)", highlight=False
        )

    def show(self, phase: str, done: float, total: float, counts: dict[str, int]) -> None:
        import time

        if phase != self.phase:
            self._close()
            self.phase, self.started = phase, time.monotonic()
        self.counts = " ".join(f"{k}={v}" for k, v in counts.items())
        self.bar.update(
            self.task,
            description=phase,
            completed=min(done, total),
            total=total,
            counts=self.counts,
        )

    def _close(self) -> None:
        """Leave the phase that ends as one line: its name, how long it took, the counts."""
        import time

        if self.phase and not self.quiet:
            took = time.monotonic() - self.started
            self.bar.console.print(
                f"[green]done[/] {self.phase:<40} {took:6.1f}s  {self.counts}", highlight=False
            )
        self.phase = ""


def finish(result: Any, as_json: bool) -> int:
    """Print the report (JSON or a table); exit 0 when traffic was shifted, else 1."""
    if as_json:
        print_json(result.report)
    else:
        render(result)
    return 0 if result.report["time_to_shift_seconds"] is not None else 1


def render(result: Any) -> None:
    """The report as a table, and where its files are."""
    from rich.table import Table

    report = result.report
    console.print(f"[bold]{report['title']}[/]")
    table = Table(title="requests by phase (final outcome, after client retries)")
    for column in ("phase", "ok", "degraded", "failed", "total"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    for phase, counts in report["requests"].items():
        table.add_row(phase, *(str(counts[k]) for k in ("ok", "degraded", "failed", "total")))
    console.print(table)
    console.print(
        f"time to detect: {report['time_to_detect_seconds']} s   "
        f"time to shift traffic: {report['time_to_shift_seconds']} s   "
        f"failed during the outage: {report['failed_share_during_outage']:.2%}"
    )
    console.print(
        f"writes acknowledged: {report['writes_acknowledged']}   found in the new "
        f"primary ({report['new_primary']}): {report['writes_found_in_new_primary']}"
        f"   lost: {report['lost_writes']}"
    )
    if run := report.get("switch_run"):
        console.print(
            f"after the outage: run started {run['started']} s, ended {run['ended']} s "
            f"({len(run['levels'])} levels); full service "
            f"{report.get('time_to_full_service_seconds')} s",
            highlight=False,
        )
    if rpo := report.get("rpo"):
        from rich.markup import escape

        from controller.controltable.rpo import describe, from_plain

        lags = describe(from_plain(rpo["tables_at_switch"])) or "no table read"
        console.print(
            f"RPO: lag at the switch: {escape(lags)}   acknowledged writes missing from the new "
            f"primary: {rpo['writes_missing_from_new_primary']}"
            f" (window {rpo['window_seconds']} s)",
            highlight=False,
        )
    console.print(
        f"report: {result.json_path}  timeline: {result.png_path}"
        + (f"  log: {report['log']}" if report.get("log") else "")
    )
