"""``failover drill``: a game day on the sandbox, or a practice run against a real stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.contract import DEFAULT_TIME_SCALE, DEMO_AFTER_SECONDS, FailMode
from controller.errors import UsageError
from controller.interfaces.cli.app import (
    JsonOption,
    SpecOption,
    app,
    console,
    extra,
    load_deployment,
    print_json,
)
from controller.interfaces.cli.app import spec_path as resolve_spec
from controller.interfaces.cli.demo_cmds import finish
from controller.interfaces.cli.execute_cmds import AcceptLagOption, render_checks
from controller.interfaces.cli.plan_view import render_plan
from controller.interfaces.cli.sandbox_cmds import (
    OutageModeOption,
    OutageRegionOption,
    TimeScaleOption,
)


@app.command()
def drill(
    region: OutageRegionOption = None,
    mode: OutageModeOption = FailMode.HANG,
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", "-m", help="A real stack's manifest: plan and precheck only."),
    ] = None,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where the sandbox and the report live.")
    ] = Path(".failover-drill"),
    accept_unknown_lag: AcceptLagOption = False,
    spec: SpecOption = None,
    as_json: JsonOption = False,
    time_scale: TimeScaleOption = DEFAULT_TIME_SCALE,
) -> int:
    """Game day: on the sandbox, the demo's story and report; on AWS, only plan and prechecks."""
    if manifest is None:
        demos = extra("demo", "sandbox")
        options = demos.DemoOptions(
            spec=resolve_spec(spec).resolve(),
            state_dir=state_dir,
            region=region,
            mode=mode.value,
            warmup=90.0,
            after=DEMO_AFTER_SECONDS,
            time_scale=time_scale,
        )
        return finish(demos.run_demo(options), as_json)
    return _practice(manifest, spec, region, as_json, accept_unknown_lag)


def _practice(
    manifest: Path,
    spec: Path | None,
    region: str | None,
    as_json: bool,
    accept_unknown_lag: bool = False,
) -> int:
    """Against a real stack nothing is failed: plan the failover and run the live prechecks."""
    from controller.engine.executor import Executor
    from controller.plan import graph as graphs
    from controller.plan.build import build_plan

    topology, deployed, clients = load_deployment(manifest, spec)
    source = region or topology.regions.primary
    target = next((r for r in topology.regions.all if r != source), None)
    if target is None:
        raise UsageError("no other region to practise a failover to")
    plan = build_plan(topology, graphs.build(topology), source=source, target=target)
    from controller.topology.manifest import check_steps

    check_steps(deployed, ((s.component, s.region) for s in plan.steps))
    checks = Executor(topology, deployed, clients, accept_unknown_lag=accept_unknown_lag).prechecks(
        plan
    )
    if as_json:
        print_json({**plan.to_dict(), "prechecks": [c.to_dict() for c in checks], "practice": True})
    else:
        render_plan(plan)
        render_checks(checks)
        console.print("practice run: nothing was failed and nothing was changed")
    return 0 if all(c.ok for c in checks) else 1
