"""The event bus kind under mocks: a bus and its rules per region, enabled only in the primary,
delivering to their queue in the same region, which lets EventBridge send from those rules only;
a function that depends on the bus may publish on it and nothing more; the controller may switch
the rules; the manifest names the bus in every region."""

from __future__ import annotations

import fnmatch
import json

from infra_mocks import Run
from test_infra_security import function_policy, policies, statements

from controller.spec import BusSpec, Kind


def buses(run: Run) -> list[tuple[str, BusSpec]]:
    found = list(run.topology.of_kind(Kind.BUS))
    assert found, "both test topologies have a bus"
    return found


def test_each_bus_and_its_rules_exist_in_every_region_enabled_only_in_the_primary(run: Run) -> None:
    t = run.topology
    made = {(r.inputs["name"], r.region) for r in run.of("aws:cloudwatch/eventBus:EventBus")}
    rules = {
        r.inputs["name"]: r
        for r in run.of("aws:cloudwatch/eventRule:EventRule")
        if "eventBusName" in r.inputs
    }
    for name, spec in buses(run):
        for region in t.regions.all:
            physical = t.physical_name(name, region)
            assert (physical, region) in made
            for key, rule in spec.rules.items():
                res = rules[BusSpec.rule_name(physical, key)]
                assert res.region == region and res.inputs["eventBusName"] == physical
                assert json.loads(res.inputs["eventPattern"]) == rule.pattern
                assert res.inputs["state"] == (
                    "ENABLED" if region == t.regions.primary else "DISABLED"
                )


def test_rules_deliver_to_their_queue_in_the_same_region_and_only_they_may_send(run: Run) -> None:
    t = run.topology
    queues = {(q.inputs["name"], q.region): q.state["arn"] for q in run.of("aws:sqs/queue:Queue")}
    targets = {
        x.inputs["rule"]: x
        for x in run.of("aws:cloudwatch/eventTarget:EventTarget")
        if "eventBusName" in x.inputs
    }
    queue_policies = {
        p.inputs["queueUrl"]: json.loads(p.inputs["policy"])
        for p in run.of("aws:sqs/queuePolicy:QueuePolicy")
    }
    rule_arns = {
        r.inputs["name"]: r.state["arn"] for r in run.of("aws:cloudwatch/eventRule:EventRule")
    }
    for name, spec in buses(run):
        for region in t.regions.all:
            physical = t.physical_name(name, region)
            for key, rule in spec.rules.items():
                queue_arn = queues[(t.physical_name(rule.target, region), region)]
                rule_name = BusSpec.rule_name(physical, key)
                assert targets[rule_name].inputs["arn"] == queue_arn
                url = (
                    f"https://sqs.{region}.amazonaws.com/123456789012/"
                    f"{t.physical_name(rule.target, region)}"
                )
                (grant,) = queue_policies[url]["Statement"]
                assert grant["Principal"] == {"Service": "events.amazonaws.com"}
                assert grant["Action"] == "sqs:SendMessage" and grant["Resource"] == queue_arn
                senders = grant["Condition"]["ArnEquals"]["aws:SourceArn"]
                assert rule_arns[rule_name] in senders
                assert all(f":{region}:" in arn for arn in senders)


def test_only_functions_that_depend_on_a_bus_may_publish_and_only_on_it(run: Run) -> None:
    t = run.topology
    names = {name for name, _ in buses(run)}
    for function, spec in t.of_kind(Kind.FUNCTION):
        for region in t.regions.all:
            granted = function_policy(run, function, region).get("events:PutEvents", [])
            wanted = sorted(
                f"arn:aws:events:{region}:123456789012:event-bus/{t.physical_name(bus, region)}"
                for bus in names
                if bus in spec.depends_on
            )
            assert sorted(granted) == wanted, (function, region)


def test_the_controller_may_switch_every_bus_rule(run: Run) -> None:
    t = run.topology
    switchable: set[str] = set()
    for _, doc in policies(run):
        for actions, resources in statements(doc):
            if {"events:EnableRule", "events:DisableRule", "events:DescribeRule"} <= set(actions):
                switchable.update(resources)
    for name, spec in buses(run):
        for region in t.regions.all:
            physical = t.physical_name(name, region)
            for key in spec.rules:
                arn = (
                    f"arn:aws:events:{region}:123456789012:rule/{physical}/"
                    f"{BusSpec.rule_name(physical, key)}"
                )
                # IAM's * matches any characters, as fnmatch's does
                assert any(fnmatch.fnmatchcase(arn, r) for r in switchable), arn


def test_the_manifest_names_each_bus_in_every_region(run: Run) -> None:
    t = run.topology
    for name, _ in buses(run):
        for region in t.regions.all:
            entry = run.manifest["regions"][region]["components"][name]
            assert entry["kind"] == "bus" and entry["name"] == t.physical_name(name, region)
            assert entry["arn"].endswith(f":event-bus/{entry['name']}")
