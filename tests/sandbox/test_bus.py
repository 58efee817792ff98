"""The event bus kind against the emulator: provisioned in every region with its rules enabled
only in the primary, fenced and activated idempotently, faults classified, what it delivers
checked with plain boto3, and shown by ``failover status``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.actions.base import State
from controller.actions.registry import action_for
from controller.aws import AwsSettings, Clients
from controller.contract import DegradedMode
from controller.errors import PermanentStepError, TransientStepError
from controller.topology.kinds import BusSpec
from sandbox import Sandbox
from tests.kit.cli import CliResult
from tests.kit.emulator import SLACK, fault, plain, status_json

pytestmark = pytest.mark.sandbox

PRIMARY, STANDBY = "us-east-1", "us-west-2"
BUS, QUEUE = "order-events", "shipping-queue"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orders" / "topology.yaml"


def bus_action(box: Sandbox, region: str, clients: Clients | None = None) -> Any:
    return action_for(box.topology, box.manifest, clients or box.clients, BUS, region)


def rule_states(box: Sandbox, region: str) -> list[str]:
    events, bus = plain(box, "events", region), box.manifest.ref(BUS, region).name
    return [
        events.describe_rule(Name=BusSpec.rule_name(bus, rule), EventBusName=bus)["State"]
        for rule in box.topology.components[BUS].rules
    ]


def publish(box: Sandbox, region: str, order_id: str) -> None:
    plain(box, "events", region).put_events(
        Entries=[
            {
                "Source": "orders.api",
                "DetailType": "OrderPlaced",
                "EventBusName": box.manifest.ref(BUS, region).name,
                "Detail": json.dumps({"order_id": order_id}),
            }
        ]
    )


def delivered(box: Sandbox, region: str, wait: float) -> list[str]:
    """Order ids in the region's shipping queue, polled until one arrives or ``wait`` ends."""
    sqs, url = plain(box, "sqs", region), box.manifest.ref(QUEUE, region).queue_url
    deadline = time.monotonic() + wait
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        ids = [json.loads(m["Body"])["detail"]["order_id"] for m in got.get("Messages", [])]
        if ids or time.monotonic() > deadline:
            return ids
        time.sleep(0.1)


