"""The non-function resources of one region: data, events, parameters, schedules and the API.

Called by :mod:`sandbox.regional`. One function per kind, each creating the resource
just as the Pulumi program would (same names, same shape) and returning its
:class:`~controller.manifest.ComponentRef`. ``active`` says whether the region is the primary:
standby regions get their schedules disabled (mappings are made in
:func:`provision_mappings`, also disabled outside the primary).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from controller.aws import Clients
from controller.contract import ALIAS
from controller.manifest import ComponentRef
from controller.spec import (
    ApiSpec,
    BucketSpec,
    FunctionSpec,
    ParameterSpec,
    QueueSpec,
    ScheduleSpec,
    StreamSpec,
    TableSpec,
)
from sandbox.functions import alias_arn

if TYPE_CHECKING:
    from types_boto3_sqs.literals import QueueAttributeNameType

ACTIVE = "active"
STANDBY = "standby"
_AUTH = {"iam": "AWS_IAM", "none": "NONE", "jwt": "JWT"}


def mode(active: bool) -> str:
    """The value of a mode parameter: ``active`` in the primary, ``standby`` elsewhere."""
    return ACTIVE if active else STANDBY


def put_mode(clients: Clients, region: str, name: str, active: bool) -> None:
    """Write one mode parameter (the region's, or a component's)."""
    clients.client("ssm", region).put_parameter(Name=name, Value=mode(active), Type="String",
                                                Overwrite=True)


def provision_parameter(clients: Clients, region: str, physical: str,
                        spec: ParameterSpec) -> ComponentRef:
    """An SSM parameter; a secure one gets a random placeholder, never a value from a file."""
    ssm = clients.client("ssm", region)
    if spec.secure:
        ssm.put_parameter(Name=physical, Value=f"placeholder-{secrets.token_urlsafe(12)}",
                          Type="SecureString", Overwrite=True)
    else:
        ssm.put_parameter(Name=physical, Value=spec.value or "-", Type="String", Overwrite=True)
    arn = ssm.get_parameter(Name=physical)["Parameter"]["ARN"]
    return ComponentRef(kind="parameter", name=physical, arn=arn)


def provision_table(clients: Clients, region: str, physical: str, spec: TableSpec) -> ComponentRef:
    """A DynamoDB table, on demand, with a NEW_AND_OLD_IMAGES stream when the spec asks."""
    keys = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
    if spec.range_key:
        keys.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
    kwargs: dict[str, Any] = {
        "TableName": physical, "KeySchema": keys, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": k["AttributeName"], "AttributeType": "S"}
                                 for k in keys],
    }
    if spec.stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True,
                                         "StreamViewType": "NEW_AND_OLD_IMAGES"}
    table = clients.client("dynamodb", region).create_table(**kwargs)["TableDescription"]
    return ComponentRef(kind="table", name=physical, arn=table["TableArn"],
                        stream_arn=table.get("LatestStreamArn"))


def provision_bucket(clients: Clients, region: str, physical: str,
                     spec: BucketSpec) -> ComponentRef:
    """An S3 bucket, private, versioned when the spec asks (it does by default)."""
    s3 = clients.client("s3", region)
    kwargs: dict[str, Any] = {"Bucket": physical}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(Bucket=physical, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    if spec.versioning:
        s3.put_bucket_versioning(Bucket=physical, VersioningConfiguration={"Status": "Enabled"})
    return ComponentRef(kind="bucket", name=physical, arn=f"arn:aws:s3:::{physical}")


def provision_queue(clients: Clients, region: str, physical: str, spec: QueueSpec) -> ComponentRef:
    """An SQS queue, with its dead-letter queue ``<name>-dlq`` and a redrive policy."""
    sqs = clients.client("sqs", region)
    attributes: dict[QueueAttributeNameType, str] = {
        "VisibilityTimeout": str(spec.visibility_timeout)}
    dlq_arn = None
    if spec.dlq:
        dlq_url = sqs.create_queue(QueueName=f"{physical}-dlq")["QueueUrl"]
        dlq_arn = _queue_arn(sqs, dlq_url)
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn,
                                                  "maxReceiveCount": spec.max_receive_count})
    url = sqs.create_queue(QueueName=physical, Attributes=attributes)["QueueUrl"]
    return ComponentRef(kind="queue", name=physical, arn=_queue_arn(sqs, url), queue_url=url,
                        dlq_arn=dlq_arn)


def _queue_arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attrs["QueueArn"])


def provision_stream(clients: Clients, region: str, physical: str,
                     spec: StreamSpec) -> ComponentRef:
    """A Kinesis data stream."""
    kinesis = clients.client("kinesis", region)
    kinesis.create_stream(StreamName=physical, ShardCount=spec.shards)
    arn = kinesis.describe_stream_summary(StreamName=physical)["StreamDescriptionSummary"][
        "StreamARN"]
    return ComponentRef(kind="stream", name=physical, arn=arn, stream_arn=arn)


def provision_mappings(clients: Clients, region: str, spec: FunctionSpec, function: ComponentRef,
                       sources: Mapping[str, ComponentRef], active: bool) -> list[str]:
    """The function's event source mappings, enabled only in the active region; their UUIDs."""
    lam = clients.client("lambda", region)
    uuids = []
    for event in spec.events:
        source = sources[event.source]
        kwargs: dict[str, Any] = {"FunctionName": alias_arn(function), "Enabled": active,
                                  "BatchSize": event.batch_size}
        if source.kind == "queue":
            kwargs["EventSourceArn"] = source.arn
        else:  # a table's stream or a Kinesis stream
            kwargs["EventSourceArn"] = source.stream_arn
            kwargs["StartingPosition"] = "LATEST"
        uuids.append(str(lam.create_event_source_mapping(**kwargs)["UUID"]))
    return uuids


