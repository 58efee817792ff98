"""What creating each resource type of the Pulumi program is: the AWS calls pulumi-aws makes.

Called by :mod:`sandbox.deploy.engine` for every resource the program registers. One function
per resource type (:data:`MAPPING`), named by its type token; it makes the calls the Terraform
AWS provider makes to create that resource (the create call, then the calls for the settings the
create call does not take), sends them to the emulator server the resource's provider names, and
answers with what the emulator answered (ids, ARNs, URLs): those are the resource's outputs.

A function's keyword parameters are the inputs it maps (``visibility_timeout_seconds`` is the
input ``visibilityTimeoutSeconds``). An input it neither maps nor lists in ``ignored`` (with the
reason the emulator does without it) is refused, as is a type with no function: one line naming
the type, the resource and the input. A new type is one function here.

What AWS does on its own across regions when a resource asks for it (a global table's replicas),
the function does in each region's server, as AWS would. Where a resource is created, and what
the provider does around its calls (retries, unique ids), is :mod:`sandbox.deploy.at`.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import botocore.exceptions
from pulumi.runtime import rpc

from sandbox.deploy.at import (
    ACCOUNT,
    At,
    InvokeFailedError,
    autoname,
    function_lock,
    pairs,
    retrying,
    unique,
)

TAGS = "tags are not read by the controller nor by the sandbox"
#: Provider settings the engine reads (region, endpoints) or that only matter to a real client.
PROVIDER_INPUTS = {
    "region": "",
    "endpoints": "",
    "defaultTags": TAGS,
    "skipCredentialsValidation": "the emulator takes any credentials",
    "skipRequestingAccountId": "the account is moto's, answered by getCallerIdentity",
    "s3UsePathStyle": "the sandbox's S3 calls are path-style anyway",
    "skipRegionValidation": "regions are the topology's",
    "version": "the provider plugin's version: no plugin runs here",
}

Created = tuple[str, dict[str, Any]]
F = TypeVar("F", bound=Callable[..., Created])


@dataclass(frozen=True)
class Mapped:
    """One resource type's function and the inputs it takes or deliberately ignores."""

    fn: Callable[..., Created]
    known: frozenset[str]
    ignored: Mapping[str, str]


MAPPING: dict[str, Mapped] = {}


def camel(name: str) -> str:
    """A parameter name as the program's input name.

    >>> camel("visibility_timeout_seconds"), camel("type_")
    ('visibilityTimeoutSeconds', 'type')
    """
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def creates(typ: str, ignored: Mapping[str, str] | None = None) -> Callable[[F], F]:
    """Register ``fn`` as what creating a resource of ``typ`` is."""

    def register(fn: F) -> F:
        params = list(inspect.signature(fn).parameters)[1:]
        MAPPING[typ] = Mapped(fn, frozenset(camel(p) for p in params), dict(ignored or {}))
        return fn

    return register


def create(at: At, inputs: Mapping[str, Any]) -> Created:
    """Create one resource of ``at.typ`` with ``inputs`` (the program's, camelCase).

    Raises
    ------
    RefusedError
        The type or one of its inputs is not mapped; nothing was created.
    """
    mapped = MAPPING.get(at.typ)
    if mapped is None:
        raise at.refuse("no mapping to the emulator for this resource type")
    given = {k: plain(v) for k, v in inputs.items()}
    for key in given:
        if key not in mapped.known and key not in mapped.ignored:
            raise at.refuse(
                f"input {key!r} is not mapped to the emulator; map it or list it as ignored"
            )
    args = {_snake(k, mapped.fn): v for k, v in given.items() if k in mapped.known}
    return mapped.fn(at, **args)


def plain(value: Any) -> Any:
    """An input without Pulumi's secret wrapping (the emulator holds the value as AWS would)."""
    if rpc.is_rpc_secret(value):
        return plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _snake(key: str, fn: Callable[..., Created]) -> str:
    params = inspect.signature(fn).parameters
    name = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
    return name if name in params else f"{name}_"


# -- SSM, SQS, Kinesis, KMS, SNS -------------------------------------------------------------------


@creates("aws:ssm/parameter:Parameter", ignored={"tags": TAGS})
def parameter(
    at: At, *, name: str, type_: str, value: str, description: str = "", tier: str = "Standard"
) -> Created:
    """PutParameter, then GetParameter for its ARN and version."""
    ssm = at.client("ssm")
    ssm.put_parameter(
        Name=name, Type=type_, Value=value, Description=description, Tier=tier, Overwrite=False
    )
    got = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    out = {"arn": got["ARN"], "version": got["Version"], "name": name, "type": type_}
    if type_ != "SecureString":
        out["insecureValue"] = value
    return name, out


@creates("aws:sqs/queue:Queue", ignored={"tags": TAGS})
def queue(
    at: At,
    *,
    name: str,
    sqs_managed_sse_enabled: bool | None = None,
    visibility_timeout_seconds: float = 30,
    message_retention_seconds: float = 345600,
    redrive_policy: str | None = None,
    policy: str | None = None,
) -> Created:
    """CreateQueue with its attributes; its URL is its id."""
    sqs = at.client("sqs")
    attributes = {
        "VisibilityTimeout": str(int(visibility_timeout_seconds)),
        "MessageRetentionPeriod": str(int(message_retention_seconds)),
    }
    if sqs_managed_sse_enabled is not None:
        attributes["SqsManagedSseEnabled"] = str(bool(sqs_managed_sse_enabled)).lower()
    if redrive_policy:
        attributes["RedrivePolicy"] = redrive_policy
    if policy:
        attributes["Policy"] = policy
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, {"arn": got["QueueArn"], "url": url, "name": name}


@creates("aws:sqs/queuePolicy:QueuePolicy")
def queue_policy(at: At, *, queue_url: str, policy: str) -> Created:
    """SetQueueAttributes with the policy."""
    at.client("sqs").set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
    return queue_url, {}


