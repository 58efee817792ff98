"""Run K outages in the sandbox; print detection, shift and full-service times, median and max.

Each outage is the demo's story on the deployed configuration (sandbox up at ``--time-scale``
k, load, the primary hung or killed, the watcher fails over); every figure is in AWS seconds
(the sandbox's clock) and in wall seconds. The ratio judged: the median time from outage to the
end of the failover run, over the plan's critical path (its number of levels) times the median
AWS API call time measured against the same emulator in the same run: how many "sequential API
calls" a failover costs beyond the floor its dependency graph sets.

``--against K2`` rehearses the same outages at a second scale and prints each AWS-second median
at K2 over the one at k: the scale is a rehearsal speed, so the ratios should be near 1 (issue
25: within 20%).

``--quick`` runs one outage (the primary killed) with short phases and a 5-sample call
floor: ``make test`` runs it so that a change that breaks the bench breaks the build; its
figures mean nothing.

Run: ``.venv/bin/python bench/detect.py [K] [--time-scale k] [--against K2] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from controller.contract import DEFAULT_TIME_SCALE
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from controller.topology import load
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


#: AWS seconds of steady load before the outage and after the failover: the bench's, --quick's.
PHASES = (90.0, 60.0)
QUICK_PHASES = (20.0, 20.0)
#: The outages' modes, in turn.
MODES = ("hang", "down")


FIGURES = ("detect", "dns_shift", "full_service", "failover_done")


def rehearse(
    k: int, scale: float, phases: tuple[float, float], modes: tuple[str, ...]
) -> dict[str, list[float]]:
    """K outages at ``scale``; each figure's AWS seconds per outage (NaN when it did not
    happen)."""
    figures: dict[str, list[float]] = {name: [] for name in FIGURES}
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
                    time_scale=scale,
                    page_port=None,
                )
            ).report
        run = report["runs"][0] if report["runs"] else None
        got = {
            "detect": report["time_to_detect_seconds"],
            "dns_shift": report["time_to_shift_seconds"],
            "full_service": report["time_to_full_service_seconds"],
            "failover_done": run["updated"] - report["outage_at"] if run else None,
        }
        for name, value in got.items():
            figures[name].append(float("nan") if value is None else float(value))
        shown = " ".join(
            f"{name}={figures[name][-1]:.1f}s({figures[name][-1] / scale:.2f}s wall)"
            for name in FIGURES
        )
        failed = sum(report["requests"][phase]["failed"] for phase in ("outage", "after"))
        print(
            f"k={scale:g} outage {i + 1}/{k} ({mode}): {shown} lost={report['lost_writes']} "
            f"failed={failed}",
            flush=True,
        )
    return figures


def main(
    k: int = 3,
    samples: int = 60,
    phases: tuple[float, float] = PHASES,
    modes: tuple[str, ...] = MODES,
    scale: float = DEFAULT_TIME_SCALE,
    against: float | None = None,
) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    topology = load(EXAMPLE)
    plan = build_plan(topology, graphs.build(topology), target=topology.regions.standby[0])
    call = median_call_seconds(samples)
    figures = rehearse(k, scale, phases, modes)
    levels = len(plan.levels)
    chain = graphs.critical_path(graphs.build(topology))
    print(f"plan_levels={levels} critical_path_components={len(chain)}")
    print(f"median_api_call_seconds={call:.4f} (wall)")
    medians = {name: statistics.median(values) for name, values in figures.items()}
    for name in FIGURES:
        print(
            f"k={scale:g} {name}_seconds median={medians[name]:.1f} (AWS) "
            f"{medians[name] / scale:.2f} (wall) max={max(figures[name]):.1f} (AWS)"
        )
    ratio = medians["failover_done"] / scale / (levels * call)
    print(f"ratio_failover_wall_to_critical_path_x_call={ratio:.1f}")
    if against is not None:
        other = rehearse(k, against, phases, modes)
        for name in FIGURES:
            there = statistics.median(other[name])
            print(
                f"k={against:g} {name}_seconds median={there:.1f} (AWS); "
                f"ratio k={against:g}/k={scale:g} = {there / medians[name]:.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("k", nargs="?", type=int, default=3, help="outages")
    parser.add_argument("--quick", action="store_true", help="one short outage; no figure holds")
    parser.add_argument(
        "--time-scale", type=float, default=DEFAULT_TIME_SCALE, help="AWS seconds per wall second"
    )
    parser.add_argument("--against", type=float, default=None, help="a second scale to compare")
    args = parser.parse_args()
    if not args.time_scale > 0 or (args.against is not None and not args.against > 0):
        parser.error("--time-scale and --against: AWS seconds per wall second, above 0")
    if args.quick:
        main(1, samples=5, phases=QUICK_PHASES, modes=("down",), scale=args.time_scale)
    else:
        main(args.k, scale=args.time_scale, against=args.against)
