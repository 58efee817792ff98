"""One function in one region, with everything it owns.

Created by :class:`infra.regional.Region` once per function per region: its own IAM role with an
inline least-privilege policy (exact actions on the exact resources its dependencies and event
sources name, in this region), its log group, the function (tracing Active, short timeout,
environment variables that carry names only), a ``live`` alias, its event source mappings
(enabled only in the primary region) and alarms with high and low thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from controller.contract import (
    ALIAS,
    ENV_APP,
    ENV_COMPONENT,
    ENV_COMPONENT_MODE_PARAMETER,
    ENV_MODE_PARAMETER,
    FunctionAlarm,
    env_key,
    fit,
)
from controller.topology import Kind, Topology
from controller.topology.kinds import FunctionSpec
from infra import aws
from infra.calls import declared_calls, for_ref, service
from infra.common import (
    InfraError,
    Ref,
    Settings,
    assume_role_policy,
    policy_json,
    statement,
)

# Properties the controller sets during a failover and `pulumi up` must never set back: the
# program declares them at creation only (see docs/manifest.md, "Who owns what").
CONTROLLER_OWNED = {
    "function": ["reserved_concurrent_executions"],
    "mapping": ["enabled"],
}

# What a function may do to each kind of dependency; reads only when it does not write.
TABLE_READ = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:DescribeTable",
    "dynamodb:ConditionCheckItem",
)
TABLE_WRITE = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)
TABLE_STREAM = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
QUEUE_SEND = ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")
QUEUE_CONSUME = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
)
BUCKET_READ = ("s3:GetObject",)
BUCKET_WRITE = ("s3:PutObject",)
KINESIS_PUT = ("kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary")
KINESIS_CONSUME = (
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:ListShards",
)
PARAMETER_READ = ("ssm:GetParameter", "ssm:GetParameters")
#: how every function reads its mode parameters (one ``GetParameter`` each, powertools' cache)
MODE_READ = ("ssm:GetParameter",)
#: S3 actions on the bucket itself (the others act on its objects, ``<arn>/*``)
BUCKET_LEVEL = frozenset({"s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"})
#: what a function with ``writes: false`` may not declare
WRITES = frozenset(TABLE_WRITE + BUCKET_WRITE + ("s3:DeleteObject",))
FAILURES_RETENTION_SECONDS = 14 * 24 * 3600
LOGS_WRITE = ("logs:CreateLogStream", "logs:PutLogEvents")
XRAY_WRITE = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


@dataclass(frozen=True)
class FunctionArgs:
    """What one function needs to be built in one region."""

    topology: Topology
    name: str
    spec: FunctionSpec
    region: str
    refs: Mapping[str, Ref]
    mode_parameter: Ref
    component_mode_parameter: Ref
    settings: Settings
    # The zip of the code folder and its dependencies (None: the bare folder, no dependencies).
    bundle: Path | None = None
    # The region's SNS topic every alarm notifies (None: alarms notify nobody).
    alarm_topic: pulumi.Input[str] | None = None
    # Whether the region serves now (its event sources are created enabled); None: the primary.
    serving: bool | None = None

    @property
    def traffic_facing(self) -> bool:
        """Whether an api routes requests to this function (silence then means trouble)."""
        return any(
            route.function == self.name
            for _, api in self.topology.of_kind(Kind.API)
            for route in api.routes
        )

    @property
    def primary(self) -> bool:
        """Whether this region is the primary (the only one with event sources enabled)."""
        return self.region == self.topology.regions.primary

    @property
    def physical(self) -> str:
        """The function's (and its role's) AWS name in this region."""
        return fit(self.topology.physical_name(self.name, self.region), 64)


class RegionalFunction(pulumi.ComponentResource):
    """A Lambda function in one region with its role, alias, log group, mappings and alarms.

    Pulumi's component shape: ``opts`` (``protect``, ``aliases``, a provider) reaches every
    child, which is parented here and named from ``args`` (never from ``name``), so renaming
    the component with an alias leaves its children's URNs as they were.
    """

    def __init__(
        self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("failover:infra:Function", name, None, opts)
        self.args = args
        child = pulumi.ResourceOptions(parent=self)
        name = args.physical  # the children's names: the function's AWS name in this region

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{name}",
            retention_in_days=args.settings.log_retention_days,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=name,
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
            description=f"{args.name} in {args.region} only",
            opts=child,
        )
        polled = [
            e
            for e in args.spec.events
            if (ref := args.refs.get(e.source)) is not None and ref.kind != "queue"
        ]
        self.failures = (
            aws.sqs.Queue(
                f"{name}-failures",
                name=fit(f"{name}-failures", 80),
                sqs_managed_sse_enabled=True,
                message_retention_seconds=FAILURES_RETENTION_SECONDS,
                opts=child,
            )
            if polled
            else None
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.name,
            policy=policy_json(self._statements()),
            opts=child,
        )
        code = args.bundle or args.settings.code_root / args.spec.code
        self.function = aws.lambda_.Function(
            name,
            name=name,
            role=self.role.arn,
            runtime=args.spec.runtime,
            handler=args.spec.handler,
            code=pulumi.FileArchive(str(code)),
            memory_size=args.spec.memory,
            timeout=args.spec.timeout,
            reserved_concurrent_executions=args.spec.reserved_concurrency,
            publish=True,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=self._environment()),
            # The controller fences a region by setting reserved concurrency to 0: a later
            # `pulumi up` must not lift the fence (two writers).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.log_group, self.policy],
                ignore_changes=CONTROLLER_OWNED["function"],
            ),
        )
        self.alias = aws.lambda_.Alias(
            f"{name}-{ALIAS}",
            name=ALIAS,
            function_name=self.function.name,
            function_version=self.function.version,
            opts=child,
        )
        self.mappings = [
            self._mapping(i, e.source, e.batch_size) for i, e in enumerate(args.spec.events)
        ]
        self.alarms = self._alarms()
        self.ref = Ref(kind="function", name=self.function.name, arn=self.alias.arn)
        self.register_outputs({"function": self.function.arn, "role": self.role.arn})

    def _statements(self) -> list[dict[str, Any]]:
        """The function's policy: what its dependencies and event sources need, nothing more.

        On a dependency, the actions the handler module declares (``AWS_CALLS``,
        :mod:`infra.calls`) of the dependency's kind; without a declaration, the kind's usual
        set. Besides: its logs, X-Ray, its mode parameters, polling its event sources and
        sending failed batches to its failures queue (what Lambda and the platform need).
        """
        args = self.args
        events = {e.source for e in args.spec.events}
        calls = self._calls()
        out = [
            statement(LOGS_WRITE, [pulumi.Output.concat(self.log_group.arn, ":log-stream:*")]),
            statement(XRAY_WRITE, ["*"]),
            statement(MODE_READ, [args.mode_parameter.arn, args.component_mode_parameter.arn]),
        ]
        if self.failures is not None:  # Lambda sends failed stream batches with this role
            out.append(statement(("sqs:SendMessage",), [self.failures.arn]))
        for dep in args.spec.all_dependencies():
            ref = args.refs.get(dep)
            if ref is None:
                continue  # api, dns, schedule: nothing to call
            if dep in args.spec.depends_on:
                out.extend(
                    _uses(ref, args.spec.writes)
                    if calls is None
                    else _declared_uses(ref, for_ref(calls, ref))
                )
            if dep in events:
                out.extend(_consumes(ref))
        return out

    def _calls(self) -> tuple[str, ...] | None:
        """The declared calls, checked against the dependencies; ``None`` if undeclared."""
        args = self.args
        calls = declared_calls(
            args.name, args.settings.code_root / args.spec.code, args.spec.handler
        )
        if calls is None:
            if args.primary:
                pulumi.log.warn(
                    f"{args.name}: {args.spec.handler.rpartition('.')[0]} declares "
                    "no AWS_CALLS: its role allows every usual action on each "
                    "dependency"
                )
            return None
        served = {
            service(ref) for dep in args.spec.depends_on if (ref := args.refs.get(dep)) is not None
        }
        for act in calls:
            if act.split(":")[0] not in served:
                raise InfraError(
                    args.name,
                    f"AWS_CALLS has {act} but the function depends "
                    f"on nothing {act.split(':')[0]} acts on",
                )
            if not args.spec.writes and act in WRITES:
                raise InfraError(
                    args.name, f"AWS_CALLS has {act} but the function has writes: false"
                )
        return calls

    def _environment(self) -> dict[str, pulumi.Input[str]]:
        """Names the code needs to find its resources; never a value that is a secret."""
        args = self.args
        env: dict[str, pulumi.Input[str]] = {
            ENV_APP: args.topology.app,
            ENV_COMPONENT: args.name,
            ENV_MODE_PARAMETER: args.mode_parameter.name,
            ENV_COMPONENT_MODE_PARAMETER: args.component_mode_parameter.name,
            "POWERTOOLS_SERVICE_NAME": args.name,
        }
        for dep in args.spec.all_dependencies():
            ref = args.refs.get(dep)
            if ref is None:
                continue
            env[env_key(ref.kind, dep)] = ref.name
            if ref.url is not None:
                env[env_key(ref.kind, dep, "url")] = ref.url
        return env

    def _mapping(self, index: int, source: str, batch_size: int) -> aws.lambda_.EventSourceMapping:
        """An event source mapping on the alias, enabled only in the primary region."""
        args = self.args
        ref = args.refs.get(source)
        if ref is None or ref.kind not in {"queue", "table", "stream"}:
            raise InfraError(args.name, f"event source {source!r} is not a queue, table or stream")
        if ref.kind == "table" and ref.stream_arn is None:
            raise InfraError(args.name, f"event source {source!r} has no stream")
        polled = ref.kind != "queue"
        on_failure = None
        if polled and self.failures is not None:
            # A poison record is sent here after the retries instead of being dropped.
            on_failure = aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                    destination_arn=self.failures.arn
                )
            )
        return aws.lambda_.EventSourceMapping(
            f"{args.physical}-{source}-{index}",
            function_name=self.alias.arn,
            event_source_arn=ref.stream_arn if ref.kind == "table" else ref.arn,
            batch_size=batch_size,
            enabled=args.primary if args.serving is None else args.serving,
            # A standby enabled after an outage starts from the oldest record still kept, so
            # nothing written between the outage and the enabling is skipped (the consumers are
            # idempotent); a queue's failed messages, and the whole batch a standby refuses,
            # go back to the queue instead of being deleted.
            starting_position="TRIM_HORIZON" if polled else None,
            maximum_retry_attempts=3 if polled else None,
            bisect_batch_on_function_error=True if polled else None,
            destination_config=on_failure,
            function_response_types=None if polled else ["ReportBatchItemFailures"],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.policy], ignore_changes=CONTROLLER_OWNED["mapping"]
            ),
        )

    def _alarms(self) -> list[aws.cloudwatch.MetricAlarm]:
        """High alarms (errors, throttles, duration near the timeout) and a low one (traffic).

        The low one only for a function an api routes to: a queue worker or a stream
        projector is quiet whenever nothing happens, and an alarm on that silence would make a
        healthy region look failed (and refuse failback). In a standby region no traffic is
        expected, so missing invocations count as breaching only in the primary. Every alarm
        notifies the region's topic. A fenced primary's low-invocations and throttles alarms
        fire (Route 53's checkers still call its health route): the controller reads them as
        what fencing does, not as a fault (:func:`controller.health.verdicts.expected_alarms`).
        """
        args = self.args
        near_timeout_ms = args.spec.timeout * 1000 * 0.8
        rules = [
            (
                FunctionAlarm.ERRORS_HIGH.value,
                "Errors",
                "Sum",
                "GreaterThanOrEqualToThreshold",
                1.0,
                1,
                300,
                "notBreaching",
            ),
            (
                FunctionAlarm.THROTTLES_HIGH.value,
                "Throttles",
                "Sum",
                "GreaterThanOrEqualToThreshold",
                1.0,
                1,
                300,
                "notBreaching",
            ),
            (
                FunctionAlarm.DURATION_HIGH.value,
                "Duration",
                "Maximum",
                "GreaterThanOrEqualToThreshold",
                near_timeout_ms,
                3,
                60,
                "notBreaching",
            ),
        ]
        if args.traffic_facing:
            rules.append(
                (
                    FunctionAlarm.INVOCATIONS_LOW.value,
                    "Invocations",
                    "Sum",
                    "LessThanOrEqualToThreshold",
                    0.0,
                    12,
                    300,
                    "breaching" if args.primary else "notBreaching",
                )
            )
        actions = [args.alarm_topic] if args.alarm_topic is not None else []
        alarms = []
        for suffix, metric, stat, op, threshold, periods, period, missing in rules:
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{args.physical}-{suffix}",
                    name=f"{args.physical}-{suffix}",
                    namespace="AWS/Lambda",
                    metric_name=metric,
                    statistic=stat,
                    comparison_operator=op,
                    threshold=threshold,
                    evaluation_periods=periods,
                    period=period,
                    treat_missing_data=missing,
                    dimensions={"FunctionName": self.function.name},
                    alarm_actions=actions,
                    ok_actions=actions,
                    alarm_description=f"{args.name} in {args.region}: {suffix.replace('-', ' ')}",
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        return alarms

    def manifest(self) -> dict[str, Any]:
        """This function's entry in the region's ``components`` of the manifest."""
        return {
            "kind": "function",
            "name": self.function.name,
            "arn": self.function.arn,
            "alias": ALIAS,
            "role_arn": self.role.arn,
            "mappings": [m.uuid for m in self.mappings],
            "alarms": [a.name for a in self.alarms],
            "mode_parameter": self.args.component_mode_parameter.name,
        }


def _uses(ref: Ref, writes: bool) -> list[dict[str, Any]]:
    """The statements a function needs to call a dependency in its region."""
    if ref.use_actions:
        return [statement(ref.use_actions, [ref.arn])]
    if ref.kind == "table":
        actions = TABLE_READ + (TABLE_WRITE if writes else ())
        return [statement(actions, [ref.arn, pulumi.Output.concat(ref.arn, "/index/*")])]
    if ref.kind == "queue":
        return [statement(QUEUE_SEND, [ref.arn])]
    if ref.kind == "bucket":
        actions = BUCKET_READ + (BUCKET_WRITE if writes else ())
        return [
            statement(actions, [pulumi.Output.concat(ref.arn, "/*")]),
            statement(("s3:ListBucket",), [ref.arn]),
        ]
    if ref.kind == "stream":
        return [statement(KINESIS_PUT, [ref.arn])]
    if ref.kind == "parameter":
        return [statement(PARAMETER_READ, [ref.arn])]
    if ref.kind == "function":
        return [statement(("lambda:InvokeFunction",), [ref.arn])]
    return []


def _declared_uses(ref: Ref, actions: tuple[str, ...]) -> list[dict[str, Any]]:
    """The statements for the actions the code declares on one dependency (none: nothing)."""
    if not actions:
        return []
    if ref.kind == "table":
        return [statement(actions, [ref.arn, pulumi.Output.concat(ref.arn, "/index/*")])]
    if ref.kind == "bucket":
        on_bucket = tuple(a for a in actions if a in BUCKET_LEVEL)
        on_objects = tuple(a for a in actions if a not in BUCKET_LEVEL)
        return (
            [statement(on_objects, [pulumi.Output.concat(ref.arn, "/*")])] if on_objects else []
        ) + ([statement(on_bucket, [ref.arn])] if on_bucket else [])
    return [statement(actions, [ref.arn])]


def _consumes(ref: Ref) -> list[dict[str, Any]]:
    """The statements Lambda needs to poll an event source on the function's behalf."""
    if ref.kind == "table" and ref.stream_arn is not None:
        return [
            statement(TABLE_STREAM, [ref.stream_arn]),
            statement(("dynamodb:ListStreams",), [pulumi.Output.concat(ref.arn, "/stream/*")]),
        ]
    if ref.kind == "queue":
        return [statement(QUEUE_CONSUME, [ref.arn])]
    if ref.kind == "stream":
        return [statement(KINESIS_CONSUME, [ref.arn])]
    return []