@creates("aws:kinesis/stream:Stream", ignored={"tags": TAGS})
def stream(
    at: At,
    *,
    name: str,
    shard_count: float,
    retention_period: float = 24,
    encryption_type: str = "NONE",
    kms_key_id: str | None = None,
) -> Created:
    """CreateStream; a longer retention and KMS encryption are calls of their own."""
    kinesis = at.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=int(shard_count))
    if int(retention_period) > 24:
        kinesis.increase_stream_retention_period(
            StreamName=name, RetentionPeriodHours=int(retention_period)
        )
    if encryption_type == "KMS":
        kinesis.start_stream_encryption(
            StreamName=name, EncryptionType="KMS", KeyId=kms_key_id or "alias/aws/kinesis"
        )
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    return arn, {"arn": arn, "name": name}


@creates("aws:kms/key:Key", ignored={"tags": TAGS})
def key(
    at: At,
    *,
    description: str = "",
    policy: str | None = None,
    enable_key_rotation: bool = False,
    deletion_window_in_days: float | None = None,
    is_enabled: bool = True,
    bypass_policy_lockout_safety_check: bool = False,
) -> Created:
    """CreateKey (a symmetric encryption key, the provider's defaults), then EnableKeyRotation
    and DisableKey as asked.

    KMS refuses a policy that would not let the caller change it again (its lockout safety
    check: ``MalformedPolicyDocumentException``; the provider retries it while IAM propagates,
    then fails); moto checks nothing, so the check is made here. ``deletion_window_in_days`` is
    checked as the provider's schema checks it (7 to 30) and used only by ScheduleKeyDeletion
    when the key is destroyed, which the sandbox never does (it is thrown away whole).
    """
    if deletion_window_in_days is not None and not 7 <= int(deletion_window_in_days) <= 30:
        raise at.refuse(
            f"deletionWindowInDays is {deletion_window_in_days}: expected 7 to 30 (the provider's)"
        )
    if policy and not bypass_policy_lockout_safety_check and not _lets_account_put(policy):
        raise at.refuse(
            "CreateKey: MalformedPolicyDocumentException: The new key policy will not allow you "
            "to update the key policy in the future."
        )
    kms = at.client("kms")
    request: dict[str, Any] = {
        "Description": description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "BypassPolicyLockoutSafetyCheck": bool(bypass_policy_lockout_safety_check),
    }
    if policy:
        request["Policy"] = policy
    made = kms.create_key(**request)["KeyMetadata"]
    key_id = str(made["KeyId"])
    if enable_key_rotation:
        kms.enable_key_rotation(KeyId=key_id)
    if not is_enabled:
        kms.disable_key(KeyId=key_id)
    return key_id, {"arn": made["Arn"], "keyId": key_id}


