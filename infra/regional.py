"""One region of the application: everything that is deployed once per region.

Created by :func:`infra.program.deploy` once per region, with that region's provider, which every
child inherits. The region's mode parameter says ``active`` in the primary and ``standby``
elsewhere; queues come with their dead-letter queues; schedules and event source mappings are
enabled only in the primary; each function is a :class:`~infra.function.RegionalFunction`; each
api a :class:`~infra.api.RegionalApi`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pulumi

from controller.contract import ALIAS, fit
from controller.topology import Kind, Topology, declared, resolve
from controller.topology.kinds import (
    ApiSpec,
    BucketSpec,
    FunctionSpec,
    ParameterSpec,
    QueueSpec,
    ScheduleSpec,
    StreamSpec,
    TableSpec,
)
from infra import aws
from infra.api import ApiArgs, Domain, RegionalApi
from infra.common import Account, InfraError, Ref, Settings, policy_json
from infra.function import FunctionArgs, RegionalFunction
from infra.global_ import GlobalData

ACTIVE, STANDBY, NORMAL = "active", "standby", "normal"
UNSET = "unset"  # placeholder value of a parameter whose value is managed out of band
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
SCHEDULE_MAX_EVENT_AGE = 3600  # seconds EventBridge keeps retrying one scheduled invocation
SCHEDULE_RETRIES = 10


@dataclass(frozen=True)
class RegionArgs:
    """What one region needs: the topology, the global pieces it refers to, the settings."""

    topology: Topology
    region: str
    settings: Settings
    data: GlobalData
    account: Account
    # Each function code folder's bundle (code + dependencies): ``spec.code`` -> zip.
    bundles: Mapping[str, Path] = field(default_factory=dict)
    # The region's SNS topic its alarms notify.
    alarm_topic: pulumi.Input[str] | None = None
    # The region that serves now (the control table's active region; None: the primary).
    active: str | None = None

    @property
    def primary(self) -> bool:
        """Whether this is the topology's primary region."""
        return self.region == self.topology.regions.primary

    @property
    def serving(self) -> bool:
        """Whether this region serves now: what it creates is enabled, else standing by."""
        return self.region == (self.active or self.topology.regions.primary)

    def physical(self, component: str, limit: int = 64) -> str:
        """A component's AWS name in this region."""
        return fit(self.topology.physical_name(component, self.region), limit)