def test_bus_is_active_in_the_primary_and_standby_elsewhere(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    assert bus_action(box, PRIMARY).read().state == State.ACTIVE
    for region in box.topology.regions.standby:
        assert bus_action(box, region).read().state == State.STANDBY
        assert rule_states(box, region) == ["DISABLED"]
    assert rule_states(box, PRIMARY) == ["ENABLED"]


def test_only_the_active_regions_rules_deliver(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    publish(box, PRIMARY, "a-1")
    assert delivered(box, PRIMARY, wait=5) == ["a-1"]
    publish(box, STANDBY, "s-1")
    assert delivered(box, STANDBY, wait=0.5) == []  # a disabled rule delivers nothing


def test_fence_then_activate_twice_is_once_and_moves_delivery(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    fence = bus_action(box, PRIMARY)
    first, again = fence.deactivate(), fence.deactivate()
    assert first.changed and first.observed.state == State.FENCED
    assert not again.changed and again.observed.state == State.FENCED
    assert rule_states(box, PRIMARY) == ["DISABLED"]
    up = bus_action(box, STANDBY)
    first, again = up.activate(), up.activate()
    assert first.changed and first.observed.state == State.ACTIVE and not again.changed
    assert rule_states(box, STANDBY) == ["ENABLED"]
    publish(box, PRIMARY, "late")
    publish(box, STANDBY, "moved")
    assert delivered(box, STANDBY, wait=5) == ["moved"]
    assert delivered(box, PRIMARY, wait=0.5) == []


def test_rules_that_disagree_are_degraded_and_activate_sets_them_right(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    events, bus = plain(box, "events", STANDBY), box.manifest.ref(BUS, STANDBY).name
    rule = BusSpec.rule_name(bus, "placed")
    events.put_rule(
        Name=f"{bus}-extra",
        EventBusName=bus,
        State="ENABLED",
        EventPattern=json.dumps({"source": ["x"]}),
    )
    topology = box.topology.model_copy(
        update={
            "components": {
                **box.topology.components,
                BUS: box.topology.components[BUS].model_copy(
                    update={
                        "rules": {
                            **box.topology.components[BUS].rules,
                            "extra": box.topology.components[BUS].rules["placed"],
                        }
                    }
                ),
            }
        }
    )
    act = action_for(topology, box.manifest, box.clients, BUS, STANDBY)
    seen = act.read()
    assert seen.state == State.DEGRADED and not seen.healthy and rule in seen.detail
    assert act.activate().observed.state == State.ACTIVE
    assert events.describe_rule(Name=rule, EventBusName=bus)["State"] == "ENABLED"
    assert act.activate(DegradedMode.UNAVAILABLE).observed.state == State.DEGRADED
    events.enable_rule(Name=f"{bus}-extra", EventBusName=bus)  # disagree while "unavailable"
    again = act.activate(DegradedMode.UNAVAILABLE)
    assert again.changed and again.observed.state == State.DEGRADED
    assert events.describe_rule(Name=f"{bus}-extra", EventBusName=bus)["State"] == "DISABLED"


def test_degraded_unavailable_is_a_bus_that_delivers_nothing(fresh_sandbox: Sandbox) -> None:
    act = bus_action(fresh_sandbox, PRIMARY)
    assert act.activate(DegradedMode.UNAVAILABLE).observed.state == State.DEGRADED
    assert rule_states(fresh_sandbox, PRIMARY) == ["DISABLED"]


def test_a_missing_bus_is_a_permanent_error_on_activate(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    events, bus = plain(box, "events", STANDBY), box.manifest.ref(BUS, STANDBY).name
    rule = BusSpec.rule_name(bus, "placed")
    events.remove_targets(Rule=rule, EventBusName=bus, Ids=[QUEUE])
    events.delete_rule(Name=rule, EventBusName=bus)
    assert bus_action(box, STANDBY).read().state == State.MISSING
    with pytest.raises(PermanentStepError, match=f"{BUS}/{STANDBY}"):
        bus_action(box, STANDBY).activate()


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "ThrottlingException", TransientStepError),
        (500, "InternalException", TransientStepError),
        (400, "AccessDeniedException", PermanentStepError),
    ],
)
def test_faults_are_classified_and_change_nothing(
    fresh_sandbox: Sandbox, status: int, code: str, error: type[Exception]
) -> None:
    hook, calls = fault(status, code)
    clients = Clients(
        endpoints=fresh_sandbox.manifest.endpoints,
        settings=AwsSettings(connect_timeout=1, read_timeout=2, max_attempts=2),
        hooks=[("before-send.events", hook)],
    )
    with pytest.raises(error, match=f"{BUS}/{PRIMARY}"):
        bus_action(fresh_sandbox, PRIMARY, clients).deactivate()
    assert calls[1] >= 1
    assert rule_states(fresh_sandbox, PRIMARY) == ["ENABLED"]


def test_status_shows_the_bus_in_every_region(
    fresh_sandbox: Sandbox, cli: Callable[..., CliResult]
) -> None:
    box = fresh_sandbox
    bus_action(box, PRIMARY).deactivate()
    regions = status_json(cli, box)["regions"]
    seen = {region: r["components"][BUS]["state"] for region, r in regions.items()}
    assert seen == {PRIMARY: "fenced", STANDBY: "standby", "eu-west-1": "standby"}
    table = cli(
        "status", "--manifest", box.manifest_path, "--spec", EXAMPLE, "--timeout", str(SLACK)
    )
    assert table.code == 0, table.err
    assert any(BUS in line and " bus " in f" {line} " for line in table.out.splitlines())
