"""Who hears an alarm, and the alarms that are not a function's: queues, tables, APIs.

Used by :func:`infra.program.deploy`: :func:`alarm_topic` before the regions (every alarm of a
region notifies its topic, whose ARN the manifest carries; the topic is encrypted with a key of
its own that CloudWatch may use), :class:`RegionAlarms` after them,
once per region: the depth of every dead-letter queue (anything there failed and waits for
someone), each table's replication latency towards every other region (above the table's
``max_lag_seconds``, a failover would lose writes), and each API's 5xx answers.

These alarms notify; they are not in the manifest's ``alarms`` lists, which the controller's
health reads, because a message in a dead-letter queue does not make a region unfit to serve.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from controller.contract import fit
from controller.topology import Kind, Topology
from infra import aws
from infra.common import Account
from infra.regional import Region

API_5XX_THRESHOLD = 5.0  # 5xx answers in 5 minutes
LAG_PERIODS = 3  # minutes above the bound before the replication alarm fires
#: What CloudWatch needs of the topic's key to publish an alarm to an encrypted topic (the
#: AWS-managed ``alias/aws/sns`` key's policy grants it to no service, and cannot be edited).
PUBLISHER_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
#: What the account (through its IAM policies: the deployer) does with the key: manage it, never
#: use it. PutKeyPolicy must be among them or KMS refuses the policy (lockout safety check).
ADMIN_KEY_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
)


def alarm_topic(
    topology: Topology,
    region: str,
    account: Account,
    opts: pulumi.ResourceOptions | None = None,
) -> aws.sns.Topic:
    """The region's alarm topic, encrypted; subscribe the on-call to it (email, chat, pager).

    Encrypted with a customer-managed key of its own, whose policy lets CloudWatch alarms of
    this account publish: with the AWS-managed ``alias/aws/sns`` no alarm is ever delivered.
    ``opts`` carries the region's provider (and whatever else the caller sets, e.g. protect).
    """
    name = fit(f"{topology.prefix}-alarms-{region}", 256)
    key = aws.kms.Key(
        f"{name}-key",
        description=f"{topology.prefix}: encrypts the alarm topic in {region}",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=topic_key_policy(account),
        opts=opts,
    )
    return aws.sns.Topic(name, name=name, kms_master_key_id=key.arn, opts=opts)


def topic_key_policy(account: Account) -> pulumi.Output[str]:
    """The alarm topic key's policy: the account administers it, CloudWatch publishes with it.

    In a key policy ``Resource: "*"`` is the key itself. CloudWatch may use it only on behalf of
    this account's alarms (``aws:SourceAccount``: the confused-deputy guard).
    """
    root = pulumi.Output.concat("arn:", account.partition, ":iam::", account.account_id, ":root")
    document = pulumi.Output.all(root, account.account_id).apply(
        lambda v: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersTheKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": v[0]},
                    "Action": sorted(ADMIN_KEY_ACTIONS),
                    "Resource": "*",
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": sorted(PUBLISHER_KEY_ACTIONS),
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": v[1]}},
                },
            ],
        }
    )
    return document.apply(lambda d: json.dumps(d, sort_keys=True))


@dataclass(frozen=True)
class RegionAlarmsArgs:
    """One deployed region, the global tables it replicates, and the topic its alarms notify."""

    topology: Topology
    region: Region
    tables: Mapping[str, Any]
    topic: aws.sns.Topic


class RegionAlarms(pulumi.ComponentResource):
    """Dead-letter depth, replication latency and API 5xx alarms of one region.

    The region's provider comes in ``opts``; every alarm is a child and inherits it.
    """

    def __init__(
        self, name: str, args: RegionAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        topology, region, tables, topic = args.topology, args.region, args.tables, args.topic
        where = region.args.region
        super().__init__("failover:infra:RegionAlarms", name, None, opts)
        self.topic = topic
        self.alarms: list[aws.cloudwatch.MetricAlarm] = []
        for i, queue in enumerate(region.dead_letters):
            self._alarm(
                f"{topology.prefix}-dead-letters-{i}-{where}",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "Maximum",
                {"QueueName": queue.name},
                1.0,
                1,
                300,
                pulumi.Output.concat("messages waiting in ", queue.name),
            )
        for name, spec in topology.of_kind(Kind.TABLE):
            for other in topology.regions.all:
                if other == where:
                    continue
                # named for the region it lives in only (the receiving one without dashes)
                to = other.replace("-", "")
                self._alarm(
                    f"{topology.prefix}-{name}-lag-to-{to}-{where}",
                    "AWS/DynamoDB",
                    "ReplicationLatency",
                    "Average",
                    {"TableName": tables[name].name, "ReceivingRegion": other},
                    spec.max_lag_seconds * 1000,
                    LAG_PERIODS,
                    60,
                    f"{name}: replication {where} -> {other} above {spec.max_lag_seconds:g} s",
                )
        for name, api in region.apis.items():
            self._alarm(
                f"{topology.prefix}-{name}-5xx-{where}",
                "AWS/ApiGateway",
                "5xx",
                "Sum",
                {"ApiId": api.api.id, "Stage": "$default"},
                API_5XX_THRESHOLD,
                1,
                300,
                f"{name} in {where}: 5xx answers",
            )
        self.register_outputs({"topic": topic.arn})

    def _alarm(
        self,
        name: str,
        namespace: str,
        metric: str,
        stat: str,
        dimensions: dict[str, pulumi.Input[str]],
        threshold: float,
        periods: int,
        period: int,
        description: pulumi.Input[str],
    ) -> None:
        physical = fit(name, 255)
        self.alarms.append(
            aws.cloudwatch.MetricAlarm(
                physical,
                name=physical,
                namespace=namespace,
                metric_name=metric,
                statistic=stat,
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=threshold,
                evaluation_periods=periods,
                period=period,
                treat_missing_data="notBreaching",
                dimensions=dimensions,
                alarm_description=description,
                alarm_actions=[self.topic.arn],
                ok_actions=[self.topic.arn],
                opts=pulumi.ResourceOptions(parent=self),
            )
        )
