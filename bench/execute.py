"""Fail over a generated 60-component topology in the sandbox, in parallel and one step at a time.

Prints both wall times, their ratio (goal: parallel under 0.4 of sequential), the number of steps
and levels, and the critical path (the longest chain of needs). The sandbox is started and stopped
by this script, on loopback.

Two pairs of runs. On the bare emulator, a call costs a few milliseconds of CPU in this process
and as many in a moto server, and nothing else: both runs are bound by two cores' CPU, so no
amount of parallelism can do better than about half. A real region's API answers in tens of
milliseconds of waiting; the second pair models that with a round trip of ``ROUND_TRIP`` seconds
per call (the sandbox's servers sleep it), which is what running a level's steps side by side
overlaps. The goal is judged on that pair; both are printed.

The bench's tables are new and nobody writes to them, and no replicator runs: their replication
lag is unknown (no ``ReplicationLatency`` datapoint), which the lag precheck refuses unless told.
The bench times the execution, not replication, so it accepts an unknown lag, as
``failover execute --accept-unknown-lag`` does, and prints the precheck's verdict: the precheck
still reads every table's lag in each timed run, and a lag known to be over its bound still
refuses.

``--quick`` runs only the modelled pair, on the example's topology (whose deployed stack the
test suite's sandboxes keep: a generated topology is deployed anew by each run, about 8 s of CPU)
with a 1 ms round trip, after generating, loading and planning a 9-component topology: ``make
test`` runs it so that a change that breaks the bench breaks the build; its figures mean nothing.

Run: ``.venv/bin/python bench/execute.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from controller.controltable.journal import RunStatus
from controller.engine.executor import Executor
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from controller.topology import load
from sandbox import Sandbox

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "orders" / "topology.yaml"


@dataclass(frozen=True)
class Shape:
    """How many components of each kind the generated topology has."""

    #: Tables, and as many queues, each feeding a function of the first layer.
    tables: int
    #: Buckets, parameters and schedules.
    extras: int
    #: Functions per layer: the second layer's call the first's, and serve the API's routes.
    layer: int
    #: The first function a schedule invokes (the next schedules invoke the next ones).
    scheduled: int


#: 60 components (8 tables, 8 queues, 4 buckets, 4 parameters, 30 functions, 4 schedules, an
#: api and its dns record): 120 steps.
FULL = Shape(tables=8, extras=4, layer=15, scheduled=20)
#: 9 components, for ``--quick``.
QUICK = Shape(tables=1, extras=1, layer=1, scheduled=1)


def generate(shape: Shape = FULL) -> dict[str, object]:
    """A topology of ``shape``: functions in two layers over tables, parameters and buckets,
    queues and schedules invoking them, an api and its dns record."""
    comps: dict[str, dict[str, object]] = {}
    for i in range(shape.tables):
        comps[f"table-{i}"] = {"kind": "table"}
        comps[f"queue-{i}"] = {"kind": "queue"}
    for i in range(shape.extras):
        comps[f"bucket-{i}"] = {"kind": "bucket"}
        comps[f"param-{i}"] = {"kind": "parameter", "value": str(i)}
    for i in range(2 * shape.layer):
        deps = [f"table-{i % shape.tables}", f"param-{i % shape.extras}"]
        if i >= shape.layer:  # a second layer of functions that call the first
            deps.append(f"fn-{i - shape.layer}")
        fn: dict[str, object] = {"kind": "function", "depends_on": deps, "degraded": "read_only"}
        if i < shape.tables:
            fn["events"] = [{"source": f"queue-{i}"}]
        elif i < shape.tables + shape.extras:
            fn["depends_on"] = [*deps, f"bucket-{i - shape.tables}"]
        comps[f"fn-{i}"] = fn
    for i in range(shape.extras):
        comps[f"schedule-{i}"] = {
            "kind": "schedule",
            "expression": "rate(1 hour)",
            "target": f"fn-{shape.scheduled + i}",
        }
    comps["api"] = {
        "kind": "api",
        "routes": [
            {
                "method": "GET",
                "path": f"/r{i}",
                "function": f"fn-{shape.layer + i}",
                "auth": "jwt",
            }
            for i in range(shape.layer)
        ],
    }
    comps["dns"] = {
        "kind": "dns",
        "name": "api.bench.example.com",
        "zone": "bench.example.com",
        "target": "api",
    }
    return {
        "app": "bench",
        "regions": {"primary": "us-east-1", "standby": ["us-west-2"]},
        "components": comps,
    }


#: Seconds each call waits in the modelled runs: the low end of an AWS API call's latency.
ROUND_TRIP = 0.02
#: ... and in ``--quick``'s, which only show that the modelled runs still run.
QUICK_ROUND_TRIP = 0.001


def timed_run(box: Sandbox, workers: int, round_trip: float = 0.0) -> tuple[float, str]:
    """Seconds to fail over from a fresh sandbox with ``workers`` threads per level, and what
    the replication-lag precheck said."""
    box.reset()
    topology = box.topology
    plan = build_plan(topology, graphs.build(topology), target="us-west-2")
    executor = Executor(
        topology,
        box.manifest,
        box.clients,
        max_workers=workers,
        accept_unknown_lag=True,  # no table was written: their lag is unknown (see above)
    )
    box.model_round_trip(round_trip)
    try:
        start = time.perf_counter()
        result = executor.execute(plan)
        elapsed = time.perf_counter() - start
    finally:
        box.model_round_trip(0.0)
    if result.run.status != RunStatus.COMPLETED:
        raise SystemExit(f"the failover ended {result.run.status.value}, not completed")
    lag = next(c for c in result.prechecks if c.name == "replication_lag")
    return elapsed, lag.detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small topology; no figure holds")
    args = parser.parse_args()
    round_trip = QUICK_ROUND_TRIP if args.quick else ROUND_TRIP
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "topology.yaml"
        spec.write_text(yaml.safe_dump(generate(QUICK if args.quick else FULL), sort_keys=False))
        (Path(tmp) / "functions").mkdir()  # every function's code folder must hold its handler
        (Path(tmp) / "functions" / "app.py").write_text("def handler(e, c):\n    pass\n")
        if args.quick:  # the generated topology plans; the example runs
            build_plan(load(spec), graphs.build(load(spec)), target="us-west-2")
            spec = EXAMPLE
        topology = load(spec)
        graph = graphs.build(topology)
        plan = build_plan(topology, graph, target="us-west-2")
        box = Sandbox.up(spec, Path(tmp) / ".failover")
        try:
            bare = None if args.quick else (timed_run(box, 8)[0], timed_run(box, 1)[0])
            parallel, lag = timed_run(box, 8, round_trip)
            sequential, _ = timed_run(box, 1, round_trip)
        finally:
            box.down()
    path = graphs.critical_path(graph)
    print(
        f"components={len(topology.components)} steps={len(plan.steps)} levels={len(plan.levels)}"
    )
    print(f"critical_path_length={len(path)} critical_path={' -> '.join(path)}")
    print(f"replication_lag_precheck={lag}")
    if bare is None:
        print("bare_pair=skipped (--quick)")
    else:
        print(f"bare_parallel_seconds={bare[0]:.2f}")
        print(f"bare_sequential_seconds={bare[1]:.2f}")
        print(f"bare_ratio={bare[0] / bare[1]:.2f} (CPU-bound on this machine's cores)")
    print(f"round_trip_seconds={round_trip}")
    print(f"parallel_seconds={parallel:.2f}")
    print(f"sequential_seconds={sequential:.2f}")
    ratio = parallel / sequential
    print(f"goal_ratio=0.40 met={'yes' if ratio < 0.4 else 'no'}")
    print(f"ratio_parallel_to_sequential={ratio:.2f}")


if __name__ == "__main__":
    main()
