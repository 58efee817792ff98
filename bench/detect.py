"""RTO in AWS seconds: K outages per failure mode on the deployed configuration, medians vs goals.

Each outage is the demo's story on the example's deployed configuration (watch every 10 s, 3 bad
evaluations, Route 53 checks 10 s x 3, TTL 60 s), the sandbox at ``--time-scale`` k, the primary
hung, killed or cut off (``hang``, ``down``, ``partition``). Figures, each a median over the
outages, in AWS seconds (the sandbox's clock) and in wall seconds, each against its goal
(issue 27):

- ``detect``: the outage to the watcher's failover decision (goal: 3 intervals, 30 s);
- ``dns_answer``: to Route 53 answering the standby, asked afresh (goal: 40 s);
- ``clients_shift``: to the first client's resolver moving (each client has its own, whose
  answer expires at its own moment within the TTL: the demo's "traffic shifted"; no goal of
  its own, bounded by ``dns_answer`` + TTL / the number of clients, about 4 s);
- ``run_start``, ``dns_step``, ``run_end``: to the switching run's start (its prechecks
  passed), to the end of its own DNS step (the records moved to the standby, its last level),
  and to its end (the standby active, fenced what answers);
- ``full_service``: to the end of the last request not served ``ok`` at its first attempt
  (a client held on the failed region by its resolver's cached answer waits until it moves:
  bounded by ``dns_answer`` + TTL; goal: TTL + 40 = 100 s).

Beside each median: the share of that period the sandbox's CPU took (every process of the bench
and its children: the emulator, the watchers, the data plane), as a share of the machine's cores.
That CPU is not AWS's time, yet on the scaled clock each wall second of it is k AWS seconds: the
share says how much of a figure may be the emulator's, not AWS's (issue 25, item 1).

``--against K2`` rehearses the same outages at a second scale: the scale is a rehearsal speed, so
an outage's figures at K2 over its figures at k should be within 20% of 1. The same outage: the
i-th of a mode's K starts (i + 1/2) / K of the watch interval after an evaluation of the sentinel
watcher is due (``DemoOptions.outage_phase``), at either scale. Detection is mostly that phase (3
bad evaluations: 20 to 30 s after the outage); drawn at random, it put hang's medians of three
5 s apart between two scales (28.2 and 23.3) with nothing else different. Printed: each median
at K2 over the one at k, then the judged figure, each outage's ratio to itself at the other
scale, the median over a mode's outages (:func:`paired`). An outage near an interval's edge is
now and then seen an interval late (the sentinel evaluated a second off its due time): the
medians of two scales may then take different phases, the outage's own ratio does not.
Route 53's checkers keep their own phase (from the sandbox's start): ``dns_answer`` and
``clients_shift`` vary with it at either scale, outage by outage.

``--quick`` runs one outage (the primary killed) with short phases, at k = 10 unless
``--time-scale`` says otherwise: ``make test`` runs it so that a change that breaks the bench
breaks the build; its figures mean nothing (28 s at k = 5, 17 s at k = 10).

Run: ``.venv/bin/python bench/detect.py [K] [--time-scale k] [--against K2] [--quick]``
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controller import clock
from controller.contract import DEFAULT_TIME_SCALE
from controller.topology import load
from sandbox.demo import DemoOptions, run_demo

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "orders" / "topology.yaml"
#: AWS seconds of steady load before the outage and after the first clients moved (the last
#: may hold the old answer a TTL longer, 60 s): the bench's, --quick's.
PHASES = (90.0, 90.0)
QUICK_PHASES = (20.0, 20.0)
#: --quick's clock, unless --time-scale is given: its figures mean nothing, its wall does.
QUICK_SCALE = 10.0
MODES = ("hang", "down", "partition")
#: Each figure and its goal in AWS seconds (None: reported, not judged).
GOALS: dict[str, float | None] = {
    "detect": 30.0,
    "dns_answer": 40.0,
    "clients_shift": None,
    "run_start": None,
    "dns_step": None,
    "run_end": None,
    "full_service": 100.0,
}
#: The clients' requests per AWS second (each is served through the emulator's API, a Lambda
#: runtime process and DynamoDB: at k, k times as many per wall second): each of the 16 clients
#: asks every 40 AWS seconds, and one held by an outage retries every few seconds.
RATE = 0.4
CORES = os.cpu_count() or 1
TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int, marker: str) -> dict[int, float]:
    """CPU seconds (user and system) of ``root``, of every live process whose command line
    names ``marker`` (the sandbox's servers, which the launcher detaches from the bench), and of
    every process below them, by process id."""
    parent: dict[int, int] = {}
    spent: dict[int, float] = {}
    tops = {root}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                named = marker.encode() in cmdline.read()
        except OSError:
            continue
        pid = int(entry)
        parent[pid] = int(fields[1])
        spent[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        if named:
            tops.add(pid)
    children: dict[int, list[int]] = {}
    for pid, up in parent.items():
        children.setdefault(up, []).append(pid)
    seen: set[int] = set()
    todo = list(tops)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += children.get(pid, [])
    return {pid: spent[pid] for pid in seen if pid in spent}


def used_since(before: dict[int, float], now: dict[int, float]) -> float:
    """CPU seconds spent between two readings of :func:`tree_cpu`: each process's growth, a
    process born since counted whole (a process that ended since is not counted after its last
    reading: a killed region's servers do not make the figure negative).

    >>> used_since({1: 2.0, 2: 5.0}, {1: 2.5, 3: 0.25})
    0.75
    """
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in now.items())


@dataclass
class CpuTrace:
    """(AWS seconds, wall seconds, CPU seconds so far) of the bench and its sandbox (whose
    processes name ``marker``), every 0.1 wall s."""

    marker: str
    points: list[tuple[float, float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Sample until stopped (a thread's target)."""
        me, total = os.getpid(), 0.0
        last = tree_cpu(me, self.marker)
        while not self._stop.wait(0.1):
            now = tree_cpu(me, self.marker)
            total, last = total + used_since(last, now), now
            self.points.append((clock.now(), time.monotonic(), total))

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()

    def share(self, start: float, end: float) -> float:
        """The share of the cores the tree used between two AWS instants (NaN: not sampled)."""
        inside = [p for p in self.points if start <= p[0] <= end]
        if len(inside) < 2 or inside[-1][1] <= inside[0][1]:
            return math.nan
        first, last = inside[0], inside[-1]
        return (last[2] - first[2]) / ((last[1] - first[1]) * CORES)


def one_outage(
    scale: float,
    mode: str,
    phases: tuple[float, float],
    rate: float = RATE,
    phase: float | None = None,
) -> dict[str, float]:
    """One demo at ``scale``: each figure's AWS seconds (NaN when it did not happen) and, under
    ``<figure>_cpu``, the CPU share of its period."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = CpuTrace(tmp)
        sampler = threading.Thread(target=trace.run, daemon=True)
        sampler.start()
        try:
            report = run_demo(
                DemoOptions(
                    spec=EXAMPLE,
                    state_dir=Path(tmp) / ".failover",
                    mode=mode,
                    warmup=phases[0],
                    after=phases[1],
                    rate=rate,
                    time_scale=scale,
                    outage_phase=phase,
                    page_port=None,
                    chart=False,
                )
            ).report
        finally:
            trace.stop()
            sampler.join()
    switch = report.get("switch_run") or {}
    got: dict[str, float | None] = {
        "detect": report["time_to_detect_seconds"],
        "dns_answer": report.get("time_to_dns_answer_seconds"),
        "clients_shift": report["time_to_shift_seconds"],
        "run_start": switch.get("started"),
        "dns_step": switch.get("dns_step_ended"),
        "run_end": switch.get("ended"),
        "full_service": report["time_to_full_service_seconds"],
    }
    out = {name: math.nan if value is None else float(value) for name, value in got.items()}
    outage = float(report["outage_at"])
    for name in GOALS:
        out[f"{name}_cpu"] = trace.share(outage, outage + out[name])
    failed = sum(report["requests"][phase]["failed"] for phase in ("outage", "after"))
    out["lost"], out["failed"] = float(report["lost_writes"]), float(failed)
    return out


def rehearse(
    k: int,
    scale: float,
    phases: tuple[float, float],
    modes: tuple[str, ...],
    say: Callable[..., None],
    rate: float = RATE,
) -> dict[str, list[dict[str, float]]]:
    """K outages per mode at ``scale``, each outage's figures."""
    by_mode: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    interval = load(EXAMPLE).policy.watch_interval_seconds
    for i in range(k):
        for mode in modes:
            got = one_outage(scale, mode, phases, rate, phase=(i + 0.5) / k * interval)
            by_mode[mode].append(got)
            shown = " ".join(f"{name}={got[name]:.1f}" for name in GOALS)
            say(
                f"k={scale:g} {mode} {i + 1}/{k}: {shown} (AWS s) "
                f"lost={got['lost']:.0f} failed={got['failed']:.0f}"
            )
    return by_mode


def medians(outages: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over ``outages`` (the outages where it happened)."""
    out = {}
    for name in outages[0]:
        values = [o[name] for o in outages if not math.isnan(o[name])]
        out[name] = statistics.median(values) if values else math.nan
    return out


def table(scale: float, by_mode: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Print each mode's and all modes' medians against the goals; the medians by row."""
    rows = {mode: medians(outages) for mode, outages in by_mode.items()}
    rows["all"] = medians([o for outages in by_mode.values() for o in outages])
    print(f"\nk={scale:g}: medians, AWS s (wall s) [CPU share of {CORES} cores]; goal")
    for row, got in rows.items():
        for name, goal in GOALS.items():
            judged = (
                ""
                if goal is None
                else f"goal {goal:g}: " + ("met" if got[name] <= goal else "MISSED")
            )
            print(
                f"  {row:9s} {name:13s} {got[name]:6.1f} ({got[name] / scale:5.2f}) "
                f"[{got[f'{name}_cpu']:.0%}] {judged}"
            )
    return rows


def main(
    k: int,
    *,
    phases: tuple[float, float] = PHASES,
    modes: tuple[str, ...] = MODES,
    scale: float = DEFAULT_TIME_SCALE,
    against: float | None = None,
    rate: float = RATE,
) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    say = lambda line: print(line, flush=True)  # noqa: E731
    here_outages = rehearse(k, scale, phases, modes, say, rate)
    here = table(scale, here_outages)
    full = here["all"]["full_service"]
    print(f"ratio_full_service_to_goal={full / 100.0:.2f} (k={scale:g})")
    if against is None:
        return
    there_outages = rehearse(k, against, phases, modes, say, rate)
    there = table(against, there_outages)
    print(f"\nratio k={against:g}/k={scale:g} of each median (AWS s)")
    for row in here:
        show({name: there[row][name] / here[row][name] for name in GOALS}, row)
    print(
        f"\nratio k={against:g}/k={scale:g} of each outage, the same phase at both scales: "
        "median over a mode's outages (within 0.8-1.2 wanted)"
    )
    for row, ratios in paired(here_outages, there_outages).items():
        show(ratios, row)


def paired(
    here: dict[str, list[dict[str, float]]], there: dict[str, list[dict[str, float]]]
) -> dict[str, dict[str, float]]:
    """Each figure's median over the outages of ``there``'s figure over ``here``'s for the same
    outage (the i-th of a mode at each scale), by mode and over all modes (NaN: none to pair).

    >>> a = {"down": [{n: 10.0 for n in GOALS}, {n: 20.0 for n in GOALS}]}
    >>> b = {"down": [{n: 9.0 for n in GOALS}, {n: 30.0 for n in GOALS}]}
    >>> paired(a, b)["down"]["detect"], paired(a, b)["all"]["detect"]
    (1.2, 1.2)
    """
    pairs = {mode: list(zip(here[mode], there[mode], strict=True)) for mode in here}
    pairs["all"] = [p for mode in here for p in pairs[mode]]
    out: dict[str, dict[str, float]] = {}
    for row, outages in pairs.items():
        out[row] = {}
        for name in GOALS:
            ratios = [b[name] / a[name] for a, b in outages if a[name] > 0 and b[name] > 0]
            out[row][name] = statistics.median(ratios) if ratios else math.nan
    return out


def show(ratios: dict[str, float], row: str) -> None:
    """One row of ratios, each outside 0.8-1.2 marked."""
    print(
        f"  {row:9s} "
        + " ".join(
            f"{name}={ratio:.2f}{'' if 0.8 <= ratio <= 1.2 else '!'}"
            for name, ratio in ratios.items()
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("k", nargs="?", type=int, default=3, help="outages per mode")
    parser.add_argument("--quick", action="store_true", help="one short outage; no figure holds")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help=f"AWS s per wall s (default {DEFAULT_TIME_SCALE:g}, --quick {QUICK_SCALE:g})",
    )
    parser.add_argument("--against", type=float, default=None, help="a second scale to compare")
    parser.add_argument("--rate", type=float, default=RATE, help="requests per AWS second")
    parser.add_argument("--modes", default=",".join(MODES), help="failure modes, comma-separated")
    args = parser.parse_args()
    if args.time_scale is None:
        args.time_scale = QUICK_SCALE if args.quick else DEFAULT_TIME_SCALE
    if not args.time_scale > 0 or (args.against is not None and not args.against > 0):
        parser.error("--time-scale and --against: AWS seconds per wall second, above 0")
    if args.k < 1:
        parser.error(f"K {args.k}: outages per mode, 1 or more")
    if args.quick:
        main(1, phases=QUICK_PHASES, modes=("down",), scale=args.time_scale)
    else:
        modes = tuple(args.modes.split(","))
        if not set(modes) <= set(MODES) or not args.rate > 0:
            parser.error(f"--modes: some of {','.join(MODES)}; --rate: above 0")
        main(args.k, scale=args.time_scale, against=args.against, rate=args.rate, modes=modes)
