"""``failover drill``: a game day on the sandbox, or a practice run against a real stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller import graph as graphs
from controller.cli.app import JsonOption, SpecOption, app, console, print_json
from controller.cli.app import spec_path as resolve_spec
from controller.cli.demo_cmds import render
from controller.cli.execute_cmds import render_checks
from controller.cli.plan_cmds import render_plan
from controller.errors import UsageError
from controller.executor import Executor
from controller.manifest import load_manifest
from controller.plan import build_plan
from controller.sandbox.demo import DemoOptions, run_demo
from controller.spec import load


@app.command()
def drill(
    region: Annotated[str | None, typer.Option("--region", help="Region to fail "
                                               "[default: the primary].")] = None,
    mode: Annotated[str, typer.Option("--mode", help="down (killed) or hang (stopped).")]
    = "hang",
    manifest: Annotated[Path | None, typer.Option(
        "--manifest", "-m", help="A real stack's manifest: plan and precheck only.")] = None,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Where the sandbox and the "
                                            "report live.")] = Path(".failover-drill"),
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> int:
    """Game day: on the sandbox, the demo's story and report; on AWS, only plan and prechecks."""
    if mode not in ("down", "hang"):
        raise UsageError("--mode must be down or hang")
    if manifest is None:
        options = DemoOptions(spec=resolve_spec(spec).resolve(), state_dir=state_dir,
                              region=region, mode=mode, warmup=8.0, after=8.0)
        result = run_demo(options)
        if as_json:
            print_json(result.report)
        else:
            render(result)
        return 0 if result.report["time_to_shift_seconds"] is not None else 1
    return _practice(manifest, spec, region, as_json)


def _practice(manifest: Path, spec: Path | None, region: str | None, as_json: bool) -> int:
    """Against a real stack nothing is failed: plan the failover and run the live prechecks."""
    from controller.aws import Clients

    deployed = load_manifest(manifest)
    topology = load(resolve_spec(spec if spec else Path(deployed.spec) if deployed.spec
                                 else None))
    source = region or topology.regions.primary
    target = next((r for r in topology.regions.all if r != source), None)
    if target is None:
        raise UsageError("no other region to practise a failover to")
    plan = build_plan(topology, graphs.build(topology), source=source, target=target)
    checks = Executor(topology, deployed, Clients(endpoints=deployed.endpoints)).prechecks(plan)
    if as_json:
        print_json({**plan.to_dict(), "prechecks": [vars(c) for c in checks], "practice": True})
    else:
        render_plan(plan)
        render_checks(checks)
        console.print("practice run: nothing was failed and nothing was changed")
    return 0 if all(c.ok for c in checks) else 1
