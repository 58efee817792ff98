"""The demo's outage at a phase of the sentinel's evaluations: the same phase at two time scales
is the same outage (``bench/detect.py`` rehearses each of its outages so)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from controller import clock
from controller.topology import load
from sandbox import demo
from sandbox import watchers as watcher_procs
from tests.kit.paths import EXAMPLE

#: AWS seconds per wall second: the example's 10 s interval is one wall second.
K = 10.0


@pytest.fixture
def scaled() -> Iterator[None]:
    before = clock.current()
    clock.use(clock.Clock(origin=time.time(), scale=K))
    try:
        yield
    finally:
        clock.use(before)


def logged(state_dir: Path, region: str, ts: float, cadence: str) -> None:
    """One evaluation in ``region``'s watcher log, as the deployed function writes it."""
    path = watcher_procs.log_path(state_dir, region)
    path.parent.mkdir(parents=True, exist_ok=True)
    line: dict[str, Any] = {
        "message": "evaluation",
        "watcher_region": region,
        "action": "none",
        "ts": ts,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
        "cadence": cadence,
    }
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def test_the_outage_starts_its_phase_after_the_sentinels_next_evaluation_is_due(
    tmp_path: Path, scaled: None
) -> None:
    topology = load(EXAMPLE)  # us-east-1 fails; us-west-2 is the first a failover picks
    assert topology.policy.watch_interval_seconds == 10
    now = clock.now()
    logged(tmp_path, "us-west-2", now - 33.0, "sentinel")
    logged(tmp_path, "us-west-2", now - 23.0, "sentinel")  # its next are due at now - 3, + 7
    # eu-west-1 says sentinel too (it may, for a minute, when us-west-2's item looks stale):
    # not the one the outage is timed on
    logged(tmp_path, "eu-west-1", now - 6.0, "sentinel")
    box = SimpleNamespace(topology=topology, state_dir=tmp_path)
    demo._at_phase(box, "us-east-1", 4.0)  # type: ignore[arg-type]
    # now - 3 + 4 = now + 1 is the first such moment still ahead (eu-west-1's: now + 8)
    assert now + 1.0 <= clock.now() < now + 7.5
