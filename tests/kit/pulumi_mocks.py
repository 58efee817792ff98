"""Run the Pulumi program under ``pulumi.runtime.set_mocks``: no CLI, no AWS.

Used by ``conftest.py`` (the session fixtures) and by the tests for the types they assert on.

The mocks record every resource with its inputs and the region of the provider it was created
with, and answer with the attributes AWS would compute (ARNs in the provider's region, queue URLs,
stream ARNs, replica ARNs), so the program's wiring can be checked end to end. Each topology is
run once per session; the tests assert over the collected resources.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.resource
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import source_pb2

from controller.topology import EXAMPLE_SPEC, Topology, load
from infra.common import Settings
from infra.program import deploy

ACCOUNT = "123456789012"
PROVIDER = "pulumi:providers:aws"
SECRET_VALUE = "synthetic-secret-value-for-tests"
#: Who may assume the controller and the deployer roles in the tests' stacks.
ONCALL = f"arn:aws:iam::{ACCOUNT}:role/oncall"
CI = f"arn:aws:iam::{ACCOUNT}:role/ci-deployer"
#: The public hosted zones the mocked account already has (the program looks them up).
ZONES = {"orders.example.com": "Z0ORDERS0EXAMPLE", "ledger.example.org": "Z0LEDGER0EXAMPLE"}
#: Where the tests' bundles go (one per code folder, rebuilt only when their bytes change).
BUNDLES = Path(tempfile.gettempdir()) / "failover-infra-tests" / "bundles"

GENERATED = textwrap.dedent("""\
    app: ledger
    regions: {primary: eu-central-1, standby: [ap-southeast-2]}
    components:
      api-key:   {kind: parameter, secure: true}
      limits:    {kind: parameter, value: "10"}
      events:    {kind: stream, shards: 2}
      entries:   {kind: table, hash_key: account, range_key: at}
      archive:   {kind: bucket}
      jobs:      {kind: queue, max_receive_count: 5}
      spill:     {kind: queue, dlq: false}
      ingest:
        kind: function
        code: functions
        timeout: 30
        memory: 1024
        events: [{source: events, batch_size: 50}]
        depends_on: [entries]
      notifier:
        kind: function
        timeout: 3
        writes: false
        events: [{source: jobs}, {source: entries, batch_size: 5}]
        depends_on: [api-key, archive, limits]
      front:
        kind: function
        reserved_concurrency: 20
        depends_on: [ingest, spill, entries, events, news]
      tick: {kind: schedule, expression: rate(5 minutes), target: notifier}
      news:
        kind: bus
        rules:
          big:
            pattern: {source: [ledger], detail: {amount: [{numeric: [">", 1000]}]}}
            target: jobs
          late: {pattern: {detail-type: [Late]}, target: spill}
      gateway:
        kind: api
        routes:
          - {method: GET, path: /health, function: front, auth: none}
          - {method: GET, path: /items, function: front, auth: jwt}
          - {method: PUT, path: "/items/{id}", function: front, auth: jwt}
      internal:
        kind: api
        routes:
          - {method: POST, path: /jobs, function: notifier, auth: iam}
      www:
        kind: dns
        name: www.ledger.example.org
        zone: ledger.example.org
        target: gateway
        health_check: {path: /health, interval: 30, threshold: 2}
""")


def is_watcher(name: str) -> bool:
    """True for a resource of a region's watcher (``infra/watchers.py``), not of a component."""
    return "-failover-watcher-" in name


@dataclass(frozen=True)
class Res:
    """One resource the program registered: type, name, inputs, provider region, outputs, id."""

    typ: str
    name: str
    inputs: dict[str, Any]
    region: str | None
    state: dict[str, Any]
    id: str
    #: resource options the engine received: ``ignore_changes`` (camelCase), ``protect``
    options: dict[str, Any] = field(default_factory=dict)

    def ignores(self, prop: str) -> bool:
        """Whether ``pulumi up`` leaves ``prop`` (camelCase) alone after creation."""
        return prop in self.options.get("ignore_changes", ())


@dataclass(frozen=True)
class Registration:
    """What the engine received for one resource, custom or component: URN and options."""

    typ: str
    name: str
    urn: str
    parent: str
    custom: bool
    protect: bool
    #: the provider reference of a custom resource (``<provider urn>::<id>``), else ""
    provider: str
    #: alias specs (name, type, parent URN) and alias URNs, as the engine got them
    aliases: tuple[str, ...]

    @property
    def provider_name(self) -> str:
        """The logical name of the provider this resource was created with ("" if none)."""
        return self.provider.split("::")[-2] if self.provider else ""


