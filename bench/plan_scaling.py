"""Plan a generated 10,000-component topology in 3 regions; time each stage.

Prints load+validate, graph and plan times, their sum, the ratio of the sum to a baseline
measured in the same run (a bare ``yaml.load`` of the same file: the floor any loader pays), and
last ``plan_10k_seconds=<sum>``. Goal: the sum under 0.5 s on a 2-core machine.

``--quick`` plans 300 components once, in a second: ``make test`` runs it so that a change that
breaks the bench breaks the build; its figures mean nothing.

Run: ``.venv/bin/python bench/plan_scaling.py [N] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import yaml

from controller import graph as graphs
from controller import spec
from controller.plan import build_plan

KINDS = ["function", "queue", "table", "bucket", "stream", "parameter"]


def generate(n: int, seed: int = 7) -> dict[str, object]:
    """A layered random DAG of ``n`` components, a tenth of them traffic at the top."""
    rng = random.Random(seed)
    components: dict[str, dict[str, object]] = {}
    plain: list[str] = []
    for i in range(n):
        name = f"c{i:05d}"
        is_traffic = i >= n * 0.9
        pool = components if is_traffic else plain
        deps = rng.sample(list(pool)[-200:], k=min(len(pool), rng.randint(0, 3))) if pool else []
        components[name] = {
            "kind": "api" if is_traffic else rng.choice(KINDS),
            "depends_on": deps,
            "degraded": "read_only",
        }
        if not is_traffic:
            plain.append(name)
    return {
        "app": "bench",
        "regions": {"primary": "us-east-1", "standby": ["us-west-2", "eu-west-1"]},
        "components": components,
    }


def best_of(fn, repeat: int = 5) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """The fastest of ``repeat`` timed runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(n: int = 10_000, repeat: int = 5) -> None:
    data = generate(n)
    with tempfile.TemporaryDirectory() as tmp:
        as_yaml, as_json = Path(tmp) / "topology.yaml", Path(tmp) / "topology.json"
        (Path(tmp) / "functions").mkdir()  # every function's code folder must hold its handler
        (Path(tmp) / "functions" / "app.py").write_text("def handler(e, c):\n    pass\n")
        as_yaml.write_text(yaml.safe_dump(data, default_flow_style=None, sort_keys=False))
        as_json.write_text(json.dumps(data))  # JSON is YAML: the same file, machine-written
        spec.known_regions()  # botocore's endpoint data: loaded once per process, not per spec
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        t_yaml, _ = best_of(lambda: yaml.load(as_yaml.read_text(), Loader=loader), repeat)  # noqa: S506
        t_load_yaml, _ = best_of(lambda: spec.load(as_yaml), repeat)
        t_load, topology = best_of(lambda: spec.load(as_json), repeat)
        t_graph, g = best_of(lambda: graphs.build(topology), repeat)  # type: ignore[arg-type]
        unavailable = [f"c{i:05d}" for i in range(0, n // 2, max(1, n // 20))]
        t_plan, plan = best_of(
            lambda: build_plan(
                topology,
                g,
                target="us-west-2",  # type: ignore[arg-type]
                unavailable=unavailable,
            ),
            repeat,
        )
    total = t_load + t_graph + t_plan
    print(
        f"components={n} regions=3 steps={len(plan.steps)} "  # type: ignore[attr-defined]
        f"levels={len(plan.levels)} degraded={len(plan.degraded)}"
    )  # type: ignore[attr-defined]
    print(f"load_validate_seconds={t_load:.3f}  (JSON-style file)")
    print(f"load_validate_block_yaml_seconds={t_load_yaml:.3f}  (block-style YAML, libyaml)")
    print(f"graph_seconds={t_graph:.3f}")
    print(f"plan_seconds={t_plan:.3f}")
    print(f"plan_10k_block_yaml_seconds={t_load_yaml + t_graph + t_plan:.3f}")
    print(f"baseline_yaml_parse_seconds={t_yaml:.3f}  (libyaml parse alone, block style)")
    print(f"ratio_to_yaml_parse={total / t_yaml:.2f}")
    print(f"goal_seconds=0.5 met={'yes' if total < 0.5 else 'no'}")
    print(f"plan_10k_seconds={total:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000, help="components")
    parser.add_argument("--quick", action="store_true", help="300 components, once")
    args = parser.parse_args()
    if args.quick:
        main(300, repeat=1)
    else:
        main(args.n)