class Region(pulumi.ComponentResource):
    """Every per-region resource of the topology, in one region, with one provider.

    The region's provider comes in ``opts`` (``provider=`` or ``providers=``) and every child
    inherits it, as it inherits ``protect``; children are named from ``args``, not ``name``.
    """

    def __init__(
        self, name: str, args: RegionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("failover:infra:Region", name, None, opts)
        self.args = args
        topology, region = args.topology, args.region
        self.mode_parameter = self._parameter(
            f"{topology.app}-{region}-mode",
            topology.mode_parameter(region),
            ACTIVE if args.serving else STANDBY,
            owned_elsewhere=True,
        )
        self.component_modes = {
            name: self._parameter(
                f"{args.physical(name, 128)}-mode",
                topology.component_mode_parameter(name, region),
                NORMAL,
                owned_elsewhere=True,
            )
            for name in topology.components
        }
        self.refs: dict[str, Ref] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        # Queues where what failed waits for someone (a depth above 0 is worth an alarm).
        self.dead_letters: list[aws.sqs.Queue] = []
        self.functions: dict[str, RegionalFunction] = {}
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        self.apis: dict[str, RegionalApi] = {}
        for name in _dependencies_first(topology):
            spec = topology.components[name]
            deploy = deployer(str(spec.kind))
            if deploy is not None:
                deploy(self, name, spec)
        self.register_outputs({"mode_parameter": self.mode_parameter.name})

    def child(self, **kw: Any) -> pulumi.ResourceOptions:
        """Options of a resource this region owns (its provider is inherited)."""
        return self._child(**kw)

    def add(self, name: str, ref: Ref, **extra: Any) -> None:
        """Record a component's resource for its dependents and for the manifest."""
        self._add(name, ref, **extra)

    def deploy_global(self, name: str, spec: TableSpec | BucketSpec) -> None:
        """A table's replica or a bucket of this region, made by :class:`GlobalData`."""
        data, region = self.args.data, self.args.region
        self._add(
            name,
            data.table_ref(name, region)
            if isinstance(spec, TableSpec)
            else data.bucket_ref(name, region),
        )

    def _child(self, **kw: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kw)

    def _dead_letter_queue(self, name: str) -> tuple[str, aws.sqs.Queue]:
        """Component ``name``'s dead-letter queue (encrypted, kept 14 days) and its name; the
        queue joins :attr:`dead_letters`."""
        dlq_name = fit(f"{self.args.topology.physical_name(name, self.args.region)}-dlq", 80)
        dlq = aws.sqs.Queue(
            dlq_name,
            name=dlq_name,
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            opts=self._child(),
        )
        self.dead_letters.append(dlq)
        return dlq_name, dlq

    def _add(self, name: str, ref: Ref, **extra: Any) -> None:
        """Record a component's resource for its dependents and for the manifest."""
        self.refs[name] = ref
        self.entries[name] = {"kind": ref.kind, "name": ref.name, "arn": ref.arn, **extra}
        if ref.stream_arn is not None:
            self.entries[name]["stream_arn"] = ref.stream_arn

    def _parameter(
        self,
        resource: str,
        name: str,
        value: pulumi.Input[str],
        *,
        secure: bool = False,
        owned_elsewhere: bool = False,
    ) -> aws.ssm.Parameter:
        """An SSM parameter; one whose value the controller or an operator owns is set once."""
        return aws.ssm.Parameter(
            resource,
            name=name,
            type="SecureString" if secure else "String",
            value=value,
            opts=self._child(ignore_changes=["value"] if owned_elsewhere else None),
        )

    def deploy_parameter(self, name: str, spec: ParameterSpec) -> None:
        """A parameter of the application; a secure one never carries its value in code."""
        secret = self.args.settings.secrets.get(name) if spec.secure else None
        value: pulumi.Input[str] = secret if secret is not None else (spec.value or UNSET)
        parameter = self._parameter(
            self.args.physical(name, 128),
            self.args.physical(name, 1011),
            value,
            secure=spec.secure,
            owned_elsewhere=secret is None and (spec.secure or not spec.value),
        )
        self._add(name, Ref(kind="parameter", name=parameter.name, arn=parameter.arn))

    def deploy_queue(self, name: str, spec: QueueSpec) -> None:
        """A queue, encrypted, with its dead-letter queue (redrive after max_receive_count)."""
        physical = self.args.physical(name, 80)
        dlq = None
        redrive: pulumi.Input[str] | None = None
        if spec.dlq:
            _, dlq = self._dead_letter_queue(name)
            redrive = dlq.arn.apply(
                lambda arn: json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": spec.max_receive_count}
                )
            )
        queue = aws.sqs.Queue(
            physical,
            name=physical,
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=spec.visibility_timeout,
            redrive_policy=redrive,
            opts=self._child(),
        )
        self._add(
            name,
            Ref(kind="queue", name=queue.name, arn=queue.arn, url=queue.url),
            queue_url=queue.url,
            dlq_arn=dlq.arn if dlq else None,
        )

    def deploy_stream(self, name: str, spec: StreamSpec) -> None:
        """A Kinesis stream, encrypted with the AWS managed key."""
        physical = self.args.physical(name, 128)
        stream = aws.kinesis.Stream(
            physical,
            name=physical,
            shard_count=spec.shards,
            retention_period=24,
            encryption_type="KMS",
            kms_key_id="alias/aws/kinesis",
            opts=self._child(),
        )
        self._add(name, Ref(kind="stream", name=stream.name, arn=stream.arn))

    def deploy_function(self, name: str, spec: FunctionSpec) -> None:
        """A function with everything it owns; what it needs is deployed before it."""
        args = FunctionArgs(
            topology=self.args.topology,
            name=name,
            spec=spec,
            region=self.args.region,
            refs=dict(self.refs),
            mode_parameter=_param_ref(self.mode_parameter),
            component_mode_parameter=_param_ref(self.component_modes[name]),
            settings=self.args.settings,
            bundle=self.args.bundles.get(spec.code),
            alarm_topic=self.args.alarm_topic,
            serving=self.args.serving,
        )
        fn = RegionalFunction(args.physical, args, self._child())
        self.refs[name] = fn.ref
        self.entries[name] = fn.manifest()
        if fn.failures is not None:
            self.dead_letters.append(fn.failures)
        self.functions[name] = fn

    def deploy_schedule(self, name: str, spec: ScheduleSpec) -> None:
        """A schedule rule on its function's alias, enabled only in the primary region."""
        target = self.functions.get(spec.target)
        if target is None:
            raise InfraError(name, f"schedule target {spec.target!r} is not a function")
        physical = self.args.physical(name)
        rule = aws.cloudwatch.EventRule(
            physical,
            name=physical,
            schedule_expression=spec.expression,
            state="ENABLED" if self.args.serving else "DISABLED",
            # the controller enables and disables the rule: a later `pulumi up` leaves it be
            opts=self._child(ignore_changes=["state"]),
        )
        # An invocation EventBridge cannot deliver (throttled, function fenced) is retried for
        # up to an hour, then kept in a dead-letter queue rather than dropped.
        dlq_name, dlq = self._dead_letter_queue(name)
        aws.sqs.QueuePolicy(
            dlq_name,
            queue_url=dlq.url,
            policy=policy_json(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": ["sqs:SendMessage"],
                        "Resource": [dlq.arn],
                        "Condition": {"ArnEquals": {"aws:SourceArn": rule.arn}},
                    }
                ]
            ),
            opts=self._child(),
        )
        aws.cloudwatch.EventTarget(
            physical,
            rule=rule.name,
            arn=target.alias.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=SCHEDULE_MAX_EVENT_AGE,
                maximum_retry_attempts=SCHEDULE_RETRIES,
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dlq.arn),
            opts=self._child(),
        )
        aws.lambda_.Permission(
            f"{physical}-invoke",
            action="lambda:InvokeFunction",
            function=target.function.name,
            qualifier=ALIAS,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=self._child(),
        )
        self.entries[name] = {"kind": "schedule", "name": rule.name, "arn": rule.arn}
        self.rules[name] = rule

    def deploy_api(self, name: str, spec: ApiSpec) -> None:
        """The regional HTTP API, with the custom domain of the dns record that points at it."""
        topology = self.args.topology
        dns = next((d for _, d in topology.of_kind(Kind.DNS) if d.target == name), None)
        data = self.args.data
        domain = (
            Domain(
                record=dns.name,
                zone_id=data.zone_ids[dns.zone],
                validation=functools.partial(
                    data.validation_record, dns.name, data.zone_ids[dns.zone]
                ),
            )
            if dns is not None
            else None
        )
        functions = {n: f.ref for n, f in self.functions.items()}
        args = ApiArgs(
            topology=topology,
            name=name,
            spec=spec,
            region=self.args.region,
            functions=functions,
            settings=self.args.settings,
            domain=domain,
        )
        api = RegionalApi(args.physical, args, self._child())
        self.entries[name] = {
            "kind": "api",
            "name": api.api.name,
            "arn": api.api.arn,
            "endpoint": api.endpoint,
        }
        self.apis[name] = api

    def manifest(self, extra: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """This region's entry in the manifest; ``extra`` adds entries built elsewhere (dns)."""
        components = {}
        for name in self.args.topology.components:
            entry = dict(self.entries.get(name) or extra[name])
            entry["mode_parameter"] = self.component_modes[name].name
            components[name] = {k: v for k, v in entry.items() if v is not None}
        first_api = next(iter(self.apis.values()), None)
        return {
            "mode_parameter": self.mode_parameter.name,
            "alarm_topic": self.args.alarm_topic,
            "api_endpoint": first_api.endpoint if first_api else "",
            "components": components,
        }


@functools.cache
def deployer(kind: str) -> Callable[[Region, str, Any], None] | None:
    """The deployer ``kind`` declares; ``None`` for a kind that is global only (dns)."""
    path = declared(kind).deployer
    if path is None:
        return None
    found: Callable[[Region, str, Any], None] = resolve(path, "infra")
    return found


def _dependencies_first(topology: Topology) -> list[str]:
    """Every component after the components it needs (the graph's order, without the graph)."""
    names = topology.components
    return list(
        TopologicalSorter(
            {n: [d for d in c.all_dependencies() if d in names] for n, c in names.items()}
        ).static_order()
    )


def _param_ref(parameter: aws.ssm.Parameter) -> Ref:
    return Ref(kind="parameter", name=parameter.name, arn=parameter.arn)
