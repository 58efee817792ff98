"""A status read cut off at its deadline: reads the pool cancelled before they started are
"not read", never an exception out of the report (it ended a watcher's invocation under load)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from controller.health.aggregate import RegionReads, region_status
from controller.health.model import Health
from controller.topology import Topology, load
from tests.kit.manifests import fake_manifest
from tests.kit.paths import EXAMPLE


def cancelled() -> Future[Any]:
    future: Future[Any] = Future()
    assert future.cancel()
    return future


def test_reads_cancelled_at_the_deadline_are_reported_not_read_and_nothing_raises() -> None:
    topology: Topology = load(EXAMPLE)
    name = next(iter(topology.components))
    reads = RegionReads(
        components={name: cancelled()}, alarms=cancelled(), route53=cancelled(), http=cancelled()
    )
    got = region_status("us-east-1", topology, fake_manifest(topology), "active", reads)
    assert got.reachable
    assert got.components[name].health is not Health.HEALTHY  # not read: not called healthy
    assert "deadline" in got.error  # the alarms were not read, and it says so
