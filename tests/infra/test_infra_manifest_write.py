"""The manifest item is written only over the control table this ``pulumi up`` read.

``aws.dynamodb.TableItem`` updates the item with an unconditional UpdateItem, at the end of a
deployment that may take many minutes. A failover that starts meanwhile, or another writer's
manifest, would be overwritten: the program reads the control table again right before the
write and stops it with one line. (The window left is that read to the write.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from test_infra_deployed import HOME, deployed

from controller import contract
from controller.topology import EXAMPLE_SPEC, load
from infra.deployed import DeployedError
from tests.kit.pulumi_mocks import SETTINGS, RecordingMocks, run_program


def change_after_first_read(
    monkeypatch: pytest.MonkeyPatch, pk: str, change: Callable[[dict[str, Any]], None]
) -> list[tuple[str, str]]:
    """From the second read of item ``pk`` on, the control table answers as ``change`` left it
    (something wrote it while the deployment was creating the rest); the reads made."""
    original = RecordingMocks._table_item
    reads: list[tuple[str, str]] = []

    def answer(self: RecordingMocks, args: Any) -> Any:
        key = json.loads(args.args["key"])["pk"]["S"]
        if key == pk and sum(1 for _, k in self.control_reads if k == pk) == 1:
            change(self.control[HOME])
        try:
            return original(self, args)
        finally:
            reads[:] = self.control_reads

    monkeypatch.setattr(RecordingMocks, "_table_item", answer)
    return reads


def test_a_failover_starting_during_pulumi_up_stops_the_manifest_write_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topology = load(EXAMPLE_SPEC)
    control = deployed(topology, "us-east-1")  # a lease item, free

    def failover_starts(items: dict[str, Any]) -> None:
        items[contract.LEASE_ITEM] |= {
            "owner": {"S": "watcher@us-west-2/abc"},
            "expires_at": {"N": "4000000000"},
        }

    reads = change_after_first_read(monkeypatch, contract.LEASE_ITEM, failover_starts)
    with pytest.raises(DeployedError) as info:
        run_program(topology, SETTINGS["example"](), control=control)
    line = str(info.value)
    assert "\n" not in line and line.startswith("control: a failover started during this deploy")
    assert "watcher@us-west-2/abc" in line and "manifest item was not written" in line
    assert reads.count((HOME, contract.LEASE_ITEM)) == 2, reads


def test_a_manifest_item_another_writer_changed_during_pulumi_up_is_not_overwritten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topology = load(EXAMPLE_SPEC)
    control = deployed(topology)

    def another_deployment_writes(items: dict[str, Any]) -> None:
        items[contract.MANIFEST_ITEM] = items[contract.MANIFEST_ITEM] | {
            contract.MANIFEST_ITEM: {"S": json.dumps({"app": "orders", "newer": True})}
        }

    change_after_first_read(monkeypatch, contract.MANIFEST_ITEM, another_deployment_writes)
    with pytest.raises(DeployedError) as info:
        run_program(topology, SETTINGS["example"](), control=control)
    line = str(info.value)
    assert "\n" not in line and "changed during this deployment" in line
    assert "not overwritten" in line


def test_a_redeploy_over_the_item_it_read_writes_it() -> None:
    """Nothing changed between the two reads: the item is written (read twice in its home)."""
    topology = load(EXAMPLE_SPEC)
    run = run_program(topology, SETTINGS["example"](), control=deployed(topology, "us-east-1"))
    (item,) = run.of("aws:dynamodb/tableItem:TableItem")
    assert json.loads(json.loads(item.inputs["item"])[contract.MANIFEST_ITEM]["S"])["app"]
