"""The watchers ``pulumi up`` deploys: one Lambda function per application region.

Composed by :func:`infra.program.deploy` after the regions (it needs what the controller
operates). Each region gets the watcher function (``controller.watchers.lambda_entry.handler``, from
a bundle of the project's own ``controller`` package, its run-time requirements and the topology),
its own role (the controller's actions on this application's resources, its own log group, X-Ray;
no ``*`` action), a log group with retention, an EventBridge rule invoking it every minute, its
asynchronous-invocation config, its chain queue and the mapping that invokes it from there
(:mod:`controller.watchers.chain`: the sentinel's next evaluation is a delayed message, not a
billed sleep), and a dead-man alarm that fires when that region's watcher has not evaluated
for three minutes (its ``Evaluations`` metric, emitted in embedded metric format,
missing data breaching). The deployed manifest goes into the control table (its ``manifest``
item), where every watcher reads it.

The schedule's parameters are :data:`controller.contract.WATCHER_SCHEDULE`'s (its memory,
architecture and cadence are what the watchers cost: ``bench/cost.py``): each invocation
evaluates inside its minute; its timeout is the minute plus a failover's whole budget
(:func:`run_budget`), so a failover its last evaluation starts is not cut. No reserved
concurrency: reserving even 1 is refused on an account whose unreserved pool would drop below
its minimum (a new account's quota), and none is needed: an invocation still running a
failover when the next minute's starts only overlaps it, and the overlapping one finds the run
and the lease held and does nothing.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from controller import contract
from controller.topology import Kind, Topology
from infra import aws
from infra.bundle import Bundle, Pip, build, run_pip
from infra.common import (
    PROJECT_ROOT,
    Account,
    Settings,
    assume_role_policy,
    policy_json,
    provider_settings,
    statement,
)
from infra.deployed import Deployed, still_as_read
from infra.global_ import Operated, controller_statements
from infra.target import Architecture, Target

#: The project's distribution, whose base requirements the watcher bundle carries.
DISTRIBUTION = "failover"
#: The handler the watcher function runs.
HANDLER = "controller.watchers.lambda_entry.handler"
#: The runtime and architecture the watcher function declares, and its bundle is built for
#: (whatever the deployer's machine): Python 3.11, the version the controller is tested on.
TARGET = Target(runtime="python3.11", architecture=Architecture.X86_64)
LOGS_WRITE = ("logs:CreateLogStream", "logs:PutLogEvents")
XRAY_WRITE = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
#: The chain (:mod:`controller.watchers.chain`): the watcher sends its next link to its queue,
#: and its event source mapping (with the function's role) receives and deletes it.
CHAIN_SEND = ("sqs:SendMessage",)
CHAIN_POLL = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
#: The chain queue keeps a link at most SQS's shortest retention: a link older than a minute is
#: stale anyway (the schedule has started the chain again).
CHAIN_RETENTION_SECONDS = 60
#: When and how long the watchers run (the rule, the timeout, the memory, async invocation).
SCHEDULE = contract.WATCHER_SCHEDULE
#: The longest wait between two attempts at a step (``controller.engine.retry.MAX_BACKOFF``, 2 s) at
#: its largest jitter (1.5): a bound of what the executor waits.
STEP_BACKOFF_SECONDS = 3.0
#: Minutes without an evaluation before the dead-man alarm fires.
SILENT_MINUTES = 3


@dataclass(frozen=True)
class WatchersArgs:
    """What the watchers need: the deployment, what they operate, where they report."""

    topology: Topology
    settings: Settings
    account: Account
    operated: Operated
    providers: Mapping[str, aws.Provider]
    control_table: pulumi.Input[str]
    #: The control table's home region (where the manifest item is written).
    control_home: str
    alarm_topics: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


def watcher_bundle(
    topology: Topology, out_dir: Path, target: Target = TARGET, pip: Pip = run_pip
) -> Bundle:
    """The watcher's zip for ``target``: the ``controller`` package, the project's run-time
    requirements built for it (no boto3: the runtime has it) and the topology as
    ``topology.yaml``, without the functions' code folders (paths of the deployer's machine,
    which the watcher never reads)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", topology.prefix)
    folder = out_dir / f"watcher-{slug}-{target.slug}"
    folder.mkdir(parents=True, exist_ok=True)
    data = topology.model_dump(mode="json", exclude_none=True)
    for name, _ in topology.of_kind(Kind.FUNCTION):
        data["components"][name].pop("code", None)
    spec = yaml.safe_dump(data, sort_keys=False)
    spec_file = folder / contract.WATCHER_SPEC_FILE
    if not spec_file.is_file() or spec_file.read_text(encoding="utf-8") != spec:
        spec_file.write_text(spec, encoding="utf-8")
    return build(
        out_dir / f"{folder.name}.zip",
        code=folder,
        packages=[PROJECT_ROOT / "controller"],
        requirements=requirements(),
        target=target,
        pip=pip,
    )


