"""Run K outages in the sandbox; print detection and shift times, median and max.

Each outage is the demo's story (sandbox up, load, the primary hung or killed, the watcher fails
over). The ratio judged: the median time from outage to the end of the failover run, over the
plan's critical path (its number of levels) times the median AWS API call time measured against
the same emulator in the same run: how many "sequential API calls" a failover costs beyond the
floor its dependency graph sets.

``--quick`` runs one outage (the primary killed) with one-second phases and a 5-sample call
floor: ``make test`` runs it so that a change that breaks the bench breaks the build; its
figures mean nothing.

Run: ``.venv/bin/python bench/detect.py [K] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from controller import graph as graphs
from controller.plan import build_plan
from controller.spec import load
from sandbox import Sandbox
from sandbox.demo import DemoOptions, run_demo

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "orders" / "topology.yaml"


def median_call_seconds(samples: int = 60) -> float:
    """The median time of one SSM GetParameter against a sandbox region (the API-call floor)."""
    with tempfile.TemporaryDirectory() as tmp:
        box = Sandbox.up(EXAMPLE, Path(tmp) / ".failover")
        try:
            region = box.topology.regions.primary
            ssm = box.clients.client("ssm", region)
            name = box.topology.mode_parameter(region)
            times = []
            for _ in range(samples):
                start = time.perf_counter()
                ssm.get_parameter(Name=name)
                times.append(time.perf_counter() - start)
            return statistics.median(times)
        finally:
            box.down()


#: Seconds of steady load before the outage and after the failover: the bench's, and --quick's.
PHASES = (5.0, 6.0)
QUICK_PHASES = (1.0, 1.0)
#: The outages' modes, in turn.
MODES = ("hang", "down")


def main(
    k: int = 3,
    samples: int = 60,
    phases: tuple[float, float] = PHASES,
    modes: tuple[str, ...] = MODES,
) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    topology = load(EXAMPLE)
    plan = build_plan(topology, graphs.build(topology), target=topology.regions.standby[0])
    call = median_call_seconds(samples)
    detect, shift, runs = [], [], []
    for i in range(k):
        mode = modes[i % len(modes)]
        with tempfile.TemporaryDirectory() as tmp:
            report = run_demo(
                DemoOptions(
                    spec=EXAMPLE,
                    state_dir=Path(tmp) / ".failover",
                    mode=mode,
                    warmup=phases[0],
                    after=phases[1],
                    rate=10.0,
                )
            ).report
        detect.append(report["time_to_detect_seconds"])
        shift.append(report["time_to_shift_seconds"])
        run = report["runs"][0] if report["runs"] else None
        runs.append(run["updated"] - report["outage_at"] if run else float("nan"))
        print(
            f"outage {i + 1}/{k} ({mode}): detect={detect[-1]}s dns_shift={shift[-1]}s "
            f"failover_done={runs[-1]:.2f}s lost={report['lost_writes']} "
            f"failed_share={report['failed_share_during_outage']}",
            flush=True,
        )
    levels = len(plan.levels)
    chain = graphs.critical_path(graphs.build(topology))
    print(f"plan_levels={levels} critical_path_components={len(chain)}")
    print(f"median_api_call_seconds={call:.4f}")
    print(f"detect_seconds median={statistics.median(detect):.2f} max={max(detect):.2f}")
    print(f"dns_shift_seconds median={statistics.median(shift):.2f} max={max(shift):.2f}")
    print(f"failover_done_seconds median={statistics.median(runs):.2f} max={max(runs):.2f}")
    ratio = statistics.median(runs) / (levels * call)
    print(f"ratio_failover_to_critical_path_x_call={ratio:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("k", nargs="?", type=int, default=3, help="outages")
    parser.add_argument("--quick", action="store_true", help="one short outage; no figure holds")
    args = parser.parse_args()
    if args.quick:
        main(1, samples=5, phases=QUICK_PHASES, modes=("down",))  # a hang waits out timeouts
    else:
        main(args.k)
