"""Alarms that notify someone, and only where their state means trouble.

A quiet worker is not a failed region: only traffic-facing functions have a low-invocations
alarm (checked in ``test_infra_operations.py``). Every alarm notifies its region's SNS topic,
whose ARN the manifest carries; dead-letter queues, table replication latency and API 5xx have
alarms of their own.
"""

from __future__ import annotations

import json

import botocore.session
from infra_mocks import ACCOUNT, Run

from controller.contract import FunctionAlarm
from controller.manifest import Manifest
from controller.spec import Kind

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def topics(run: Run) -> dict[str, str]:
    """region -> its alarm topic's ARN."""
    out = {}
    for topic in run.of("aws:sns/topic:Topic"):
        assert topic.region not in out, "one topic per region"
        out[topic.region] = topic.state["arn"]
    return out


def test_every_alarm_notifies_its_regions_topic(run: Run) -> None:
    by_region = topics(run)
    assert set(by_region) == set(run.topology.regions.all)
    alarms = run.of(ALARM)
    assert alarms
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [by_region[alarm.region]], alarm.name
        assert alarm.inputs["okActions"] == [by_region[alarm.region]], alarm.name


def test_alarm_topics_use_a_key_whose_policy_lets_cloudwatch_publish(run: Run) -> None:
    """The AWS-managed ``alias/aws/sns`` key refuses CloudWatch: no alarm would be delivered."""
    keys = {k.state["arn"]: k for k in run.of("aws:kms/key:Key")}
    kms = botocore.session.get_session().get_service_model("kms").operation_names
    for topic in run.of("aws:sns/topic:Topic"):
        key = keys.get(topic.inputs["kmsMasterKeyId"])
        assert key is not None, (topic.name, topic.inputs["kmsMasterKeyId"])
        assert key.region == topic.region and key.inputs["enableKeyRotation"] is True
        policy = json.loads(key.inputs["policy"])
        by_principal = {
            json.dumps(st["Principal"], sort_keys=True): st for st in policy["Statement"]
        }
        cloudwatch = by_principal[json.dumps({"Service": "cloudwatch.amazonaws.com"})]
        assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
        assert cloudwatch["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
        root = by_principal[json.dumps({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})]
        # without PutKeyPolicy for the account, KMS refuses the policy (lockout safety check)
        assert "kms:PutKeyPolicy" in root["Action"]
        assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"} & set(root["Action"])
        for st in policy["Statement"]:
            assert st["Effect"] == "Allow"
            for action in st["Action"]:
                assert "*" not in action, action
                assert action.removeprefix("kms:") in kms, f"{action} is no KMS operation"


def test_the_manifest_names_each_regions_topic(run: Run) -> None:
    manifest = Manifest.model_validate(run.manifest)
    for region, arn in topics(run).items():
        assert manifest.regions[region].alarm_topic == arn


def test_every_dead_letter_queue_has_a_depth_alarm(run: Run) -> None:
    depth = {
        (a.region, a.inputs["dimensions"]["QueueName"])
        for a in run.of(ALARM)
        if a.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
    }
    dead = {
        (q.region, q.inputs["name"])
        for q in run.of("aws:sqs/queue:Queue")
        if q.inputs["name"].endswith(("-dlq", "-failures"))
    }
    assert dead and depth == dead


def test_replication_latency_is_watched_per_region_pair(run: Run) -> None:
    t = run.topology
    lag = {
        (
            a.region,
            a.inputs["dimensions"]["TableName"],
            a.inputs["dimensions"]["ReceivingRegion"],
        ): a.inputs
        for a in run.of(ALARM)
        if a.inputs["metricName"] == "ReplicationLatency"
    }
    tables = list(t.of_kind(Kind.TABLE))
    assert len(lag) == len(tables) * len(t.regions.all) * (len(t.regions.all) - 1)
    for name, spec in tables:
        physical = t.physical_name(name, t.regions.primary)
        for source in t.regions.all:
            for target in t.regions.all:
                if source != target:
                    alarm = lag[(source, physical, target)]
                    assert alarm["threshold"] == spec.max_lag_seconds * 1000  # milliseconds


def test_every_api_has_a_5xx_alarm_in_every_region(run: Run) -> None:
    apis = {(a.region, a.id) for a in run.of("aws:apigatewayv2/api:Api")}
    errors = {
        (a.region, a.inputs["dimensions"]["ApiId"])
        for a in run.of(ALARM)
        if a.inputs["metricName"] == "5xx"
    }
    assert apis and errors == apis


def test_function_alarms_are_named_for_what_the_controller_reads_them_as(run: Run) -> None:
    """The controller tells a fenced function's throttles and silence (expected) from its errors
    (a fault) by the alarm's name alone (issue 26, item 1): each name must end in the kind
    whose metric the alarm watches, and the manifest must list it where health reads it."""
    measures = {
        FunctionAlarm.ERRORS_HIGH: "Errors",
        FunctionAlarm.THROTTLES_HIGH: "Throttles",
        FunctionAlarm.DURATION_HIGH: "Duration",
        FunctionAlarm.INVOCATIONS_LOW: "Invocations",
    }
    manifest = Manifest.model_validate(run.manifest)
    listed = {
        (region, alarm)
        for region, part in manifest.regions.items()
        for ref in part.components.values()
        for alarm in ref.alarms
    }
    lambda_alarms = [a for a in run.of(ALARM) if a.inputs["namespace"] == "AWS/Lambda"]
    assert {FunctionAlarm.of(a.inputs["name"]) for a in lambda_alarms} == set(FunctionAlarm)
    for alarm in lambda_alarms:
        kind = FunctionAlarm.of(alarm.inputs["name"])
        assert kind is not None and alarm.inputs["metricName"] == measures[kind], alarm.name
        assert (alarm.region, alarm.inputs["name"]) in listed, alarm.name
