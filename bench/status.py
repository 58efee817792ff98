"""``failover status``: the whole command as an operator types it, every region up and one hung,
and what one read costs in AWS calls and time against the per-component read it replaced.

Goals (issue #27, item 6): the whole process under 1 s with every region up, under 2.5 s with
one region hung (``--timeout`` at its default 4 s).

Prints, on the example's sandbox (no watchers, so that nothing else calls the servers):

- ``failover status --json`` as a fresh process each run (imports, clients and all): the median
  wall time and CPU of the command, every region up and with us-east-1 hung, against the goals;
- one read in a warm process (what the status page and the watchers pay for each read):
  :func:`controller.health.status` against the baseline, measured in the same run on the same
  servers, of the per-component read it replaced (each component's read asks for its own mode
  parameter in a call of its own, and every read of every region, the hung one's too, is sent
  at once beside the probes): the median wall time and the AWS calls sent per read, and their
  ratios. Last a JSON line.

The command runs as installed: ``pip install`` byte-compiles what it installs, but this
machine's ``.venv`` holds no bytecode and ``PYTHONDONTWRITEBYTECODE`` is set, so each run would
compile some 300 modules again (about 0.45 s of CPU). The warm-up run writes their bytecode
under the bench's temporary folder (``PYTHONPYCACHEPREFIX``) and the counted runs read it;
``--no-bytecode`` measures them compiled at every run, as this environment runs them.

``--quick`` runs each measure once, without the warm-ups: ``make test`` runs it so that a change
that breaks the bench breaks the build; its figures mean nothing.

Run: ``.venv/bin/python bench/status.py [--runs N] [--quick] [--no-bytecode]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from controller import health
from controller.actions import alarms
from controller.actions import mode as modes
from controller.actions.registry import action_for
from controller.aws import Clients
from controller.contract import GLOBAL
from controller.controltable.table import LEASE_PK, LEASE_SK, ControlTable
from sandbox import Sandbox

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "orders" / "topology.yaml"
HUNG = "us-east-1"
GOALS = {"up": 1.0, "hung": 2.5}
DEADLINE = health.DEADLINE_SECONDS
#: What a status reads of the control table: the lease item, then the run in progress.
CONTROL_ITEMS = ((LEASE_PK, LEASE_SK), ("current", "run"))
FAILOVER = [sys.executable, "-c", "from controller.interfaces.cli import main; main()"]
if (Path(sys.executable).parent / "failover").exists():
    FAILOVER = [str(Path(sys.executable).parent / "failover")]


def per_component_read(box: Sandbox, clients: Clients) -> None:
    """The read before batching, as it called AWS: each region's probe (its mode parameter)
    and, beside it, every component's read with its own mode call, the region's alarms and
    Route 53's view of it, and the control table's two items, all sent at once."""
    topology, manifest = box.topology, box.manifest
    fast = clients.derive(settings=health.probe_settings(DEADLINE))
    pool = ThreadPoolExecutor(max_workers=health.MAX_WORKERS)
    pending: list[Future[Any]] = []
    table = ControlTable(fast, manifest)
    pending.append(pool.submit(lambda: [table.get(*key) for key in CONTROL_ITEMS]))
    for region in topology.regions.all:
        pending.append(pool.submit(modes.read_region_mode, fast, topology, manifest, region))
        for name in topology.components:
            action = action_for(topology, manifest, fast, name, region)
            pending.append(pool.submit(action.read))
        names = [a for c in manifest.regions[region].components.values() for a in c.alarms]
        pending.append(pool.submit(alarms.alarm_states, fast, region, names))
        check = manifest.dns.health_checks.get(region) if manifest.dns else None
        if check:
            route53 = fast.client("route53", GLOBAL)
            pending.append(pool.submit(route53.get_health_check_status, HealthCheckId=check))
    wait(pending, timeout=DEADLINE)
    pool.shutdown(wait=False, cancel_futures=True)


def batched_read(box: Sandbox, clients: Clients) -> None:
    """The read as ``failover status`` and the status page make it now."""
    from controller.interfaces.views import read_status

    read_status(box.topology, box.manifest, clients, deadline=DEADLINE)


def counted(box: Sandbox) -> tuple[Clients, list[int]]:
    """Clients on the sandbox that count every request they send (retries included)."""
    sent = [0]

    def count(**_: Any) -> None:
        sent[0] += 1

    return box.clients.derive(hook=("before-send", count)), sent


Read = Callable[[Sandbox, Clients], None]


def in_process(box: Sandbox, read: Read, runs: int, warm_up: bool = True) -> dict[str, float]:
    """Median wall time and AWS calls of ``runs`` reads, after one that makes the clients
    (``warm_up``; without it, the first read makes them and is counted)."""
    clients, sent = counted(box)
    if warm_up:
        read(box, clients)
    walls, calls = [], []
    for _ in range(runs):
        before, started = sent[0], time.perf_counter()
        read(box, clients)
        walls.append(time.perf_counter() - started)
        calls.append(sent[0] - before)
    return {"wall_seconds": round(statistics.median(walls), 4), "calls": statistics.median(calls)}


def whole_process(
    box: Sandbox, runs: int, cache: str, bytecode: str | None, warm_up: bool = True
) -> dict[str, float]:
    """Median wall time and CPU of ``failover status --json`` as a fresh process, ``runs`` times
    after one warm-up (none without ``warm_up``; the suspects file in ``cache`` is an
    operator's, kept between them), reading its modules' bytecode from ``bytecode`` (None:
    compiling them at every run)."""
    command = [*FAILOVER, "status", "--json", "--manifest", str(box.manifest_path)]
    env = os.environ | {"FAILOVER_CACHE_DIR": cache}
    if bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = bytecode
    walls, cpus = [], []
    for run in range(0 if warm_up else 1, runs + 1):
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0 or not json.loads(done.stdout).get("regions"):
            raise SystemExit(f"failover status: exit {done.returncode}\n{done.stderr}")
        if run:
            walls.append(wall)
            cpus.append(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
    return {
        "wall_seconds": round(statistics.median(walls), 4),
        "cpu_seconds": round(statistics.median(cpus), 4),
    }


def measure(
    box: Sandbox, runs: int, cache: str, bytecode: str | None, warm_up: bool = True
) -> dict[str, Any]:
    """Every figure of one state of the sandbox."""
    return {
        "process": whole_process(box, runs, cache, bytecode, warm_up),
        "read": in_process(box, batched_read, runs, warm_up),
        "per_component_read": in_process(box, per_component_read, runs, warm_up),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="one run of each; no figure holds")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile the modules at every run"
    )
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        box = Sandbox.up(EXAMPLE, Path(folder) / ".failover")
        cache = str(Path(folder) / "cache")
        bytecode = None if args.no_bytecode else str(Path(folder) / "bytecode")
        try:
            warm_up = not args.quick
            figures["up"] = measure(box, args.runs, cache, bytecode, warm_up)
            box.fail(HUNG, "hang")
            figures["hung"] = measure(box, args.runs, cache, bytecode, warm_up)
        finally:
            box.down()
    print("modules: " + ("compiled at every run" if args.no_bytecode else "bytecode, as installed"))
    figures["bytecode"] = not args.no_bytecode
    for state, row in ((k, v) for k, v in figures.items() if k in GOALS):
        process, read, old = row["process"], row["read"], row["per_component_read"]
        print(
            f"{state:5s} failover status: wall {process['wall_seconds']:.3f} s (goal "
            f"{GOALS[state]:.1f} s), cpu {process['cpu_seconds']:.3f} s"
        )
        row["wall_ratio"] = read["wall_seconds"] / old["wall_seconds"]
        row["calls_ratio"] = read["calls"] / old["calls"]
        print(
            f"{state:5s} one read: {read['wall_seconds']:.3f} s, {read['calls']:g} calls; "
            f"per-component {old['wall_seconds']:.3f} s, {old['calls']:g} calls; "
            f"ratio wall {row['wall_ratio']:.3f}, calls {row['calls_ratio']:.3f}"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