def _lets_account_put(policy: str) -> bool:
    """Whether a key policy lets this account (its root: IAM decides for every principal of the
    account, the deployer included) call PutKeyPolicy, as KMS's lockout safety check asks."""
    from fnmatch import fnmatchcase

    account = {ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", "*"}
    for statement in _listed(json.loads(policy).get("Statement")):
        if statement.get("Effect") != "Allow" or "Condition" in statement:
            continue
        principal = statement.get("Principal")
        named = {principal} if principal == "*" else set(_listed((principal or {}).get("AWS")))
        actions = _listed(statement.get("Action"))
        if named & account and any(fnmatchcase("kms:PutKeyPolicy", a) for a in actions):
            return True
    return False


def _listed(value: Any) -> list[Any]:
    """A policy element that may be one value or a list, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@creates("aws:sns/topic:Topic", ignored={"tags": TAGS})
def topic(at: At, *, name: str, kms_master_key_id: str | None = None) -> Created:
    """CreateTopic; its ARN is its id."""
    attributes = {"KmsMasterKeyId": kms_master_key_id} if kms_master_key_id else {}
    arn = at.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    return arn, {"arn": arn, "name": name}


# -- DynamoDB ------------------------------------------------------------------------------------


@creates("aws:dynamodb/table:Table", ignored={"tags": TAGS})
def table(
    at: At,
    *,
    name: str,
    hash_key: str,
    attributes: list[dict[str, str]],
    billing_mode: str = "PROVISIONED",
    range_key: str | None = None,
    stream_enabled: bool = False,
    stream_view_type: str | None = None,
    point_in_time_recovery: dict[str, Any] | None = None,
    server_side_encryption: dict[str, Any] | None = None,
    deletion_protection_enabled: bool = False,
    ttl: dict[str, Any] | None = None,
    replicas: list[dict[str, Any]] | None = None,
    global_table_witness: dict[str, Any] | None = None,
) -> Created:
    """CreateTable, then point-in-time recovery and time to live; then the replicas.

    Replicas of the default (eventual) mode are what AWS makes of ``ReplicaUpdates``: the same
    table in each replica region's server (the sandbox's replicator copies the writes). A
    strongly consistent (MRSC) table is one store behind every replica region (the control
    table, :mod:`sandbox.mrsc`), so it is created once, through the provider's region, and its
    witness holds nothing.
    """
    at.check(attributes, "attributes", "name", "type")
    at.check(point_in_time_recovery, "pointInTimeRecovery", "enabled")
    at.check(server_side_encryption, "serverSideEncryption", "enabled")
    at.check(ttl, "ttl", "attributeName", "enabled")
    at.check(global_table_witness, "globalTableWitness", "regionName")
    at.check(
        replicas or [],
        "replicas",
        "regionName",
        "consistencyMode",
        "pointInTimeRecovery",
        "deletionProtectionEnabled",
        ignored=("propagateTags",),
    )
    keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in attributes
        ],
        "BillingMode": billing_mode,
        "DeletionProtectionEnabled": bool(deletion_protection_enabled),
    }
    if stream_enabled:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream_view_type or "NEW_AND_OLD_IMAGES",
        }
    if server_side_encryption and server_side_encryption.get("enabled"):
        request["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
    strong = any(r.get("consistencyMode") == "STRONG" for r in replicas or [])
    made = _one_table(at, None, request, point_in_time_recovery, ttl)
    out_replicas = []
    for replica in replicas or []:
        region = replica["regionName"]
        there = made if strong else _one_table(at, region, request, replica, ttl)
        out_replicas.append(
            {
                **replica,
                "arn": at.arn("dynamodb", f"table/{name}", region),
                "streamArn": _in_region(there.get("LatestStreamArn", ""), region),
                "streamLabel": there.get("LatestStreamLabel", ""),
            }
        )
    return name, {
        "arn": made["TableArn"],
        "streamArn": made.get("LatestStreamArn", ""),
        "streamLabel": made.get("LatestStreamLabel", ""),
        "replicas": out_replicas,
        "name": name,
    }


def _one_table(
    at: At,
    region: str | None,
    request: Mapping[str, Any],
    recovery: Mapping[str, Any] | None,
    ttl: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One table (or replica) in ``region``'s server, with its backups and time to live."""
    dynamodb = at.client("dynamodb", region)
    made: dict[str, Any] = dynamodb.create_table(**request)["TableDescription"]
    pitr = recovery.get("enabled") if recovery and "enabled" in recovery else recovery
    if pitr:
        dynamodb.update_continuous_backups(
            TableName=request["TableName"],
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    if ttl and ttl.get("enabled"):
        dynamodb.update_time_to_live(
            TableName=request["TableName"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
        )
    return made


def _in_region(arn: str, region: str) -> str:
    """An ARN of the store's table as its replica in ``region`` is named."""
    parts = arn.split(":")
    return ":".join([*parts[:3], region, *parts[4:]]) if len(parts) > 4 else arn


@creates("aws:dynamodb/tableItem:TableItem")
def table_item(
    at: At, *, table_name: str, hash_key: str, item: str, range_key: str | None = None
) -> Created:
    """PutItem of the item (DynamoDB JSON), on condition that it does not exist yet (the
    provider creates an item, it never overwrites one it did not create)."""
    values = json.loads(item)
    at.client("dynamodb").put_item(
        TableName=table_name,
        Item=values,
        ConditionExpression="attribute_not_exists(#hk)",
        ExpressionAttributeNames={"#hk": hash_key},
    )
    key = [table_name, hash_key, json.dumps(values[hash_key])]
    if range_key:
        key += [range_key, json.dumps(values[range_key])]
    return "|".join(key), {}


# -- S3 ------------------------------------------------------------------------------------------


@creates("aws:s3/bucket:Bucket", ignored={"tags": TAGS})
def bucket(
    at: At,
    *,
    bucket: str | None = None,
    bucket_prefix: str | None = None,
    force_destroy: bool = False,
) -> Created:
    """CreateBucket: a fixed name, or the prefix completed with a unique suffix."""
    name = bucket or unique(bucket_prefix or "terraform-")
    request: dict[str, Any] = {"Bucket": name}
    if at.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": at.region}
    at.client("s3").create_bucket(**request)
    return name, {
        "bucket": name,
        "arn": f"arn:aws:s3:::{name}",
        "region": at.region,
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{name}.s3.{at.region}.amazonaws.com",
    }


@creates("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
def bucket_public_access_block(
    at: At,
    *,
    bucket: str,
    block_public_acls: bool = False,
    block_public_policy: bool = False,
    ignore_public_acls: bool = False,
    restrict_public_buckets: bool = False,
) -> Created:
    """PutPublicAccessBlock."""
    at.client("s3").put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": block_public_acls,
            "BlockPublicPolicy": block_public_policy,
            "IgnorePublicAcls": ignore_public_acls,
            "RestrictPublicBuckets": restrict_public_buckets,
        },
    )
    return bucket, {}


@creates("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
def bucket_encryption(at: At, *, bucket: str, rules: list[dict[str, Any]]) -> Created:
    """PutBucketEncryption."""
    at.check(rules, "rules", "applyServerSideEncryptionByDefault", "bucketKeyEnabled")
    out = []
    for rule in rules:
        default = at.check(
            rule.get("applyServerSideEncryptionByDefault") or {},
            "rules.applyServerSideEncryptionByDefault",
            "sseAlgorithm",
            "kmsMasterKeyId",
        )
        by_default = {"SSEAlgorithm": default["sseAlgorithm"]}
        if default.get("kmsMasterKeyId"):
            by_default["KMSMasterKeyID"] = default["kmsMasterKeyId"]
        made: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": by_default}
        if "bucketKeyEnabled" in rule:
            made["BucketKeyEnabled"] = bool(rule["bucketKeyEnabled"])
        out.append(made)
    at.client("s3").put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": out}
    )
    return bucket, {}


@creates("aws:s3/bucketPolicy:BucketPolicy")
def bucket_policy(at: At, *, bucket: str, policy: str) -> Created:
    """PutBucketPolicy."""
    at.client("s3").put_bucket_policy(Bucket=bucket, Policy=policy)
    return bucket, {}


@creates("aws:s3/bucketVersioning:BucketVersioning")
def bucket_versioning(at: At, *, bucket: str, versioning_configuration: dict[str, Any]) -> Created:
    """PutBucketVersioning."""
    at.check(versioning_configuration, "versioningConfiguration", "status", "mfaDelete")
    at.client("s3").put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": versioning_configuration["status"]}
    )
    return bucket, {}


