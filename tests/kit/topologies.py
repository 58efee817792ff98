"""Topologies of the test kit: the example with a compressed policy, for tests that run the
sandbox on the real clock (k = 1) and still want to see detection within seconds.

The demo, the drills and the benches do not use it: they run the deployed policy on the scaled
clock (:mod:`controller.clock`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from controller.topology import Kind, load


def short_policy(spec: Path, directory: Path, interval: float = 1.0) -> Path:
    """``spec`` with a DNS TTL of 1 s, a watch interval of ``interval`` s, a lease and a
    cooldown of 30 s, written into ``directory``."""
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    # code folders are relative to the original file: keep them found from the copy
    code = {name: fn.code for name, fn in load(spec).of_kind(Kind.FUNCTION)}
    for name, comp in data["components"].items():
        if comp.get("kind") == "dns":
            comp["ttl"] = 1
        if name in code:
            comp["code"] = code[name]
    data.setdefault("policy", {}).update(
        {"cooldown_seconds": 30, "lease_seconds": 30, "watch_interval_seconds": interval}
    )
    out = directory / "short-topology.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load(out)  # still valid
    return out