def provision_schedule(clients: Clients, region: str, physical: str, spec: ScheduleSpec,
                       target: ComponentRef, active: bool) -> ComponentRef:
    """An EventBridge rule invoking the target's alias, enabled only in the active region."""
    events = clients.client("events", region)
    rule_arn = events.put_rule(Name=physical, ScheduleExpression=spec.expression,
                               State="ENABLED" if active else "DISABLED")["RuleArn"]
    events.put_targets(Rule=physical, Targets=[{"Id": "target", "Arn": alias_arn(target)}])
    clients.client("lambda", region).add_permission(
        FunctionName=target.name, Qualifier=target.alias or ALIAS, StatementId=f"{physical}-invoke",
        Action="lambda:InvokeFunction", Principal="events.amazonaws.com", SourceArn=rule_arn)
    return ComponentRef(kind="schedule", name=physical, arn=rule_arn)


def create_api(clients: Clients, region: str, physical: str) -> ComponentRef:
    """The regional HTTP API itself, without routes (see :func:`provision_routes`)."""
    api = clients.client("apigatewayv2", region).create_api(Name=physical, ProtocolType="HTTP")
    arn = f"arn:aws:apigateway:{region}::/apis/{api['ApiId']}"
    return ComponentRef(kind="api", name=physical, arn=arn, endpoint=api["ApiEndpoint"])


def provision_routes(clients: Clients, region: str, api: ComponentRef, spec: ApiSpec,
                     functions: Mapping[str, ComponentRef]) -> None:
    """The API's stage, one integration per function, its routes and the open health route."""
    gateway = clients.client("apigatewayv2", region)
    api_id = api.arn.rsplit("/", 1)[-1]
    gateway.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    integrations: dict[str, str] = {}
    for route in spec.routes:
        if route.function not in integrations:
            integrations[route.function] = gateway.create_integration(
                ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
                IntegrationUri=alias_arn(functions[route.function]))["IntegrationId"]
        kwargs: dict[str, Any] = {"AuthorizationType": _AUTH[route.auth]}
        if route.auth == "jwt":
            kwargs["AuthorizerId"] = _jwt_authorizer(gateway, api_id, api.name)
        gateway.create_route(ApiId=api_id, RouteKey=f"{route.method} {route.path}",
                             Target=f"integrations/{integrations[route.function]}", **kwargs)
    health: dict[str, Any] = {"AuthorizationType": "NONE"}
    if integrations:
        health["Target"] = f"integrations/{next(iter(integrations.values()))}"
    gateway.create_route(ApiId=api_id, RouteKey=f"GET {spec.health_path}", **health)


def _jwt_authorizer(gateway: Any, api_id: str, name: str) -> str:
    for authorizer in gateway.get_authorizers(ApiId=api_id).get("Items", []):
        if authorizer["Name"] == f"{name}-jwt":
            return str(authorizer["AuthorizerId"])
    return str(gateway.create_authorizer(
        ApiId=api_id, Name=f"{name}-jwt", AuthorizerType="JWT",
        IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Audience": [name], "Issuer": "https://issuer.invalid"})["AuthorizerId"])