@creates("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
def bucket_replication(at: At, *, bucket: str, role: str, rules: list[dict[str, Any]]) -> Created:
    """PutBucketReplication (the emulator keeps it; it copies no object: see the README)."""
    at.check(
        rules,
        "rules",
        "id",
        "status",
        "priority",
        "filter",
        "deleteMarkerReplication",
        "destination",
    )
    out = []
    for rule in rules:
        destination = at.check(rule["destination"], "rules.destination", "bucket", "storageClass")
        made: dict[str, Any] = {
            "ID": rule["id"],
            "Status": rule["status"],
            "Priority": int(rule.get("priority", 0)),
            "Filter": {"Prefix": (rule.get("filter") or {}).get("prefix", "")},
            "Destination": {
                "Bucket": destination["bucket"],
                "StorageClass": destination.get("storageClass", "STANDARD"),
            },
        }
        if rule.get("deleteMarkerReplication"):
            made["DeleteMarkerReplication"] = {"Status": rule["deleteMarkerReplication"]["status"]}
        out.append(made)
    at.client("s3").put_bucket_replication(
        Bucket=bucket, ReplicationConfiguration={"Role": role, "Rules": out}
    )
    return bucket, {}


# -- IAM -----------------------------------------------------------------------------------------


@creates("aws:iam/role:Role", ignored={"tags": TAGS})
def role(
    at: At, *, name: str, assume_role_policy: str, description: str = "", path: str = "/"
) -> Created:
    """CreateRole."""
    made = at.client("iam").create_role(
        RoleName=name,
        AssumeRolePolicyDocument=assume_role_policy,
        Description=description,
        Path=path,
    )["Role"]
    return name, {"arn": made["Arn"], "uniqueId": made["RoleId"], "name": name}


@creates("aws:iam/rolePolicy:RolePolicy")
def role_policy(at: At, *, role: str, policy: str, name: str | None = None) -> Created:
    """PutRolePolicy (a policy without a name gets Pulumi's auto-name)."""
    policy_name = name or autoname(at)
    at.client("iam").put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=policy)
    return f"{role}:{policy_name}", {"name": policy_name}


@creates("aws:iam/policy:Policy", ignored={"tags": TAGS})
def managed_policy(
    at: At, *, policy: str, name: str | None = None, description: str = "", path: str = "/"
) -> Created:
    """CreatePolicy; its ARN is its id."""
    made = at.client("iam").create_policy(
        PolicyName=name or autoname(at), PolicyDocument=policy, Description=description, Path=path
    )["Policy"]
    return made["Arn"], {
        "arn": made["Arn"],
        "policyId": made["PolicyId"],
        "name": made["PolicyName"],
    }


@creates("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def role_policy_attachment(at: At, *, role: str, policy_arn: str) -> Created:
    """AttachRolePolicy."""
    at.client("iam").attach_role_policy(RoleName=role, PolicyArn=policy_arn)
    return unique(f"{role}-"), {}


# -- CloudWatch, EventBridge ---------------------------------------------------------------------


@creates("aws:cloudwatch/logGroup:LogGroup", ignored={"tags": TAGS})
def log_group(at: At, *, name: str, retention_in_days: float = 0) -> Created:
    """CreateLogGroup, then PutRetentionPolicy."""
    logs = at.client("logs")
    logs.create_log_group(logGroupName=name)
    if retention_in_days:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(retention_in_days))
    return name, {"arn": at.arn("logs", f"log-group:{name}"), "name": name}


@creates("aws:cloudwatch/metricAlarm:MetricAlarm", ignored={"tags": TAGS})
def metric_alarm(
    at: At,
    *,
    name: str,
    comparison_operator: str,
    evaluation_periods: float,
    metric_name: str,
    namespace: str,
    period: float,
    statistic: str,
    threshold: float,
    dimensions: dict[str, str] | None = None,
    treat_missing_data: str = "missing",
    datapoints_to_alarm: float | None = None,
    alarm_actions: list[str] | None = None,
    ok_actions: list[str] | None = None,
    alarm_description: str = "",
) -> Created:
    """PutMetricAlarm, then its ARN read back."""
    cloudwatch = at.client("cloudwatch")
    request: dict[str, Any] = {
        "AlarmName": name,
        "ComparisonOperator": comparison_operator,
        "EvaluationPeriods": int(evaluation_periods),
        "MetricName": metric_name,
        "Namespace": namespace,
        "Period": int(period),
        "Statistic": statistic,
        "Threshold": float(threshold),
        "Dimensions": pairs(dimensions),
        "TreatMissingData": treat_missing_data,
        "AlarmActions": alarm_actions or [],
        "OKActions": ok_actions or [],
        "AlarmDescription": alarm_description,
        "ActionsEnabled": True,
    }
    if datapoints_to_alarm is not None:
        request["DatapointsToAlarm"] = int(datapoints_to_alarm)
    cloudwatch.put_metric_alarm(**request)
    got = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    return name, {"arn": got["AlarmArn"], "name": name}


@creates("aws:cloudwatch/eventBus:EventBus", ignored={"tags": TAGS})
def event_bus(at: At, *, name: str) -> Created:
    """CreateEventBus."""
    arn = at.client("events").create_event_bus(Name=name)["EventBusArn"]
    return name, {"arn": arn, "name": name}


@creates("aws:cloudwatch/eventRule:EventRule", ignored={"tags": TAGS})
def event_rule(
    at: At,
    *,
    name: str,
    schedule_expression: str | None = None,
    event_pattern: str | None = None,
    event_bus_name: str | None = None,
    state: str = "ENABLED",
    description: str = "",
) -> Created:
    """PutRule."""
    request: dict[str, Any] = {"Name": name, "State": state, "Description": description}
    for key, value in (
        ("ScheduleExpression", schedule_expression),
        ("EventPattern", event_pattern),
        ("EventBusName", event_bus_name),
    ):
        if value:
            request[key] = value
    arn = at.client("events").put_rule(**request)["RuleArn"]
    ident = f"{event_bus_name}/{name}" if event_bus_name else name
    return ident, {"arn": arn, "name": name}


