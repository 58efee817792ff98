"""The replicator holds up no live region for one that does not answer.

With lag 0 a regional endpoint acknowledges a write once the replicator has it in another region
(:meth:`sandbox.replicator.Replicator.sync`). While a destination hangs, a multi-Region strongly
consistent table goes on acknowledging writes with the regions that answer; so must the sandbox,
or every write after a failover waits for the hung old primary and the clients time out.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from sandbox import Sandbox
from sandbox.replicator import Replicator

pytestmark = pytest.mark.sandbox

WRITER, HUNG, THIRD, TABLE = "us-east-1", "us-west-2", "eu-west-1", "orders-table"
#: A bound on waiting for a thread that must not block: only a blocked one reaches it.
BLOCKED = 60.0


def put(box: Sandbox, order_id: str) -> None:
    """One order written in the writer's table."""
    box.clients.client("dynamodb", WRITER).put_item(
        TableName=box.manifest.ref(TABLE, WRITER).name,
        Item={"order_id": {"S": order_id}, "body": {"S": "{}"}},
    )


def held_in(box: Sandbox, region: str, order_id: str) -> bool:
    """Is the order in ``region``'s table?"""
    got = box.clients.client("dynamodb", region).get_item(
        TableName=box.manifest.ref(TABLE, region).name,
        Key={"order_id": {"S": order_id}},
        ConsistentRead=True,
    )
    return "Item" in got


def test_a_write_is_acknowledged_by_a_live_region_while_another_destination_hangs(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background copy is stuck sending to a region that does not answer; a new write is
    still acknowledged, held by the third region, and the stuck copy is still stuck."""
    box = fresh_sandbox
    replicator = Replicator(box.topology, box.manifest, box.clients, lag=0.0)
    entered, release = threading.Event(), threading.Event()
    real = replicator._apply

    def apply(table: str, region: str, record: dict[str, Any]) -> bool:
        if region != HUNG:
            return real(table, region, record)
        entered.set()  # the region takes the connection and never answers, until released
        release.wait()
        return False

    monkeypatch.setattr(replicator, "_apply", apply)
    replicator.start()
    try:
        put(box, uuid.uuid4().hex)
        assert entered.wait(BLOCKED), "the background copy sends to the hung region"
        second = uuid.uuid4().hex
        put(box, second)
        answers: list[bool] = []
        syncing = threading.Thread(target=lambda: answers.append(replicator.sync(WRITER)))
        syncing.start()
        syncing.join(BLOCKED)
        assert answers == [True], "the write waited for the hung region"
        assert held_in(box, THIRD, second)
        assert not held_in(box, HUNG, second) and not release.is_set()
    finally:
        release.set()
        replicator.stop()


def test_a_write_no_other_region_takes_is_not_acknowledged(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With both other regions failing every copy, the write is not acknowledged: the sync
    does not count a change still on its way as arrived."""
    box = fresh_sandbox
    replicator = Replicator(box.topology, box.manifest, box.clients, lag=0.0)
    monkeypatch.setattr(replicator, "_apply", lambda table, region, record: False)
    replicator.start()
    try:
        put(box, uuid.uuid4().hex)
        assert replicator.sync(WRITER) is False
        assert replicator.backlog() >= 2, "the change stays queued for both regions"
    finally:
        replicator.stop()
