"""An EventBridge custom event bus and its rules in one region: the deployer of kind ``bus``.

Called by :class:`infra.regional.Region` (the kind's model names :func:`deploy`) once per bus per
region, after the queues its rules deliver to. The rules are enabled only in the primary region;
from then on their state belongs to the controller (fencing disables them), so ``pulumi up``
ignores it. Each target queue gets a policy that lets EventBridge send to it from these rules
only; a function that depends on the bus may ``events:PutEvents`` on it, nothing else.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from controller.spec import BusSpec, Kind
from infra.common import InfraError, Ref

if TYPE_CHECKING:
    from infra.regional import Region

#: What a function that depends on a bus may do to it.
BUS_PUBLISH = ("events:PutEvents",)


def deploy(region: Region, name: str, spec: BusSpec) -> None:
    """The bus, its rules and their targets in ``region``; the manifest entry and the Ref."""
    args = region.args
    _check_targets(region, name, spec)
    physical = args.physical(name)
    bus = aws.cloudwatch.EventBus(physical, name=physical, opts=region.child())
    senders: dict[str, list[pulumi.Output[str]]] = {}
    for rule_key, rule in spec.rules.items():
        rule_name = BusSpec.rule_name(physical, rule_key)
        resource = aws.cloudwatch.EventRule(
            rule_name, name=rule_name, event_bus_name=bus.name,
            event_pattern=json.dumps(rule.pattern, sort_keys=True),
            state="ENABLED" if args.primary else "DISABLED",
            description=f"{name}/{rule_key} in {args.region}: enabled only where {name} is active",
            opts=region.child(ignore_changes=["state"]))
        queue = region.refs[rule.target]
        aws.cloudwatch.EventTarget(
            f"{rule_name}-target", rule=resource.name, event_bus_name=bus.name,
            target_id=rule.target, arn=queue.arn, opts=region.child())
        region.rules[f"{name}/{rule_key}"] = resource
        senders.setdefault(rule.target, []).append(resource.arn)
    for target, rule_arns in senders.items():
        queue = region.refs[target]
        if queue.url is None:
            raise InfraError(name, f"target {target!r} has no queue URL")
        aws.sqs.QueuePolicy(f"{physical}-{target}-policy", queue_url=queue.url,
                            policy=_queue_policy(queue.arn, rule_arns), opts=region.child())
    region.add(name, Ref(kind="bus", name=bus.name, arn=bus.arn, use_actions=BUS_PUBLISH))


def _check_targets(region: Region, name: str, spec: BusSpec) -> None:
    """Every target is a queue deployed here, and no other bus sets the same queue's policy."""
    topology = region.args.topology
    for rule_key, rule in spec.rules.items():
        ref = region.refs.get(rule.target)
        if ref is None or ref.kind != Kind.QUEUE:
            raise InfraError(name, f"rule {rule_key!r}: target {rule.target!r} is not a queue")
        others = [other for other, comp in topology.of_kind(Kind.BUS)
                  if other != name and rule.target in comp.implied_dependencies()]
        if others:
            raise InfraError(name, f"queue {rule.target!r} is also the target of bus "
                                   f"{others[0]!r}: one bus per target queue")


def _queue_policy(queue_arn: pulumi.Input[str],
                  rule_arns: list[pulumi.Output[str]]) -> pulumi.Output[str]:
    """EventBridge may send to the queue, from these rules only."""
    def render(values: list[Any]) -> str:
        arn, *rules = values
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rules}}}]}, sort_keys=True)

    return pulumi.Output.all(queue_arn, *rule_arns).apply(render)
