"""The provisioners of one region: one function per kind, named by the kind's model.

Called by :mod:`sandbox.regional`, which resolves each kind's ``declared.provisioner``
(:class:`controller.topology.Declared`) and calls it as ``(Provisioning, name, spec)`` once the
component's dependencies exist. Each creates the resource just as the Pulumi program would (same
names, same shape) and returns its :class:`~controller.topology.manifest.ComponentRef`.
``Provisioning.active`` says whether the region is the primary: standby regions get their
schedules, bus rules and event source mappings disabled.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller.aws import Clients
from controller.contract import ALIAS
from controller.topology import Topology
from controller.topology.kinds import (
    ApiSpec,
    BucketSpec,
    BusSpec,
    FunctionSpec,
    ParameterSpec,
    QueueSpec,
    ScheduleSpec,
    StreamSpec,
    TableSpec,
)
from controller.topology.manifest import ComponentRef
from sandbox import functions
from sandbox.functions import alias_arn

if TYPE_CHECKING:
    from types_boto3_sqs.literals import QueueAttributeNameType

ACTIVE = "active"
STANDBY = "standby"
_AUTH = {"iam": "AWS_IAM", "none": "NONE", "jwt": "JWT"}


@dataclass
class Provisioning:
    """One region being provisioned: what every provisioner gets besides its component."""

    topology: Topology
    region: str
    clients: Clients
    active: bool
    #: What exists so far, by component: every dependency of a component is in it.
    refs: dict[str, ComponentRef] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """A client of ``service`` in this region's server."""
        return self.clients.client(service, self.region)

    def physical(self, component: str) -> str:
        """The AWS name of ``component`` in this region."""
        return self.topology.physical_name(component, self.region)


def mode(active: bool) -> str:
    """The value of a mode parameter: ``active`` in the primary, ``standby`` elsewhere."""
    return ACTIVE if active else STANDBY


def put_mode(clients: Clients, region: str, name: str, active: bool) -> None:
    """Write one mode parameter (the region's, or a component's)."""
    clients.client("ssm", region).put_parameter(
        Name=name, Value=mode(active), Type="String", Overwrite=True
    )


def provision_parameter(ctx: Provisioning, name: str, spec: ParameterSpec) -> ComponentRef:
    """An SSM parameter; a secure one gets a random placeholder, never a value from a file."""
    clients, region, physical = ctx.clients, ctx.region, ctx.physical(name)
    ssm = clients.client("ssm", region)
    if spec.secure:
        ssm.put_parameter(
            Name=physical,
            Value=f"placeholder-{secrets.token_urlsafe(12)}",
            Type="SecureString",
            Overwrite=True,
        )
    else:
        ssm.put_parameter(Name=physical, Value=spec.value or "-", Type="String", Overwrite=True)
    arn = ssm.get_parameter(Name=physical)["Parameter"]["ARN"]
    return ComponentRef(kind="parameter", name=physical, arn=arn)


def provision_table(ctx: Provisioning, name: str, spec: TableSpec) -> ComponentRef:
    """A DynamoDB table, on demand, with a NEW_AND_OLD_IMAGES stream when the spec asks."""
    clients, region, physical = ctx.clients, ctx.region, ctx.physical(name)
    keys = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
    if spec.range_key:
        keys.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
    kwargs: dict[str, Any] = {
        "TableName": physical,
        "KeySchema": keys,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in keys
        ],
    }
    if spec.stream:
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    table = clients.client("dynamodb", region).create_table(**kwargs)["TableDescription"]
    return ComponentRef(
        kind="table", name=physical, arn=table["TableArn"], stream_arn=table.get("LatestStreamArn")
    )


