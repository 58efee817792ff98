"""CLI start-up: `failover --help` and `failover plan` against the imports they cannot avoid.

Goal (issue "lean controller package"): each verb within 1.25x its floor, the floor being a bare
Python that imports what the verb needs anyway:

- ``failover --help``              vs ``python -c "import typer, rich.console"``
- ``failover plan --to us-west-2`` vs ``python -c "import typer, rich.console, networkx,
  pydantic, yaml"``

Two more rows are for the record: ``plan-vs-typer`` runs plan against an empty typer command
taking plan's options (typer 0.2x coerces every non-bool option through a pydantic
``TypeAdapter`` when a command runs, so running any command with an option imports pydantic's
model machinery, which the floor's lazy ``import pydantic`` leaves out), and ``plan-vs-models``
against the floor plus one pydantic model.

The controller's sources are byte-compiled first, as ``pip install`` does: an editable install
under ``PYTHONDONTWRITEBYTECODE`` would otherwise compile them on every run.

Each pair runs alternately (A B A B ...) after one warm-up, 10 counted runs each, all from this
one process; the figures are medians of wall time and the median of the per-pair ratios, so a
machine whose speed drifts during the run still compares like with like. It also lists which of
boto3, botocore, moto, matplotlib and pulumi each verb imports (``python -X importtime``): none
is the goal.

``--quick`` runs each pair once, without the warm-up: ``make test`` runs it so that a change
that breaks the bench breaks the build; its figures mean nothing.

Run: ``.venv/bin/python bench/cli_startup.py [--runs N] [--quick]``
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
FAILOVER = [sys.executable, "-c", "from controller.cli import main; main()"]
if (BIN / "failover").exists():
    FAILOVER = [str(BIN / "failover")]
HEAVY = ("boto3", "botocore", "moto", "matplotlib", "pulumi", "pulumi_aws")
GOAL = 1.25

#: An empty typer application whose ``plan`` command takes plan's options, of the same types.
TYPER_COMMAND = """
import enum, pathlib, typer, rich.console, networkx, pydantic, yaml
from typing import Annotated
class Format(enum.StrEnum):
    text = "text"
    json = "json"
app = typer.Typer()
@app.callback()
def root(verbose: Annotated[int, typer.Option("-v", count=True)] = 0,
         log_json: Annotated[bool, typer.Option("--log-json")] = False) -> None: ...
@app.command()
def plan(to: Annotated[str, typer.Option("--to")],
         from_: Annotated[str | None, typer.Option("--from")] = None,
         unavailable: Annotated[list[str] | None, typer.Option("-u")] = None,
         spec: Annotated[pathlib.Path | None, typer.Option("--spec")] = None,
         as_json: Annotated[bool, typer.Option("--json")] = False,
         fmt: Annotated[Format, typer.Option("--format")] = Format.text) -> None: ...
@app.command()
def other() -> None: ...
app()
"""

PAIRS = {
    "help": ([*FAILOVER, "--help"], [sys.executable, "-c", "import typer, rich.console"]),
    "plan": (
        [*FAILOVER, "plan", "--to", "us-west-2"],
        [sys.executable, "-c", "import typer, rich.console, networkx, pydantic, yaml"],
    ),
    # For the record, not a goal of the issue: what typer itself costs to run a command. typer
    # (0.2x and later) coerces every option that is not a bool through a pydantic TypeAdapter,
    # built when the command runs, whatever the value: running a command imports pydantic's
    # model machinery that the floor's lazy ``import pydantic`` leaves out. This floor runs an
    # empty command with plan's options (same types); plan against it is what our code costs.
    "plan-vs-typer": (
        [*FAILOVER, "plan", "--to", "us-west-2"],
        [sys.executable, "-c", TYPER_COMMAND, "plan", "--to", "us-west-2"],
    ),
    # For the record, not a goal of the issue: ``import pydantic`` is lazy and builds nothing,
    # so the floor above leaves out what any verb validating with a pydantic model pays
    # (importing BaseModel and building a first model's schema, about 0.07 s). Against a floor
    # that includes it, the ratio is what the controller's own code costs.
    "plan-vs-models": (
        [*FAILOVER, "plan", "--to", "us-west-2"],
        [
            sys.executable,
            "-c",
            "import typer, rich.console, networkx, pydantic, yaml\n"
            "from pydantic import BaseModel\n"
            "class Model(BaseModel):\n    name: str",
        ],
    ),
}


def wall(command: list[str]) -> float:
    """Seconds one run of ``command`` takes, start to exit (its output thrown away)."""
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def heavy_imports(command: list[str]) -> list[str]:
    """The top-level packages of :data:`HEAVY` that ``command`` imports."""
    python = [sys.executable, "-X", "importtime"]
    argv = (
        python + command[1:]
        if command[0] == sys.executable
        else [*python, "-c", "from controller.cli import main; main()", *command[1:]]
    )
    err = subprocess.run(argv, capture_output=True, text=True, check=False).stderr
    found = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in err.splitlines()
        if line.startswith("import time:")
    }
    return sorted(found & set(HEAVY))


def measure(runs: int, warm_up: bool = True) -> dict[str, dict[str, object]]:
    """Median wall times of every pair, the median ratio, and the heavy imports of each verb."""
    out: dict[str, dict[str, object]] = {}
    heavy: dict[tuple[str, ...], list[str]] = {}  # three pairs run the same verb
    for name, (verb, floor) in PAIRS.items():
        if warm_up:
            wall(verb), wall(floor)  # page cache, .pyc files
        verb_times, floor_times, ratios = [], [], []
        for _ in range(runs):
            a, b = wall(verb), wall(floor)
            verb_times.append(a)
            floor_times.append(b)
            ratios.append(a / b)
        ratio = statistics.median(ratios)
        if tuple(verb) not in heavy:
            heavy[tuple(verb)] = heavy_imports(verb)
        out[name] = {
            "verb_seconds": round(statistics.median(verb_times), 3),
            "floor_seconds": round(statistics.median(floor_times), 3),
            "ratio": round(ratio, 2),
            "goal": GOAL,
            "met": ratio <= GOAL,
            "heavy_imports": heavy[tuple(verb)],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="each pair once; no figure holds")
    args = parser.parse_args()
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "controller", quiet=1)
    figures = measure(1, warm_up=False) if args.quick else measure(args.runs)
    for name, row in figures.items():
        heavy = row["heavy_imports"]
        assert isinstance(heavy, list)
        print(
            f"{name:14s} verb {row['verb_seconds']:.3f} s  floor {row['floor_seconds']:.3f} s  "
            f"ratio {row['ratio']:.2f} (goal <= {GOAL})  heavy imports: "
            f"{', '.join(heavy) or 'none'}"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