@creates("aws:cloudwatch/eventTarget:EventTarget")
def event_target(
    at: At,
    *,
    rule: str,
    arn: str,
    target_id: str | None = None,
    event_bus_name: str | None = None,
    retry_policy: dict[str, Any] | None = None,
    dead_letter_config: dict[str, Any] | None = None,
) -> Created:
    """PutTargets with one target (an id, when none is given, as the provider makes one)."""
    ident = target_id or unique()
    target: dict[str, Any] = {"Id": ident, "Arn": arn}
    if retry_policy:
        at.check(retry_policy, "retryPolicy", "maximumEventAgeInSeconds", "maximumRetryAttempts")
        target["RetryPolicy"] = {
            "MaximumEventAgeInSeconds": int(retry_policy["maximumEventAgeInSeconds"]),
            "MaximumRetryAttempts": int(retry_policy["maximumRetryAttempts"]),
        }
    if dead_letter_config:
        at.check(dead_letter_config, "deadLetterConfig", "arn")
        target["DeadLetterConfig"] = {"Arn": dead_letter_config["arn"]}
    request: dict[str, Any] = {"Rule": rule, "Targets": [target]}
    if event_bus_name:
        request["EventBusName"] = event_bus_name
    failed = at.client("events").put_targets(**request).get("FailedEntries") or []
    if failed:
        raise at.refuse(f"PutTargets failed: {failed[0].get('ErrorMessage')}")
    prefix = f"{event_bus_name}-" if event_bus_name else ""
    return f"{prefix}{rule}-{ident}", {"targetId": ident}


# -- Lambda --------------------------------------------------------------------------------------


def _invoke_arn(region: str, arn: str) -> str:
    """What API Gateway invokes a function (or alias) ``arn`` as."""
    return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"


def code_bytes(archive: Any) -> bytes:
    """The zip a ``pulumi.FileArchive`` names: the file, or a folder zipped as Pulumi does."""
    path = Path(str(getattr(archive, "path", archive)))
    if path.is_file():
        return path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            out.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()


@creates(
    "aws:lambda/function:Function",
    ignored={
        "tags": TAGS,
        "sourceCodeHash": "the code's hash is the emulator's answer (CodeSha256)",
    },
)
def function(
    at: At,
    *,
    name: str,
    role: str,
    code: Any,
    runtime: str,
    handler: str,
    memory_size: float = 128,
    timeout: float = 3,
    publish: bool = False,
    reserved_concurrent_executions: float = -1,
    tracing_config: dict[str, Any] | None = None,
    environment: dict[str, Any] | None = None,
    description: str = "",
    architectures: list[str] | None = None,
) -> Created:
    """CreateFunction with the zip's bytes; then PutFunctionConcurrency when one is reserved."""
    lam = at.client("lambda")
    request: dict[str, Any] = {
        "FunctionName": name,
        "Role": role,
        "Runtime": runtime,
        "Handler": handler,
        "Code": {"ZipFile": code_bytes(code)},
        "MemorySize": int(memory_size),
        "Timeout": int(timeout),
        "Publish": bool(publish),
        "Description": description,
    }
    if architectures:
        request["Architectures"] = list(architectures)
    if tracing_config:
        at.check(tracing_config, "tracingConfig", "mode")
        request["TracingConfig"] = {"Mode": tracing_config["mode"]}
    if environment:
        at.check(environment, "environment", "variables")
        request["Environment"] = {"Variables": dict(environment.get("variables") or {})}
    made = lam.create_function(**request)
    if int(reserved_concurrent_executions) >= 0:
        lam.put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=int(reserved_concurrent_executions)
        )
    arn = f"{made['FunctionArn'].split(':function:')[0]}:function:{name}"
    version = str(made.get("Version", "$LATEST"))
    return name, {
        "arn": arn,
        "version": version,
        "qualifiedArn": f"{arn}:{version}",
        "invokeArn": _invoke_arn(at.region, arn),
        "codeSha256": made.get("CodeSha256", ""),
        "sourceCodeHash": made.get("CodeSha256", ""),
        "name": name,
    }


@creates("aws:lambda/alias:Alias")
def alias(
    at: At, *, name: str, function_name: str, function_version: str, description: str = ""
) -> Created:
    """CreateAlias."""
    made = at.client("lambda").create_alias(
        FunctionName=function_name,
        Name=name,
        FunctionVersion=function_version,
        Description=description,
    )
    arn = made["AliasArn"]
    return arn, {
        "arn": arn,
        "invokeArn": _invoke_arn(at.region, arn),
        "name": name,
    }