def provision_bucket(ctx: Provisioning, name: str, spec: BucketSpec) -> ComponentRef:
    """An S3 bucket, private, versioned when the spec asks (it does by default)."""
    clients, region, physical = ctx.clients, ctx.region, ctx.physical(name)
    s3 = clients.client("s3", region)
    kwargs: dict[str, Any] = {"Bucket": physical}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(
        Bucket=physical,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    if spec.versioning:
        s3.put_bucket_versioning(Bucket=physical, VersioningConfiguration={"Status": "Enabled"})
    return ComponentRef(kind="bucket", name=physical, arn=f"arn:aws:s3:::{physical}")


def provision_queue(ctx: Provisioning, name: str, spec: QueueSpec) -> ComponentRef:
    """An SQS queue, with its dead-letter queue ``<name>-dlq`` and a redrive policy."""
    clients, region, physical = ctx.clients, ctx.region, ctx.physical(name)
    sqs = clients.client("sqs", region)
    attributes: dict[QueueAttributeNameType, str] = {
        "VisibilityTimeout": str(spec.visibility_timeout)
    }
    dlq_arn = None
    if spec.dlq:
        dlq_url = sqs.create_queue(QueueName=f"{physical}-dlq")["QueueUrl"]
        dlq_arn = _queue_arn(sqs, dlq_url)
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}
        )
    url = sqs.create_queue(QueueName=physical, Attributes=attributes)["QueueUrl"]
    return ComponentRef(
        kind="queue", name=physical, arn=_queue_arn(sqs, url), queue_url=url, dlq_arn=dlq_arn
    )


def _queue_arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attrs["QueueArn"])


def provision_stream(ctx: Provisioning, name: str, spec: StreamSpec) -> ComponentRef:
    """A Kinesis data stream."""
    clients, region, physical = ctx.clients, ctx.region, ctx.physical(name)
    kinesis = clients.client("kinesis", region)
    kinesis.create_stream(StreamName=physical, ShardCount=spec.shards)
    arn = kinesis.describe_stream_summary(StreamName=physical)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    return ComponentRef(kind="stream", name=physical, arn=arn, stream_arn=arn)


def provision_mappings(
    clients: Clients,
    region: str,
    spec: FunctionSpec,
    function: ComponentRef,
    sources: Mapping[str, ComponentRef],
    active: bool,
) -> list[str]:
    """The function's event source mappings, enabled only in the active region; their UUIDs."""
    lam = clients.client("lambda", region)
    uuids = []
    for event in spec.events:
        source = sources[event.source]
        kwargs: dict[str, Any] = {
            "FunctionName": alias_arn(function),
            "Enabled": active,
            "BatchSize": event.batch_size,
        }
        if source.kind == "queue":
            kwargs["EventSourceArn"] = source.arn
        else:  # a table's stream or a Kinesis stream
            kwargs["EventSourceArn"] = source.stream_arn
            kwargs["StartingPosition"] = "LATEST"
        uuids.append(str(lam.create_event_source_mapping(**kwargs)["UUID"]))
    return uuids


def provision_function(ctx: Provisioning, name: str, spec: FunctionSpec) -> ComponentRef:
    """A function with everything it owns (:mod:`sandbox.functions`) and its event sources."""
    ref = functions.provision_function(ctx.topology, ctx.region, name, spec, ctx.clients)
    if spec.events:
        ref.mappings = provision_mappings(ctx.clients, ctx.region, spec, ref, ctx.refs, ctx.active)
    return ref


def provision_schedule(ctx: Provisioning, name: str, spec: ScheduleSpec) -> ComponentRef:
    """An EventBridge rule invoking the target's alias, enabled only in the active region."""
    events, physical, target = ctx.client("events"), ctx.physical(name), ctx.refs[spec.target]
    rule_arn = events.put_rule(
        Name=physical,
        ScheduleExpression=spec.expression,
        State="ENABLED" if ctx.active else "DISABLED",
    )["RuleArn"]
    events.put_targets(Rule=physical, Targets=[{"Id": "target", "Arn": alias_arn(target)}])
    ctx.client("lambda").add_permission(
        FunctionName=target.name,
        Qualifier=target.alias or ALIAS,
        StatementId=f"{physical}-invoke",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule_arn,
    )
    return ComponentRef(kind="schedule", name=physical, arn=rule_arn)


