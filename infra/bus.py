"""An EventBridge custom event bus and its rules in one region: the deployer of kind ``bus``.

Called by :class:`infra.regional.Region` (the kind's model names :func:`deploy`) once per bus per
region, after the queues its rules deliver to; builds a :class:`Bus` component. The rules are
enabled only in the primary region; from then on their state belongs to the controller (fencing
disables them), so ``pulumi up`` ignores it. Each target queue gets a policy that lets
EventBridge send to it from these rules only; a function that depends on the bus may
``events:PutEvents`` on it, nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi

from controller.topology import Kind
from controller.topology.kinds import BusSpec
from infra import aws
from infra.common import InfraError, Ref

if TYPE_CHECKING:
    from infra.regional import Region

#: What a function that depends on a bus may do to it.
BUS_PUBLISH = ("events:PutEvents",)


@dataclass(frozen=True)
class BusArgs:
    """One bus component in one region: its spec, its AWS name, the queues its rules feed."""

    component: str
    spec: BusSpec
    region: str
    physical: str
    # Rules enabled (this region serves) or created disabled.
    enabled: bool
    # Each rule target's queue in this region, by component name.
    targets: Mapping[str, Ref]


class Bus(pulumi.ComponentResource):
    """An event bus with its rules, their targets and the target queues' policies.

    Pulumi's component shape: ``opts`` (the region's provider, ``protect``, ``aliases``)
    reaches every child, named from ``args``, never from ``name``.
    """

    def __init__(
        self, name: str, args: BusArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("failover:infra:Bus", name, None, opts)
        component, physical = args.component, args.physical
        self.bus = aws.cloudwatch.EventBus(
            physical, name=physical, opts=pulumi.ResourceOptions(parent=self)
        )
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        senders: dict[str, list[pulumi.Output[str]]] = {}
        for rule_key, rule in args.spec.rules.items():
            rule_name = BusSpec.rule_name(physical, rule_key)
            resource = aws.cloudwatch.EventRule(
                rule_name,
                name=rule_name,
                event_bus_name=self.bus.name,
                event_pattern=json.dumps(rule.pattern, sort_keys=True),
                state="ENABLED" if args.enabled else "DISABLED",
                description=(
                    f"{component}/{rule_key} in {args.region}: enabled only where "
                    f"{component} is active"
                ),
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["state"]),
            )
            queue = args.targets[rule.target]
            aws.cloudwatch.EventTarget(
                f"{rule_name}-target",
                rule=resource.name,
                event_bus_name=self.bus.name,
                target_id=rule.target,
                arn=queue.arn,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.rules[rule_key] = resource
            senders.setdefault(rule.target, []).append(resource.arn)
        for target, rule_arns in senders.items():
            queue = args.targets[target]
            if queue.url is None:
                raise InfraError(component, f"target {target!r} has no queue URL")
            aws.sqs.QueuePolicy(
                f"{physical}-{target}-policy",
                queue_url=queue.url,
                policy=_queue_policy(queue.arn, rule_arns),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"bus": self.bus.arn})


def deploy(region: Region, name: str, spec: BusSpec) -> None:
    """The bus of ``name`` in ``region`` (a :class:`Bus`); its rules, manifest entry and Ref."""
    args = region.args
    _check_targets(region, name, spec)
    physical = args.physical(name)
    bus = Bus(
        physical,
        BusArgs(
            component=name,
            spec=spec,
            region=args.region,
            physical=physical,
            enabled=args.serving,
            targets={r.target: region.refs[r.target] for r in spec.rules.values()},
        ),
        region.child(),
    )
    for rule_key, rule in bus.rules.items():
        region.rules[f"{name}/{rule_key}"] = rule
    region.add(name, Ref(kind="bus", name=bus.bus.name, arn=bus.bus.arn, use_actions=BUS_PUBLISH))


def _check_targets(region: Region, name: str, spec: BusSpec) -> None:
    """Every target is a queue deployed here, and no other bus sets the same queue's policy."""
    topology = region.args.topology
    for rule_key, rule in spec.rules.items():
        ref = region.refs.get(rule.target)
        if ref is None or ref.kind != Kind.QUEUE:
            raise InfraError(name, f"rule {rule_key!r}: target {rule.target!r} is not a queue")
        others = [
            other
            for other, comp in topology.of_kind(Kind.BUS)
            if other != name and rule.target in comp.implied_dependencies()
        ]
        if others:
            raise InfraError(
                name,
                f"queue {rule.target!r} is also the target of bus "
                f"{others[0]!r}: one bus per target queue",
            )


def _queue_policy(
    queue_arn: pulumi.Input[str], rule_arns: list[pulumi.Output[str]]
) -> pulumi.Output[str]:
    """EventBridge may send to the queue, from these rules only."""

    def render(values: list[Any]) -> str:
        arn, *rules = values
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": rules}},
                    }
                ],
            },
            sort_keys=True,
        )

    return pulumi.Output.all(queue_arn, *rule_arns).apply(render)