@dataclass
class Run:
    """The outcome of one program run: the topology, its resources and its manifest output."""

    topology: Topology
    settings: Settings
    resources: list[Res]
    manifest: dict[str, Any]
    #: every resource the engine registered (components too), in order
    registrations: list[Registration] = field(default_factory=list)

    def of(self, typ: str) -> list[Res]:
        """Resources of one type token, e.g. ``aws:lambda/function:Function``."""
        return [r for r in self.resources if r.typ == typ]

    def bucket(self, component: str, region: str) -> str:
        """The name S3 gave ``component``'s bucket in ``region`` (its prefix + a suffix)."""
        prefix = self.topology.for_stack(self.settings.stack).physical_name(component, region)
        return next(
            b.state["bucket"]
            for b in self.of("aws:s3/bucket:Bucket")
            if b.region == region and b.inputs["bucketPrefix"].startswith(prefix)
        )


def _h(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _computed(typ: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    """What AWS computes for a resource of ``typ``, in ``region``; camelCase like the engine."""
    n = inputs.get("name") or name
    regional = f"{region}:{ACCOUNT}"
    if typ == "aws:lambda/function:Function":
        arn = f"arn:aws:lambda:{regional}:function:{n}"
        return {
            "arn": arn,
            "version": "1",
            "qualifiedArn": f"{arn}:1",
            "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/{arn}/invocations",
        }
    if typ == "aws:lambda/alias:Alias":
        return {"arn": f"arn:aws:lambda:{regional}:function:{inputs['functionName']}:{n}"}
    if typ == "aws:lambda/eventSourceMapping:EventSourceMapping":
        uuid = f"{_h(name)}-0000-4000-8000-{_h(name + 'x', 12)}"
        return {"uuid": uuid, "arn": f"arn:aws:lambda:{regional}:event-source-mapping:{uuid}"}
    if typ == "aws:kms/key:Key":
        key_id = f"{_h(name)}-0000-4000-8000-{_h(name + 'k', 12)}"
        return {"arn": f"arn:aws:kms:{regional}:key/{key_id}", "keyId": key_id}
    if typ == "aws:sqs/queue:Queue":
        return {
            "arn": f"arn:aws:sqs:{regional}:{n}",
            "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{n}",
        }
    if typ == "aws:dynamodb/table:Table":

        def table(r: str) -> dict[str, str]:
            arn = f"arn:aws:dynamodb:{r}:{ACCOUNT}:table/{n}"
            return {"arn": arn, "streamArn": f"{arn}/stream/2026-01-01T00:00:00.000"}

        replicas = [{**rep, **table(rep["regionName"])} for rep in inputs.get("replicas", [])]
        return {**table(region), "replicas": replicas}
    if typ == "aws:s3/bucket:Bucket":
        # a prefix is completed with a unique 26-character suffix, as the provider does
        bucket = inputs.get("bucket") or f"{inputs['bucketPrefix']}{_h(name, 26)}"
        return {"arn": f"arn:aws:s3:::{bucket}", "id": bucket, "bucket": bucket}
    if typ == "aws:ssm/parameter:Parameter":
        return {"arn": f"arn:aws:ssm:{regional}:parameter/{n.lstrip('/')}"}
    if typ == "aws:cloudwatch/logGroup:LogGroup":
        return {"arn": f"arn:aws:logs:{regional}:log-group:{n}"}
    if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        return {"arn": f"arn:aws:cloudwatch:{regional}:alarm:{n}"}
    if typ == "aws:cloudwatch/eventRule:EventRule":
        bus = inputs.get("eventBusName")
        return {"arn": f"arn:aws:events:{regional}:rule/{bus + '/' if bus else ''}{n}"}
    if typ == "aws:cloudwatch/eventBus:EventBus":
        return {"arn": f"arn:aws:events:{regional}:event-bus/{n}"}
    if typ == "aws:kinesis/stream:Stream":
        return {"arn": f"arn:aws:kinesis:{regional}:stream/{n}"}
    if typ == "aws:iam/role:Role":
        return {"arn": f"arn:aws:iam::{ACCOUNT}:role/{n}"}
    if typ == "aws:iam/policy:Policy":
        return {"arn": f"arn:aws:iam::{ACCOUNT}:policy/{n}"}
    if typ == "aws:apigatewayv2/api:Api":
        api_id = _h(name, 10)
        return {
            "id": api_id,
            "arn": f"arn:aws:apigateway:{region}::/apis/{api_id}",
            "apiEndpoint": f"https://{api_id}.execute-api.{region}.amazonaws.com",
            "executionArn": f"arn:aws:execute-api:{regional}:{api_id}",
        }
    if typ == "aws:apigatewayv2/domainName:DomainName":
        config = {
            **inputs["domainNameConfiguration"],
            "targetDomainName": f"d-{_h(name, 10)}.execute-api.{region}.amazonaws.com",
            "hostedZoneId": f"Z{_h(region, 12).upper()}",
        }
        return {"domainNameConfiguration": config}
    if typ == "aws:acm/certificate:Certificate":
        domain = inputs["domainName"]
        return {
            "arn": f"arn:aws:acm:{regional}:certificate/{_h(name)}",
            "domainValidationOptions": [
                {
                    "domainName": domain,
                    "resourceRecordName": f"_{_h(domain)}.{domain}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": f"_{_h(domain, 12)}.acm-validations.aws.",
                }
            ],
        }
    if typ == "aws:route53/zone:Zone":
        zone_id = f"Z{_h(name, 12).upper()}"
        return {"zoneId": zone_id, "arn": f"arn:aws:route53:::hostedzone/{zone_id}"}
    if typ == "aws:route53/healthCheck:HealthCheck":
        hc = f"{_h(name)}-hc"
        return {"id": hc, "arn": f"arn:aws:route53:::healthcheck/{hc}"}
    if typ == "aws:route53/record:Record":
        return {"fqdn": inputs["name"].rstrip(".")}
    service = typ.split(":")[1].split("/")[0]
    return {"arn": f"arn:aws:{service}:{regional}:{name}"}


def _no_stack_trace() -> source_pb2.StackTrace:
    return source_pb2.StackTrace()


def without_source_positions() -> bool:
    """Register resources without the Python stack that declared them, in this process (True:
    done; False: the SDK has no such step any more).

    For every resource the SDK formats the whole call stack, each frame's file as a URI, so that
    the Pulumi CLI can show where a resource was declared: under pytest's deep stacks, a fifth
    of the Pulumi program's tests' CPU (57 s to 46 s), and no mock reads it. (The sandbox's
    deployment, called from a shallow stack, gains nothing measurable: it keeps the SDK as is.)
    """
    if not hasattr(pulumi.runtime.resource, "_get_stack_trace"):
        return False
    pulumi.runtime.resource._get_stack_trace = _no_stack_trace
    return True


class RecordingMonitor(MockMonitor):
    """The mock engine, also keeping each resource's options (the mocks only see inputs)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        self.recording.options[request.name] = {
            "ignore_changes": tuple(request.ignoreChanges),
            "protect": bool(request.protect),
            "delete_before_replace": bool(request.deleteBeforeReplace),
            "dependencies": tuple(request.dependencies),
        }
        if request.HasField("sourcePosition") or len(request.stackTrace.frames):
            self.recording.positioned.append(request.name)
        response = super().RegisterResource(request)
        aliases = tuple(
            a.urn if a.urn else f"name={a.spec.name} type={a.spec.type} parent={a.spec.parentUrn}"
            for a in request.aliases
        )
        self.recording.registrations.append(
            Registration(
                request.type,
                request.name,
                response.urn,
                request.parent,
                bool(request.custom),
                bool(request.protect),
                request.provider,
                aliases,
            )
        )
        return response


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that record each resource and the region of its provider."""

    def __init__(self) -> None:
        self.resources: list[Res] = []
        self.provider_regions: dict[str, str] = {}
        self.options: dict[str, dict[str, Any]] = {}
        self.registrations: list[Registration] = []
        #: the public hosted zones this account has (name -> id), and the lookups made
        self.zones: dict[str, str] = dict(ZONES)
        self.zone_lookups: list[str] = []
        self.partition = "aws"
        #: the control table's items by (region, pk), DynamoDB JSON; a region absent here has
        #: no control table (a first deployment); the reads made, as (region, pk)
        self.control: dict[str, dict[str, dict[str, Any]]] = {}
        self.control_reads: list[tuple[str, str]] = []
        #: what a read of the control table answers instead (e.g. no majority: an error text)
        self.control_error: str | None = None
        #: the resources registered with the stack that declared them (see install)
        self.positioned: list[str] = []

    def install(self, stack: str = "test") -> None:
        """Make these mocks (and the monitor that records options) the engine of a run."""
        without_source_positions()  # nothing here reads them: a fifth of a run's CPU
        pulumi.runtime.set_mocks(
            self, project="failover", stack=stack, preview=False, monitor=RecordingMonitor(self)
        )

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == PROVIDER:
            rid = f"{args.name}-id"
            self.provider_regions[rid] = args.inputs.get("region", "")
            return rid, dict(args.inputs)
        region = self.provider_regions.get((args.provider or "").split("::")[-1])
        if not args.custom:  # a ComponentResource: nothing is created in AWS
            return f"{args.name}-id", {}
        state = {**args.inputs, **_computed(args.typ, args.name, args.inputs, region or "none")}
        rid = str(state.pop("id", f"{args.name}-id"))
        self.resources.append(
            Res(
                args.typ,
                args.name,
                dict(args.inputs),
                region,
                state,
                rid,
                self.options.get(args.name, {}),
            )
        )
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/test",
                "userId": "AIDTEST",
                "id": ACCOUNT,
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": self.partition,
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }
        if args.token == "aws:route53/getZone:getZone":
            name = args.args["name"].rstrip(".")
            self.zone_lookups.append(name)
            if name not in self.zones or args.args.get("privateZone"):  # the provider's answer
                return {}, [("name", "no matching Route 53 Hosted Zone found")]  # type: ignore
            return {
                "zoneId": self.zones[name],
                "name": f"{name}.",
                "id": self.zones[name],
                "arn": f"arn:aws:route53:::hostedzone/{self.zones[name]}",
            }
        if args.token == "aws:dynamodb/getTableItem:getTableItem":
            return self._table_item(args)
        raise AssertionError(f"unexpected invoke {args.token}")

    def _table_item(self, args: pulumi.runtime.MockCallArgs) -> Any:
        """GetItem (strongly consistent) as the provider's data source answers it."""
        region = self.provider_regions.get((args.provider or "").split("::")[-1], "")
        pk = json.loads(args.args["key"])["pk"]["S"]
        self.control_reads.append((region, pk))
        if self.control_error is not None:
            return {}, [("table_name", self.control_error)]
        items = self.control.get(region)
        if items is None:  # the provider wraps ResourceNotFoundException as not found
            return {}, [("table_name", "reading DynamoDB Table Item: couldn't find resource")]
        item = items.get(pk)
        if item is None:
            return {}, [("key", "reading DynamoDB Table Item: empty result")]
        wanted = args.args.get("projectionExpression")
        if wanted:
            names = args.args.get("expressionAttributeNames") or {}
            keep = {names.get(p.strip(), p.strip()) for p in wanted.split(",")}
            item = {k: v for k, v in item.items() if k in keep}
        return {"item": json.dumps(item), "id": f"{args.args['tableName']}|{pk}"}


def run_program(
    topology: Topology,
    settings: Settings,
    zones: dict[str, str] | None = None,
    partition: str = "aws",
    deploy_kwargs: Callable[[], dict[str, Any]] | None = None,
    control: dict[str, dict[str, dict[str, Any]]] | None = None,
    control_error: str | None = None,
) -> Run:
    """Run :func:`infra.program.deploy` once under mocks; collect resources and manifest.

    ``zones``: the public hosted zones the account has (default :data:`ZONES`); ``partition``
    what ``get_partition`` answers; ``deploy_kwargs`` makes, inside the run, the other
    arguments of ``deploy`` (``opts``, ``providers``: resources exist only in a run).
    """
    mocks = RecordingMocks()
    mocks.partition = partition
    mocks.control = dict(control or {})
    mocks.control_error = control_error
    if zones is not None:
        mocks.zones = dict(zones)
    mocks.install()
    captured: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        extra = deploy_kwargs() if deploy_kwargs else {}
        return deploy(topology, settings, **extra).apply(captured.update)

    program()
    return Run(topology, settings, mocks.resources, captured, mocks.registrations)


def run_resources(build: Callable[[], Any]) -> list[Registration]:
    """Run ``build`` (which creates some resources, e.g. one component) under mocks.

    Returns what the engine registered, components included, in order.
    """
    mocks = RecordingMocks()
    mocks.install()

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        build()
        return pulumi.Output.from_input(None)

    program()
    return mocks.registrations


def generated_topology(tmp: Path) -> Topology:
    """A second application: two other regions, a Kinesis stream, a secure parameter, JWT."""
    path = tmp / "topology.yaml"
    path.write_text(GENERATED, encoding="utf-8")
    (tmp / "functions").mkdir()
    (tmp / "functions" / "app.py").write_text(
        "def handler(event, context):\n    return {}\n", encoding="utf-8"
    )
    return load(path)


SETTINGS: dict[str, Callable[[], Settings]] = {
    "example": lambda: Settings(
        spec_path=str(EXAMPLE_SPEC),
        bundle_dir=BUNDLES / "example",
        controller_principals=(ONCALL,),
        deployer_principals=(CI,),
        jwt_issuer="https://issuer.example.com/",
        jwt_audience=("orders",),
    ),
    "generated": lambda: Settings(
        spec_path="topology.yaml",
        log_retention_days=14,
        bundle_dir=BUNDLES / "generated",
        controller_principals=(ONCALL,),
        deployer_principals=(CI,),
        jwt_issuer="https://issuer.example.org/",
        jwt_audience=("ledger",),
        secrets={"api-key": SECRET_VALUE},
        protect_data=False,
    ),
}