def provision_bus(ctx: Provisioning, name: str, spec: BusSpec) -> ComponentRef:
    """A custom event bus and its rules, each delivering to its queue; enabled when active.

    Each target queue gets a policy that lets EventBridge send to it from these rules only.
    """
    events, sqs, physical = ctx.client("events"), ctx.client("sqs"), ctx.physical(name)
    bus_arn = events.create_event_bus(Name=physical)["EventBusArn"]
    senders: dict[str, list[str]] = {}
    for rule, declared in spec.rules.items():
        rule_name = BusSpec.rule_name(physical, rule)
        rule_arn = events.put_rule(
            Name=rule_name,
            EventBusName=physical,
            EventPattern=json.dumps(declared.pattern),
            State="ENABLED" if ctx.active else "DISABLED",
        )["RuleArn"]
        queue = ctx.refs[declared.target]
        events.put_targets(
            Rule=rule_name,
            EventBusName=physical,
            Targets=[{"Id": declared.target, "Arn": queue.arn}],
        )
        senders.setdefault(declared.target, []).append(rule_arn)
    for target, rule_arns in senders.items():
        queue = ctx.refs[target]
        sqs.set_queue_attributes(
            QueueUrl=queue.queue_url,
            Attributes={"Policy": json.dumps(queue_policy(queue.arn, rule_arns))},
        )
    return ComponentRef(kind="bus", name=physical, arn=bus_arn)


def queue_policy(queue_arn: str, rule_arns: list[str]) -> dict[str, Any]:
    """The policy that lets EventBridge send to a queue from the given rules only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            }
        ],
    }


def create_api(clients: Clients, region: str, physical: str) -> ComponentRef:
    """The regional HTTP API itself, without routes (see :func:`provision_routes`)."""
    api = clients.client("apigatewayv2", region).create_api(Name=physical, ProtocolType="HTTP")
    arn = f"arn:aws:apigateway:{region}::/apis/{api['ApiId']}"
    return ComponentRef(kind="api", name=physical, arn=arn, endpoint=api["ApiEndpoint"])


def provision_api(ctx: Provisioning, name: str, spec: ApiSpec) -> ComponentRef:
    """The API's routes; the API itself is made first of all (:func:`create_api`)."""
    api = ctx.refs[name]
    provision_routes(ctx.clients, ctx.region, api, spec, ctx.refs)
    return api


def provision_routes(
    clients: Clients,
    region: str,
    api: ComponentRef,
    spec: ApiSpec,
    functions: Mapping[str, ComponentRef],
) -> None:
    """The API's stage, one integration per function, its routes and the open health route."""
    gateway = clients.client("apigatewayv2", region)
    api_id = api.arn.rsplit("/", 1)[-1]
    gateway.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    integrations: dict[str, str] = {}
    authorizer: str | None = None  # one JWT authorizer per API, made for its first jwt route
    for route in spec.routes:
        if route.function not in integrations:
            integrations[route.function] = gateway.create_integration(
                ApiId=api_id,
                IntegrationType="AWS_PROXY",
                PayloadFormatVersion="2.0",
                IntegrationUri=alias_arn(functions[route.function]),
            )["IntegrationId"]
        kwargs: dict[str, Any] = {"AuthorizationType": _AUTH[route.auth]}
        if route.auth == "jwt":
            authorizer = authorizer or _jwt_authorizer(gateway, api_id, api.name)
            kwargs["AuthorizerId"] = authorizer
        gateway.create_route(
            ApiId=api_id,
            RouteKey=f"{route.method} {route.path}",
            Target=f"integrations/{integrations[route.function]}",
            **kwargs,
        )
    health: dict[str, Any] = {"AuthorizationType": "NONE"}
    if integrations:
        health["Target"] = f"integrations/{next(iter(integrations.values()))}"
    gateway.create_route(ApiId=api_id, RouteKey=f"GET {spec.health_path}", **health)


def _jwt_authorizer(gateway: Any, api_id: str, name: str) -> str:
    """Create the API's JWT authorizer (the emulator has no GetAuthorizers to look one up)."""
    return str(
        gateway.create_authorizer(
            ApiId=api_id,
            Name=f"{name}-jwt",
            AuthorizerType="JWT",
            IdentitySource=["$request.header.Authorization"],
            JwtConfiguration={"Audience": [name], "Issuer": "https://issuer.invalid"},
        )["AuthorizerId"]
    )