def run_budget(topology: Topology) -> float:
    """The longest a failover run takes: every step of every level at its last retry.

    A run fences the source level by level (the dependency graph's depth), activates the target
    level by level (the same depth), then sets the mode parameters; the steps of a level run in
    parallel, each given ``step_retries`` retries of ``step_timeout_seconds`` with backoff.
    """
    policy = topology.policy
    per_level = (policy.step_retries + 1) * policy.step_timeout_seconds + (
        policy.step_retries * STEP_BACKOFF_SECONDS
    )
    return (2 * _depth(topology) + 1) * per_level


def _depth(topology: Topology) -> int:
    """The number of levels of the dependency graph (its longest chain of components)."""
    names = topology.components

    @functools.cache
    def depth(name: str) -> int:
        needs = [d for d in names[name].all_dependencies() if d in names]
        return 1 + max((depth(d) for d in needs), default=0)

    return max(depth(n) for n in names)


#: The project's requirements that only its CLI (``controller.interfaces``) imports: a watcher
#: never does, and they are a third of its bundle (pygments alone 10 MB unpacked).
CLI_ONLY = frozenset({"typer", "rich"})


def requirements() -> list[str]:
    """The project's base requirements (no extras) that ``controller`` imports at run time,
    less the CLI's (:data:`CLI_ONLY`)."""
    try:
        listed = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:  # pragma: no cover - the project is installed
        listed = []
    return [
        r
        for r in listed
        if "extra ==" not in r and canonicalize_name(Requirement(r).name) not in CLI_ONLY
    ]