@creates("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
def function_event_invoke_config(
    at: At,
    *,
    function_name: str,
    maximum_event_age_in_seconds: float | None = None,
    maximum_retry_attempts: float = 2,
    qualifier: str | None = None,
    destination_config: dict[str, Any] | None = None,
) -> Created:
    """PutFunctionEventInvokeConfig: how Lambda handles the function's asynchronous invocations
    (the sandbox's schedules read it back). The ranges are the provider's schema's."""
    if not 0 <= int(maximum_retry_attempts) <= 2:
        raise at.refuse(f"maximumRetryAttempts is {maximum_retry_attempts}: expected 0 to 2")
    age = maximum_event_age_in_seconds
    if age is not None and not 60 <= int(age) <= 21600:
        raise at.refuse(f"maximumEventAgeInSeconds is {age}: expected 60 to 21600")
    request: dict[str, Any] = {
        "FunctionName": function_name,
        "MaximumRetryAttempts": int(maximum_retry_attempts),
    }
    if qualifier:
        request["Qualifier"] = qualifier
    if age is not None:
        request["MaximumEventAgeInSeconds"] = int(age)
    if destination_config:
        at.check(destination_config, "destinationConfig", "onFailure", "onSuccess")
        destinations = {}
        for key, field in (("onFailure", "OnFailure"), ("onSuccess", "OnSuccess")):
            if destination_config.get(key):
                where = at.check(destination_config[key], f"destinationConfig.{key}", "destination")
                destinations[field] = {"Destination": where["destination"]}
        request["DestinationConfig"] = destinations
    at.client("lambda").put_function_event_invoke_config(**request)
    ident = f"{function_name}:{qualifier}" if qualifier else function_name
    return ident, {"functionName": function_name}


@creates("aws:lambda/eventSourceMapping:EventSourceMapping")
def event_source_mapping(
    at: At,
    *,
    function_name: str,
    event_source_arn: str,
    batch_size: float | None = None,
    enabled: bool = True,
    starting_position: str | None = None,
    maximum_retry_attempts: float | None = None,
    bisect_batch_on_function_error: bool | None = None,
    destination_config: dict[str, Any] | None = None,
    function_response_types: list[str] | None = None,
) -> Created:
    """CreateEventSourceMapping with every setting the program gives."""
    request: dict[str, Any] = {
        "FunctionName": function_name,
        "EventSourceArn": event_source_arn,
        "Enabled": bool(enabled),
    }
    if batch_size is not None:
        request["BatchSize"] = int(batch_size)
    if starting_position:
        request["StartingPosition"] = starting_position
    if maximum_retry_attempts is not None:
        request["MaximumRetryAttempts"] = int(maximum_retry_attempts)
    if bisect_batch_on_function_error is not None:
        request["BisectBatchOnFunctionError"] = bool(bisect_batch_on_function_error)
    if destination_config:
        at.check(destination_config, "destinationConfig", "onFailure")
        failure = at.check(
            destination_config.get("onFailure") or {},
            "destinationConfig.onFailure",
            "destinationArn",
        )
        request["DestinationConfig"] = {"OnFailure": {"Destination": failure["destinationArn"]}}
    if function_response_types:
        request["FunctionResponseTypes"] = list(function_response_types)
    made = at.client("lambda").create_event_source_mapping(**request)
    uuid = str(made["UUID"])
    return uuid, {
        "uuid": uuid,
        "arn": made.get("EventSourceMappingArn")
        or at.arn("lambda", f"event-source-mapping:{uuid}"),
        "functionArn": made.get("FunctionArn", ""),
        "state": made.get("State", ""),
    }


@creates("aws:lambda/permission:Permission")
def permission(
    at: At,
    *,
    action: str,
    function: str,
    principal: str,
    source_arn: str | None = None,
    qualifier: str | None = None,
    statement_id: str | None = None,
) -> Created:
    """AddPermission (a statement id, when none is given, as the provider makes one)."""
    ident = statement_id or unique()
    request: dict[str, Any] = {
        "FunctionName": function,
        "StatementId": ident,
        "Action": action,
        "Principal": principal,
    }
    if source_arn:
        request["SourceArn"] = source_arn
    if qualifier:
        request["Qualifier"] = qualifier
    lam = at.client("lambda")
    with function_lock(at.region, function):  # AWS drops some of parallel AddPermissions
        retrying(
            lambda: lam.add_permission(**request),
            ("ResourceConflictException", "ResourceNotFoundException"),
        )
    return ident, {"statementId": ident}


# -- API Gateway, ACM ----------------------------------------------------------------------------


@creates("aws:apigatewayv2/api:Api", ignored={"tags": TAGS})
def api(at: At, *, name: str, protocol_type: str, description: str = "") -> Created:
    """CreateApi; its ARNs are built from its id, as the provider builds them."""
    made = at.client("apigatewayv2").create_api(
        Name=name, ProtocolType=protocol_type, Description=description
    )
    api_id = made["ApiId"]
    return api_id, {
        "arn": f"arn:aws:apigateway:{at.region}::/apis/{api_id}",
        "apiEndpoint": made["ApiEndpoint"],
        "executionArn": at.arn("execute-api", api_id),
        "name": name,
    }


@creates("aws:apigatewayv2/stage:Stage", ignored={"tags": TAGS})
def stage(
    at: At,
    *,
    api_id: str,
    name: str,
    auto_deploy: bool = False,
    access_log_settings: dict[str, Any] | None = None,
    default_route_settings: dict[str, Any] | None = None,
) -> Created:
    """CreateStage with its access logs and default throttling."""
    request: dict[str, Any] = {"ApiId": api_id, "StageName": name, "AutoDeploy": auto_deploy}
    if access_log_settings:
        at.check(access_log_settings, "accessLogSettings", "destinationArn", "format")
        request["AccessLogSettings"] = {
            "DestinationArn": access_log_settings["destinationArn"],
            "Format": access_log_settings["format"],
        }
    if default_route_settings:
        at.check(
            default_route_settings,
            "defaultRouteSettings",
            "throttlingRateLimit",
            "throttlingBurstLimit",
        )
        request["DefaultRouteSettings"] = {
            "ThrottlingRateLimit": float(default_route_settings["throttlingRateLimit"]),
            "ThrottlingBurstLimit": int(default_route_settings["throttlingBurstLimit"]),
        }
    at.client("apigatewayv2").create_stage(**request)
    return name, {"arn": f"arn:aws:apigateway:{at.region}::/apis/{api_id}/stages/{name}"}


@creates("aws:apigatewayv2/authorizer:Authorizer")
def authorizer(
    at: At,
    *,
    api_id: str,
    authorizer_type: str,
    identity_sources: list[str],
    jwt_configuration: dict[str, Any] | None = None,
    name: str | None = None,
) -> Created:
    """CreateAuthorizer (a JWT one: its issuer and audiences)."""
    request: dict[str, Any] = {
        "ApiId": api_id,
        "AuthorizerType": authorizer_type,
        "IdentitySource": list(identity_sources),
        "Name": name or autoname(at),
    }
    if jwt_configuration:
        at.check(jwt_configuration, "jwtConfiguration", "issuer", "audiences")
        request["JwtConfiguration"] = {
            "Issuer": jwt_configuration["issuer"],
            "Audience": list(jwt_configuration.get("audiences") or []),
        }
    made = at.client("apigatewayv2").create_authorizer(**request)
    return str(made["AuthorizerId"]), {"name": request["Name"]}


@creates("aws:apigatewayv2/integration:Integration")
def integration(
    at: At,
    *,
    api_id: str,
    integration_type: str,
    integration_uri: str,
    payload_format_version: str = "1.0",
    integration_method: str | None = None,
) -> Created:
    """CreateIntegration."""
    request: dict[str, Any] = {
        "ApiId": api_id,
        "IntegrationType": integration_type,
        "IntegrationUri": integration_uri,
        "PayloadFormatVersion": payload_format_version,
    }
    if integration_method:
        request["IntegrationMethod"] = integration_method
    made = at.client("apigatewayv2").create_integration(**request)
    return str(made["IntegrationId"]), {}


@creates("aws:apigatewayv2/route:Route")
def route(
    at: At,
    *,
    api_id: str,
    route_key: str,
    target: str | None = None,
    authorization_type: str = "NONE",
    authorizer_id: str | None = None,
) -> Created:
    """CreateRoute."""
    request: dict[str, Any] = {
        "ApiId": api_id,
        "RouteKey": route_key,
        "AuthorizationType": authorization_type,
    }
    if target:
        request["Target"] = target
    if authorizer_id:
        request["AuthorizerId"] = authorizer_id
    made = at.client("apigatewayv2").create_route(**request)
    return str(made["RouteId"]), {}


@creates("aws:apigatewayv2/domainName:DomainName", ignored={"tags": TAGS})
def domain_name(at: At, *, domain_name: str, domain_name_configuration: dict[str, Any]) -> Created:
    """CreateDomainName: the regional name API Gateway gives it is the emulator's answer."""
    at.check(
        domain_name_configuration,
        "domainNameConfiguration",
        "certificateArn",
        "endpointType",
        "securityPolicy",
    )
    gateway = at.client("apigatewayv2")
    gateway.create_domain_name(
        DomainName=domain_name,
        DomainNameConfigurations=[
            {
                "CertificateArn": domain_name_configuration["certificateArn"],
                "EndpointType": domain_name_configuration["endpointType"],
                "SecurityPolicy": domain_name_configuration["securityPolicy"],
            }
        ],
    )
    got = gateway.get_domain_name(DomainName=domain_name)["DomainNameConfigurations"][0]
    if not got.get("ApiGatewayDomainName"):
        raise at.refuse("the emulator gave the domain name no regional target")
    return domain_name, {
        "arn": f"arn:aws:apigateway:{at.region}::/domainnames/{domain_name}",
        "domainNameConfiguration": {
            **domain_name_configuration,
            "targetDomainName": got["ApiGatewayDomainName"],
            "hostedZoneId": got.get("HostedZoneId", ""),
        },
    }


@creates("aws:apigatewayv2/apiMapping:ApiMapping")
def api_mapping(at: At, *, api_id: str, domain_name: str, stage: str) -> Created:
    """CreateApiMapping."""
    made = at.client("apigatewayv2").create_api_mapping(
        ApiId=api_id, DomainName=domain_name, Stage=stage
    )
    return str(made["ApiMappingId"]), {}


@creates("aws:acm/certificate:Certificate", ignored={"tags": TAGS})
def certificate(at: At, *, domain_name: str, validation_method: str) -> Created:
    """RequestCertificate, then the DNS records that validate it (DescribeCertificate)."""
    acm = at.client("acm")
    arn = acm.request_certificate(DomainName=domain_name, ValidationMethod=validation_method)[
        "CertificateArn"
    ]
    described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    options = [
        {
            "domainName": o["DomainName"],
            "resourceRecordName": o["ResourceRecord"]["Name"],
            "resourceRecordType": o["ResourceRecord"]["Type"],
            "resourceRecordValue": o["ResourceRecord"]["Value"],
        }
        for o in described.get("DomainValidationOptions", [])
        if "ResourceRecord" in o
    ]
    return arn, {"arn": arn, "domainValidationOptions": options, "status": described["Status"]}


@creates("aws:acm/certificateValidation:CertificateValidation")
def certificate_validation(
    at: At, *, certificate_arn: str, validation_record_fqdns: list[str] | None = None
) -> Created:
    """What the provider waits for: every validation record named, then the certificate issued.

    AWS issues the certificate once it finds the record in DNS; the emulator issues it without
    looking (its validation wait is 0), so the record is checked here, as ACM would find it.
    """
    described = at.client("acm").describe_certificate(CertificateArn=certificate_arn)["Certificate"]
    wanted = {
        o["ResourceRecord"]["Name"].rstrip(".")
        for o in described.get("DomainValidationOptions", [])
        if "ResourceRecord" in o
    }
    given = {f.rstrip(".") for f in validation_record_fqdns or []}
    if validation_record_fqdns is not None and not wanted <= given:
        raise at.refuse(f"validation records {sorted(wanted - given)} are not among the given")
    if described["Status"] != "ISSUED":
        raise at.refuse(f"certificate {certificate_arn} is {described['Status']}, not ISSUED")
    return certificate_arn, {"certificateArn": certificate_arn}


# -- Route 53 ------------------------------------------------------------------------------------


@creates("aws:route53/healthCheck:HealthCheck")
def health_check(
    at: At,
    *,
    type_: str,
    fqdn: str | None = None,
    port: float | None = None,
    resource_path: str | None = None,
    request_interval: float = 30,
    failure_threshold: float = 3,
    enable_sni: bool | None = None,
    invert_healthcheck: bool = False,
    tags: dict[str, str] | None = None,
) -> Created:
    """CreateHealthCheck, then its tags (its name among them)."""
    config: dict[str, Any] = {
        "Type": type_,
        "RequestInterval": int(request_interval),
        "FailureThreshold": int(failure_threshold),
        "Inverted": bool(invert_healthcheck),
    }
    for key, value in (
        ("FullyQualifiedDomainName", fqdn),
        ("Port", int(port) if port is not None else None),
        ("ResourcePath", resource_path),
        ("EnableSNI", enable_sni),
    ):
        if value is not None:
            config[key] = value
    route53 = at.client("route53")
    made = route53.create_health_check(CallerReference=unique(), HealthCheckConfig=config)
    ident = str(made["HealthCheck"]["Id"])
    if tags:
        route53.change_tags_for_resource(
            ResourceType="healthcheck", ResourceId=ident, AddTags=pairs(tags, "Key")
        )
    return ident, {"arn": f"arn:aws:route53:::healthcheck/{ident}"}


@creates("aws:route53/record:Record")
def record(
    at: At,
    *,
    zone_id: str,
    name: str,
    type_: str,
    ttl: float | None = None,
    records: list[str] | None = None,
    set_identifier: str | None = None,
    health_check_id: str | None = None,
    failover_routing_policies: list[dict[str, Any]] | None = None,
    allow_overwrite: bool = False,
) -> Created:
    """ChangeResourceRecordSets: CREATE (UPSERT when the program allows overwriting)."""
    rrset: dict[str, Any] = {"Name": name, "Type": type_}
    if ttl is not None:
        rrset["TTL"] = int(ttl)
    if records is not None:
        rrset["ResourceRecords"] = [{"Value": v} for v in records]
    if set_identifier:
        rrset["SetIdentifier"] = set_identifier
    if health_check_id:
        rrset["HealthCheckId"] = health_check_id
    for policy in at.check(failover_routing_policies or [], "failoverRoutingPolicies", "type"):
        rrset["Failover"] = policy["type"]
    at.client("route53").change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {"Action": "UPSERT" if allow_overwrite else "CREATE", "ResourceRecordSet": rrset}
            ]
        },
    )
    fqdn = name.rstrip(".")
    parts = [zone_id, fqdn, type_] + ([set_identifier] if set_identifier else [])
    return "_".join(parts), {"fqdn": fqdn, "name": fqdn}


