"""``pulumi up`` on a deployed stack: it reads the control table before it creates anything.

Failed over, a deployment creates what it adds serving in the active region (else a new
mapping or rule would consume in the old primary beside the new one); a failover in progress
or a control table that does not answer stops it with one line; what cannot change once
deployed (the control table's regions, a health check's interval) is pinned and a change is
refused with one line naming the field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_infra_security import unsecret

from controller import contract
from controller.topology import EXAMPLE_SPEC, Topology, load
from infra.deployed import DeployedError, pins
from infra.regional import ACTIVE, STANDBY
from tests.kit.pulumi_mocks import SETTINGS, Run, is_watcher, run_program

HOME = "us-east-1"  # the example's control table's first region


def deployed(topology: Topology, active: str | None = None, **lease: Any) -> dict[str, Any]:
    """The control table of a deployed example: its manifest item's pins and its lease item."""
    items: dict[str, Any] = {
        contract.MANIFEST_ITEM: {"pins": {"S": json.dumps(pins(topology))}},
    }
    if active is not None:
        items[contract.LEASE_ITEM] = {
            contract.DESIRED_ACTIVE: {"S": active},
            "epoch": {"N": "2"},
            **{k: {"S" if isinstance(v, str) else "N": str(v)} for k, v in lease.items()},
        }
    return {HOME: items}


def enabled_in(run: Run) -> dict[str, set[str]]:
    """Where each kind of switch was created on: mappings, schedule rules, active mode."""
    out: dict[str, set[str]] = {"mappings": set(), "rules": set(), "active": set()}
    for m in run.of("aws:lambda/eventSourceMapping:EventSourceMapping"):
        if m.inputs.get("enabled") and not is_watcher(m.name):  # a watcher's chain: always on
            out["mappings"].add(m.region or "")
    for r in run.of("aws:cloudwatch/eventRule:EventRule"):
        if not is_watcher(r.name) and r.inputs.get("state", "ENABLED") == "ENABLED":
            out["rules"].add(r.region or "")
    for p in run.of("aws:ssm/parameter:Parameter"):
        if p.inputs["name"].endswith("/mode") and unsecret(p.inputs["value"]) == ACTIVE:
            out["active"].add(p.region or "")
    return out


def test_pulumi_up_while_failed_over_creates_what_it_adds_serving_in_the_active_region() -> None:
    topology = load(EXAMPLE_SPEC)
    run = run_program(topology, SETTINGS["example"](), control=deployed(topology, "us-west-2"))
    assert enabled_in(run) == {
        "mappings": {"us-west-2"},
        "rules": {"us-west-2"},
        "active": {"us-west-2"},
    }
    standby = {
        p.region
        for p in run.of("aws:ssm/parameter:Parameter")
        if p.inputs["name"].endswith("/mode") and unsecret(p.inputs["value"]) == STANDBY
    }
    assert standby == {"us-east-1", "eu-west-1"}


def test_a_first_deployment_serves_in_the_primary_and_pins_what_cannot_change(
    runs: dict[str, Run],
) -> None:
    run = runs["example"]  # no control table yet
    assert enabled_in(run)["mappings"] == {run.topology.regions.primary}
    (item,) = run.of("aws:dynamodb/tableItem:TableItem")
    pinned = json.loads(json.loads(item.inputs["item"])["pins"]["S"])
    assert pinned == {
        "control": {"replicas": ["us-east-1", "us-west-2"], "witness": "us-east-2"},
        "health_checks": {"dns": 10},
    }
    # the next deployment of the same topology reads its own pins and goes through
    again = run_program(run.topology, SETTINGS["example"](), control=deployed(run.topology))
    assert again.of("aws:dynamodb/tableItem:TableItem")


def test_a_failover_in_progress_stops_the_deployment_with_one_line() -> None:
    topology = load(EXAMPLE_SPEC)
    control = deployed(topology, "us-west-2", owner="watcher@us-west-2/abc", expires_at=4e9)
    with pytest.raises(DeployedError) as info:
        run_program(topology, SETTINGS["example"](), control=control)
    assert "\n" not in str(info.value)
    assert "failover is in progress" in str(info.value) and "watcher@us-west-2/abc" in str(
        info.value
    )


def test_a_control_table_without_a_majority_stops_the_deployment_with_one_line() -> None:
    """A fault, not a first deployment: the table exists but cannot answer who serves."""
    with pytest.raises(DeployedError) as info:
        run_program(
            load(EXAMPLE_SPEC),
            SETTINGS["example"](),
            control_error="reading DynamoDB Table Item: operation error DynamoDB: GetItem, "
            "https response error StatusCode: 500, InternalServerError\nmore",
        )
    message = str(info.value)
    assert "\n" not in message and message.startswith("control: cannot read the control table")
    assert "InternalServerError" in message


def test_changing_a_health_checks_interval_is_refused_it_would_drop_a_fence() -> None:
    """Route 53 replaces a check whose interval changes (ForceNew): the new one not inverted."""
    topology = load(EXAMPLE_SPEC)
    control = deployed(topology)
    old = json.loads(control[HOME][contract.MANIFEST_ITEM]["pins"]["S"])
    old["health_checks"]["dns"] = 30
    control[HOME][contract.MANIFEST_ITEM]["pins"]["S"] = json.dumps(old)
    with pytest.raises(DeployedError) as info:
        run_program(topology, SETTINGS["example"](), control=control)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("components.dns.health_check.interval: is 30 s as deployed")


def test_control_regions_that_move_when_a_region_is_added_are_refused() -> None:
    """us-east-2, the witness, added as a standby would make three replicas: impossible."""
    topology = load(EXAMPLE_SPEC)
    control = deployed(topology)
    grown = topology.model_validate(
        topology.model_dump()
        | {"regions": {"primary": "us-east-1", "standby": ["us-west-2", "eu-west-1", "us-east-2"]}}
    )
    assert grown.control_regions.witness is None  # what the topology alone would now deploy
    with pytest.raises(DeployedError) as info:
        run_program(grown, SETTINGS["example"](), control=control)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "control: the control table is deployed in us-east-1, us-west-2, witness us-east-2"
    )