class Watchers(pulumi.ComponentResource):
    """A watcher function per application region, with its role, schedule and dead-man alarm."""

    def __init__(
        self, name: str, args: WatchersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("failover:infra:Watchers", name, None, opts)
        self.args = args
        topology = args.topology
        #: the function's runtime and architecture, and what its bundle is built for
        self.target = TARGET
        self.bundle = watcher_bundle(topology, args.settings.bundle_dir, self.target)
        self.timeout = SCHEDULE.timeout_seconds(run_budget(topology))
        if self.timeout >= SCHEDULE.max_timeout_seconds:
            pulumi.log.warn(
                f"a failover of {topology.app} may take {run_budget(topology):.0f} s, more than a "
                f"watcher's invocation may run ({SCHEDULE.max_timeout_seconds} s): a run cut "
                "there is finished by the next lease holder once the lease expires"
            )
        self.functions: dict[str, aws.lambda_.Function] = {}
        self.roles: dict[str, aws.iam.Role] = {}
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        self.log_groups: dict[str, aws.cloudwatch.LogGroup] = {}
        self.queues: dict[str, aws.sqs.Queue] = {}
        for region in topology.regions.all:
            self._region(region)
        self.manifest_item: aws.dynamodb.TableItem | None = None
        self.register_outputs({"functions": {r: f.name for r, f in self.functions.items()}})

    def _opts(self, region: str, **kw: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self.args.providers[region], **kw)

    def _region(self, region: str) -> None:
        args, topology = self.args, self.args.topology
        name = topology.watcher_function(region)
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=topology.watcher_log_group(region),
            retention_in_days=args.settings.log_retention_days,
            opts=self._opts(region),
        )
        role = aws.iam.Role(
            f"{name}-role",
            name=name,
            assume_role_policy=assume_role_policy(
                "lambda.amazonaws.com", source_account=args.account.account_id
            ),
            description=f"the failover watcher in {region} only",
            opts=self._opts(region),
        )
        queue = aws.sqs.Queue(
            f"{name}-chain",
            name=f"{name}-chain",
            # the mapping's invocation may run the function's whole timeout: AWS refuses a
            # mapping on a queue whose visibility timeout is shorter
            visibility_timeout_seconds=self.timeout,
            message_retention_seconds=CHAIN_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=self._opts(region),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.name,
            policy=policy_json(
                [
                    *self._statements(region, logs),
                    statement([*CHAIN_SEND, *CHAIN_POLL], [queue.arn]),
                ]
            ),
            opts=self._opts(region),
        )
        function = aws.lambda_.Function(
            name,
            name=name,
            role=role.arn,
            handler=HANDLER,
            # what the bundle was built for (TARGET), not the deployer's Python or processor
            runtime=self.target.runtime,
            architectures=[self.target.architecture.value],
            code=pulumi.FileArchive(str(self.bundle.path)),
            memory_size=SCHEDULE.memory_mb,
            timeout=self.timeout,
            # no reserved concurrency (see the module's docstring)
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    contract.ENV_WATCHER_CONTROL_TABLE: args.control_table,
                    contract.ENV_WATCHER_CONTROL_REGIONS: ",".join(
                        topology.control_regions.replicas
                    ),
                    contract.ENV_WATCHER_STACK: args.settings.stack,
                    contract.ENV_WATCHER_PERIOD: str(SCHEDULE.period_seconds),
                    contract.ENV_WATCHER_CHAIN_QUEUE: queue.url,
                }
            ),
            opts=self._opts(region, depends_on=[logs, policy]),
        )
        # EventBridge invokes asynchronously: an event Lambda cannot start within its minute is
        # dropped, a failed invocation is not retried (the next minute's comes instead)
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=function.name,
            maximum_event_age_in_seconds=SCHEDULE.max_event_age_seconds,
            maximum_retry_attempts=SCHEDULE.retries,
            opts=self._opts(region),
        )
        # one link at a time, as soon as it is due (no batching window)
        aws.lambda_.EventSourceMapping(
            f"{name}-chain",
            event_source_arn=queue.arn,
            function_name=function.arn,
            batch_size=1,
            enabled=True,
            opts=self._opts(region, depends_on=[policy]),
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            name=f"{name}-schedule",
            schedule_expression=SCHEDULE.expression,
            description=f"invokes the failover watcher in {region} every minute",
            opts=self._opts(region),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-schedule",
            rule=rule.name,
            arn=function.arn,
            # EventBridge's own retries of its call to Invoke (not of the invocation)
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=60, maximum_retry_attempts=2
            ),
            opts=self._opts(region),
        )
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=self._opts(region),
        )
        self.functions[region], self.roles[region] = function, role
        self.rules[region], self.log_groups[region] = rule, logs
        self.queues[region] = queue

    def _dead_man(self, region: str, after: pulumi.Resource) -> aws.cloudwatch.MetricAlarm:
        """The alarm that fires when ``region``'s watcher has not evaluated for three minutes.

        Created after ``after`` (the manifest item): until the item exists no watcher can
        evaluate, and an alarm on missing data would fire for nothing on every new stack.
        """
        topology, name = self.args.topology, self.args.topology.watcher_function(region)
        topic = self.args.alarm_topics.get(region)
        actions = [topic] if topic is not None else []
        return aws.cloudwatch.MetricAlarm(
            f"{name}-silent",
            name=f"{name}-silent",
            namespace=contract.WATCHER_NAMESPACE,
            metric_name=contract.WATCHER_METRIC,
            dimensions={"App": topology.prefix, "Region": region},
            statistic="Sum",
            period=60,
            evaluation_periods=SILENT_MINUTES,
            datapoints_to_alarm=SILENT_MINUTES,
            comparison_operator="LessThanThreshold",
            threshold=1.0,
            treat_missing_data="breaching",
            alarm_actions=actions,
            ok_actions=actions,
            alarm_description=(
                f"dead man: the failover watcher in {region} has not evaluated "
                f"for {SILENT_MINUTES} minutes (its region is out, it cannot "
                "reach the control table, or it fails); when every region's "
                "fires, nothing fails over on its own"
            ),
            opts=self._opts(region, depends_on=[after]),
        )

    def _statements(self, region: str, logs: aws.cloudwatch.LogGroup) -> list[dict[str, Any]]:
        """The controller's actions on this application's resources, and its own logs."""
        op, account = self.args.operated, self.args.account
        out = [
            statement(LOGS_WRITE, [pulumi.Output.concat(logs.arn, ":log-stream:*")]),
            statement(XRAY_WRITE, ["*"]),
        ]
        for statements in controller_statements(self.args.topology, account, op).values():
            out.extend(statements)
        return [s for s in out if s["Resource"]]

    def _control_provider(self) -> aws.Provider:
        home = self.args.control_home
        return self.args.providers.get(home) or aws.Provider(
            f"{self.args.topology.prefix}-watchers-{home}",
            region=home,
            opts=pulumi.ResourceOptions(parent=self),
            **provider_settings(self.args.settings, home),
        )

    def names(self) -> dict[str, dict[str, str]]:
        """Each region's watcher for the manifest: its function and log group."""
        t = self.args.topology
        return {
            r: {"function": t.watcher_function(r), "log_group": t.watcher_log_group(r)}
            for r in t.regions.all
        }

    def publish(
        self,
        manifest: pulumi.Input[Mapping[str, Any]],
        pins: Mapping[str, Any] | None = None,
        deployed: Deployed | None = None,
    ) -> aws.dynamodb.TableItem:
        """Write the deployed manifest into the control table, where the watchers read it, with
        what the next ``pulumi up`` must keep (:mod:`infra.deployed`) beside it.

        The write waits for the manifest (everything else deployed), then reads the control
        table again: a failover started since ``deployed`` was read, or a manifest item that
        changed since, stops it with one line (:func:`infra.deployed.still_as_read`).
        """
        topology, provider = self.args.topology, self._control_provider()
        home, state = self.args.control_home, deployed or Deployed()

        async def item(m: Mapping[str, Any]) -> str:
            await still_as_read(topology, provider, home, state)
            return json.dumps(
                {
                    "pk": {"S": contract.MANIFEST_ITEM},
                    "sk": {"S": contract.MANIFEST_ITEM},
                    contract.MANIFEST_ITEM: {"S": json.dumps(m, sort_keys=True)},
                    "pins": {"S": json.dumps(pins or {}, sort_keys=True)},
                },
                sort_keys=True,
            )

        self.manifest_item = aws.dynamodb.TableItem(
            f"{topology.prefix}-manifest-item",
            table_name=self.args.control_table,
            hash_key="pk",
            range_key="sk",
            # apply awaits a coroutine; its Input[U] union defeats mypy's inference
            item=pulumi.Output.from_input(manifest).apply(item),  # type: ignore[arg-type]
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        for region in topology.regions.all:
            self.alarms[region] = self._dead_man(region, self.manifest_item)
        return self.manifest_item