# -- Invokes -------------------------------------------------------------------------------------

Invoke = Callable[[At, Mapping[str, Any]], dict[str, Any]]
INVOKES: dict[str, Invoke] = {}


def answers(token: str) -> Callable[[Invoke], Invoke]:
    """Register ``fn`` as the emulator's answer to the invoke ``token``."""

    def register(fn: Invoke) -> Invoke:
        INVOKES[token] = fn
        return fn

    return register


def invoke(at: At, args: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to the invoke ``at.typ`` (its token) with ``args``.

    Raises
    ------
    RefusedError
        No answer is mapped for the token.
    """
    fn = INVOKES.get(at.typ)
    if fn is None:
        raise at.refuse("no mapping to the emulator for this invoke")
    return fn(at, plain(dict(args)))


@answers("aws:index/getCallerIdentity:getCallerIdentity")
def caller_identity(at: At, args: Mapping[str, Any]) -> dict[str, Any]:
    """STS GetCallerIdentity."""
    got = at.client("sts").get_caller_identity()
    return {
        "accountId": got["Account"],
        "arn": got["Arn"],
        "userId": got["UserId"],
        "id": got["Account"],
    }


@answers("aws:index/getPartition:getPartition")
def partition(at: At, args: Mapping[str, Any]) -> dict[str, Any]:
    """The partition of the provider's region (the provider works it out; no call)."""
    name = (
        "aws-cn" if at.region.startswith("cn-") else "aws-us-gov" if "gov" in at.region else "aws"
    )
    suffix = "amazonaws.com.cn" if name == "aws-cn" else "amazonaws.com"
    return {"partition": name, "dnsSuffix": suffix, "reverseDnsPrefix": "com.amazonaws", "id": name}


@answers("aws:route53/getZone:getZone")
def zone(at: At, args: Mapping[str, Any]) -> dict[str, Any]:
    """ListHostedZonesByName: the one zone of that name and privacy, or the provider's error."""
    name = str(args["name"]).rstrip(".") + "."
    private = bool(args.get("privateZone", False))
    listed = at.client("route53").list_hosted_zones_by_name(DNSName=name)["HostedZones"]
    found = [
        z for z in listed if z["Name"] == name and bool(z["Config"].get("PrivateZone")) == private
    ]
    if len(found) != 1:
        raise InvokeFailedError(
            f"no matching Route 53 Hosted Zone found for {name} ({len(found)} match)"
            if not found
            else f"multiple Route 53 Hosted Zones matched {name}"
        )
    zone_id = str(found[0]["Id"]).rsplit("/", 1)[-1]
    return {
        "zoneId": zone_id,
        "id": zone_id,
        "name": name,
        "arn": f"arn:aws:route53:::hostedzone/{zone_id}",
        "privateZone": private,
    }


@answers("aws:dynamodb/getTableItem:getTableItem")
def table_item_read(at: At, args: Mapping[str, Any]) -> dict[str, Any]:
    """GetItem, strongly consistent, as the provider's data source reads one item.

    Its failures are the provider's words: a table that does not exist is "couldn't find
    resource" (its ``ResourceNotFoundException``, wrapped as not found), an item that does not
    exist "empty result", anything else the call's error; each after "reading DynamoDB Table
    Item (<table>|<key values>): ".
    """
    table = str(args["tableName"])
    key = json.loads(str(args["key"]))
    request: dict[str, Any] = {"TableName": table, "Key": key, "ConsistentRead": True}
    names = dict(args.get("expressionAttributeNames") or {})
    if names:
        request["ExpressionAttributeNames"] = names
    if args.get("projectionExpression"):
        request["ProjectionExpression"] = str(args["projectionExpression"])
    ident = "|".join([table, *(str(next(iter(v.values()))) for v in key.values())])
    try:
        got = at.client("dynamodb").get_item(**request)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        why = "couldn't find resource" if code == "ResourceNotFoundException" else str(exc)
        raise InvokeFailedError(f"reading DynamoDB Table Item ({ident}): {why}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise InvokeFailedError(f"reading DynamoDB Table Item ({ident}): {exc}") from exc
    if "Item" not in got:
        raise InvokeFailedError(f"reading DynamoDB Table Item ({ident}): empty result")
    return {
        "id": ident,
        "tableName": table,
        "key": args["key"],
        "item": json.dumps(got["Item"]),
        "projectionExpression": request.get("ProjectionExpression"),
        "expressionAttributeNames": names,
    }
