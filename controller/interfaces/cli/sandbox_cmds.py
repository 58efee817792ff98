"""``failover sandbox ...``: start, inspect, fail, heal and stop the embedded emulator."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from controller.contract import DEFAULT_TIME_SCALE, FailMode
from controller.interfaces.cli.app import (
    JsonOption,
    SpecOption,
    app,
    console,
    extra,
    print_json,
    spec_path,
)

sandbox_app = typer.Typer(
    help="The embedded AWS emulator: one moto server per region.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")

RegionArg = Annotated[str, typer.Argument(help="The region, as named in the topology.")]
#: The region a demo or a drill fails, and how.
OutageRegionOption = Annotated[
    str | None, typer.Option("--region", help="Region to fail (default: the primary).")
]
OutageModeOption = Annotated[
    FailMode, typer.Option("--mode", help="down (killed), hang (stopped) or partition (cut off).")
]


def _time_scale(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value:g}: AWS seconds per wall second, a number above 0")
    return value


TimeScaleOption = Annotated[
    float,
    typer.Option(
        "--time-scale",
        envvar="FAILOVER_SANDBOX_TIME_SCALE",
        callback=_time_scale,
        help="The sandbox's clock: AWS seconds per wall second (every deployed period, "
        "interval, TTL and timeout runs unchanged, k times faster).",
    ),
]


def _sandbox() -> Any:
    """The ``sandbox`` package (the ``failover[sandbox]`` extra), loaded only when a verb runs."""
    return extra("sandbox", "sandbox")


def _state_dir() -> Path:
    """``$FAILOVER_STATE_DIR``, else ``.failover`` in the current directory."""
    return Path(os.environ.get("FAILOVER_STATE_DIR", ".failover"))


def _render(info: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"sandbox of {info['app']} ({info['state_dir']})")
    for column in ("server", "role", "endpoint", "pid", "condition"):
        table.add_column(column)
    for name, server in info["servers"].items():
        role = "primary" if name == info["primary"] else "global" if name == "global" else "standby"
        condition = server["condition"] if server["alive"] else "gone"
        table.add_row(name, role, server["endpoint"], str(server["pid"]), condition)
    console.print(table)
    console.print(f"manifest: {info['manifest']}")
    watching = info.get("watchers") or {}
    alive = [r for r, w in watching.items() if w["alive"]]
    console.print(
        f"watchers: {', '.join(alive)} (logs: failover watchers)"
        if alive
        else "watchers: none (automation off; 'failover watch' runs one by hand)"
    )


@sandbox_app.command("up")
def up(
    spec: SpecOption = None,
    as_json: JsonOption = False,
    watchers: Annotated[
        bool,
        typer.Option(
            "--watchers/--no-watchers",
            help="Start each region's watcher (the deployed automation), as pulumi up "
            "deploys them; --no-watchers: nothing fails over unless you run it.",
        ),
    ] = True,
    time_scale: TimeScaleOption = DEFAULT_TIME_SCALE,
) -> None:
    """Start a moto server per region plus 'global', create the topology's resources in them
    and write the manifest."""
    started = time.monotonic()
    box = _sandbox().Sandbox.up(
        spec_path(spec), _state_dir(), watchers=watchers, time_scale=time_scale
    )
    info = box.describe()
    info["seconds"] = round(time.monotonic() - started, 2)
    if as_json:
        print_json(info)
    else:
        _render(info)
        console.print(f"up in {info['seconds']} s")


@sandbox_app.command("down")
def down() -> None:
    """Stop every server of the sandbox and remove its state."""
    stopped = _sandbox().down(_state_dir())
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "no sandbox was running")


@sandbox_app.command("fail")
def fail(
    region: RegionArg,
    mode: Annotated[
        FailMode,
        typer.Option(
            "--mode",
            help="down: killed, calls are refused; "
            "hang: stopped, calls time out; partition: serves its own "
            "callers, reaches and is reached by no other region "
            "(a caller's region: FAILOVER_HOME_REGION).",
        ),
    ] = FailMode.DOWN,
) -> None:
    """Make one region fail as a real one does."""
    _sandbox().Sandbox.attach(_state_dir()).fail(region, mode.value)
    console.print(f"region {region}: {mode.value}")


@sandbox_app.command("heal")
def heal(region: RegionArg) -> None:
    """Bring a failed region back (a killed one comes back with what it held)."""
    _sandbox().Sandbox.attach(_state_dir()).heal(region)
    console.print(f"region {region}: running")


@sandbox_app.command("show")
def show(as_json: JsonOption = False) -> None:
    """Show the sandbox's servers: endpoint, pid and condition of each."""
    info = _sandbox().Sandbox.attach(_state_dir()).describe()
    if as_json:
        print_json(info)
    else:
        _render(info)
