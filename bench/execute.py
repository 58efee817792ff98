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

Run: ``.venv/bin/python bench/execute.py``
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from controller import graph as graphs
from controller.executor import Executor
from controller.journal import RunStatus
from controller.plan import build_plan
from controller.spec import load
from sandbox import Sandbox


def generate() -> dict[str, object]:
    """60 components: 8 tables, 8 queues, 4 buckets, 4 parameters, 30 functions, 4 schedules,
    an api and its dns record."""
    comps: dict[str, dict[str, object]] = {}
    for i in range(8):
        comps[f"table-{i}"] = {"kind": "table"}
        comps[f"queue-{i}"] = {"kind": "queue"}
    for i in range(4):
        comps[f"bucket-{i}"] = {"kind": "bucket"}
        comps[f"param-{i}"] = {"kind": "parameter", "value": str(i)}
    for i in range(30):
        deps = [f"table-{i % 8}", f"param-{i % 4}"]
        if i >= 15:  # a second layer of functions that call the first
            deps.append(f"fn-{i - 15}")
        fn: dict[str, object] = {"kind": "function", "depends_on": deps, "degraded": "read_only"}
        if i < 8:
            fn["events"] = [{"source": f"queue-{i}"}]
        elif i < 12:
            fn["depends_on"] = [*deps, f"bucket-{i - 8}"]
        comps[f"fn-{i}"] = fn
    for i in range(4):
        comps[f"schedule-{i}"] = {
            "kind": "schedule",
            "expression": "rate(1 hour)",
            "target": f"fn-{20 + i}",
        }
    comps["api"] = {
        "kind": "api",
        "routes": [
            {"method": "GET", "path": f"/r{i}", "function": f"fn-{15 + i}", "auth": "jwt"}
            for i in range(15)
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


def timed_run(box: Sandbox, workers: int, round_trip: float = 0.0) -> float:
    """Seconds to fail over from a fresh sandbox with ``workers`` threads per level."""
    box.reset()
    topology = box.topology
    plan = build_plan(topology, graphs.build(topology), target="us-west-2")
    box.model_round_trip(round_trip)
    try:
        start = time.perf_counter()
        result = Executor(topology, box.manifest, box.clients, max_workers=workers).execute(plan)
        elapsed = time.perf_counter() - start
    finally:
        box.model_round_trip(0.0)
    assert result.run.status == RunStatus.COMPLETED, result.run.status
    return elapsed


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "topology.yaml"
        spec.write_text(yaml.safe_dump(generate(), sort_keys=False))
        (Path(tmp) / "functions").mkdir()  # every function's code folder must hold its handler
        (Path(tmp) / "functions" / "app.py").write_text("def handler(e, c):\n    pass\n")
        topology = load(spec)
        graph = graphs.build(topology)
        plan = build_plan(topology, graph, target="us-west-2")
        box = Sandbox.up(spec, Path(tmp) / ".failover")
        try:
            bare_parallel, bare_sequential = timed_run(box, 8), timed_run(box, 1)
            parallel = timed_run(box, 8, ROUND_TRIP)
            sequential = timed_run(box, 1, ROUND_TRIP)
        finally:
            box.down()
    path = graphs.critical_path(graph)
    print(
        f"components={len(topology.components)} steps={len(plan.steps)} levels={len(plan.levels)}"
    )
    print(f"critical_path_length={len(path)} critical_path={' -> '.join(path)}")
    print(f"bare_parallel_seconds={bare_parallel:.2f}")
    print(f"bare_sequential_seconds={bare_sequential:.2f}")
    print(f"bare_ratio={bare_parallel / bare_sequential:.2f} (CPU-bound on this machine's cores)")
    print(f"round_trip_seconds={ROUND_TRIP}")
    print(f"parallel_seconds={parallel:.2f}")
    print(f"sequential_seconds={sequential:.2f}")
    ratio = parallel / sequential
    print(f"goal_ratio=0.40 met={'yes' if ratio < 0.4 else 'no'}")
    print(f"ratio_parallel_to_sequential={ratio:.2f}")


if __name__ == "__main__":
    sys.exit(main())
