"""Reset the example's sandbox between tests: each server's snapshot against deploying again.

Every test on the shared sandbox starts with :meth:`sandbox.Sandbox.reset`. It restores the
snapshot each server took after the Pulumi program's deployment; the baseline, measured in the
same run on the same servers, is what a reset without snapshots would do: moto's reset on every
server, then the account's hosted zone and the whole program run against them again (about 600
calls). Prints, for each, the median wall time of a reset, the median CPU of this process (the
client) and of the servers, and the ratios; last a JSON line.

``--quick`` measures one reset of each kind on a two-component topology (a table and the
function that reads it, in two regions), not the example: ``make test`` runs it so that a change
that breaks the bench breaks the build; its figures mean nothing. Deploying the example again
took most of the quick run (about 7 of its 11 s of CPU).

Run: ``.venv/bin/python bench/sandbox_reset.py [--runs N] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from controller.aws import Clients
from sandbox import Sandbox, account, servers
from sandbox.deploy.engine import deploy, sandbox_settings
from sandbox.lifecycle import endpoints_of

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "orders" / "topology.yaml"
#: ``--quick``'s topology: the least the program deploys a function and a table for.
SMALL = """\
app: reset
regions: {primary: us-east-1, standby: [us-west-2]}
components:
  table: {kind: table}
  reader: {kind: function, depends_on: [table]}
"""


def small_topology(folder: Path) -> Path:
    """:data:`SMALL` written into ``folder``, with the function's code folder beside it."""
    (folder / "functions").mkdir()
    (folder / "functions" / "app.py").write_text("def handler(event, context):\n    pass\n")
    spec = folder / "topology.yaml"
    spec.write_text(SMALL)
    return spec


def server_cpu(box: Sandbox) -> float:
    """CPU seconds the sandbox's servers have used so far (``/proc``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for server in box.state.servers.values():
        fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def deploy_again(box: Sandbox) -> None:
    """A reset without snapshots: empty every server, run the program against them again."""
    urls = {n: s.url for n, s in box.state.servers.items()}
    with ThreadPoolExecutor(len(urls)) as pool:
        list(pool.map(servers.reset, urls.values()))
    endpoints = endpoints_of(urls)
    account.create_zones(box.topology, Clients(endpoints=endpoints))
    deploy(box.topology, sandbox_settings(box.topology, endpoints, box.state.spec))


def measure(box: Sandbox, reset: Callable[[Sandbox], None], runs: int) -> dict[str, float]:
    """Median wall, client CPU and server CPU of ``runs`` calls of ``reset``."""
    walls, clients, servers_ = [], [], []
    for _ in range(runs):
        started, cpu, served = time.perf_counter(), time.process_time(), server_cpu(box)
        reset(box)
        walls.append(time.perf_counter() - started)
        clients.append(time.process_time() - cpu)
        servers_.append(server_cpu(box) - served)
    return {
        "wall_seconds": round(statistics.median(walls), 4),
        "client_cpu_seconds": round(statistics.median(clients), 4),
        "server_cpu_seconds": round(statistics.median(servers_), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="one run of each; no figure holds")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ.setdefault(name, value)
    with tempfile.TemporaryDirectory() as folder:
        spec = small_topology(Path(folder)) if args.quick else EXAMPLE
        box = Sandbox.up(spec, Path(folder) / ".failover")
        try:
            baseline = measure(box, deploy_again, args.runs)
            box.reset()  # the servers' snapshots again, after the baseline's deployments
            restored = measure(box, Sandbox.reset, args.runs)
        finally:
            box.down()
    for name, row in (("deploy again", baseline), ("snapshot", restored)):
        print(
            f"{name:16s} wall {row['wall_seconds']:.3f} s  client cpu "
            f"{row['client_cpu_seconds']:.3f} s  servers cpu {row['server_cpu_seconds']:.3f} s"
        )
    ratio = restored["wall_seconds"] / baseline["wall_seconds"]
    print(f"snapshot / deploy again: wall {ratio:.3f}")
    print(json.dumps({"deploy_again": baseline, "snapshot": restored, "wall_ratio": ratio}))


if __name__ == "__main__":
    main()
