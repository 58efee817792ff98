"""The topology: one YAML file that describes an application, its regions and its components.

Read by the CLI, the plan, the sandbox and the Pulumi program (``infra`` imports this module and
nothing else of the controller). Validation is pydantic's; every failure becomes one
:class:`~controller.errors.SpecError` naming the file, the line, the component and the field.
"""

# No ``from __future__ import annotations`` here: pydantic would evaluate each of the models'
# ~100 string annotations back with ``compile`` (about 10 ms of every command's start-up).
import importlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.bulk import paused_gc
from controller.contract import DegradedMode, fit, stack_qualifier
from controller.errors import SpecError as SpecError  # re-exported: infra reads it from here
from controller.regions import default_control, known_regions, mrsc_set_of, mrsc_sets_text

EXAMPLE_SPEC = Path(__file__).resolve().parent.parent / "examples" / "orders" / "topology.yaml"
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,47}$"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Kind(StrEnum):
    """What a component is; each kind's model below declares the rest (:class:`Declared`)."""

    FUNCTION = "function"
    QUEUE = "queue"
    TABLE = "table"
    BUCKET = "bucket"
    STREAM = "stream"
    SCHEDULE = "schedule"
    PARAMETER = "parameter"
    API = "api"
    DNS = "dns"
    BUS = "bus"


class Tier(StrEnum):
    """The layer a component belongs to; traffic is always shifted last."""

    DATA = "data"
    EVENTS = "events"
    COMPUTE = "compute"
    TRAFFIC = "traffic"


class TargetLost(StrEnum):
    """Where a run goes when its target stops answering mid-run (``policy.on_target_lost``)."""

    #: The next healthy standby (topology order), else back to the source if it is healthy.
    NEXT_STANDBY = "next_standby"
    #: Back to the source if it is healthy, else the next healthy standby.
    SOURCE = "source"


class OnFailure(StrEnum):
    """What the executor does when this component cannot be activated in the target."""

    DEGRADE = "degrade"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Declared:
    """What a kind declares besides its fields: the one registry entry of a kind.

    The two code paths are ``"module:attribute"`` names that each side resolves with
    :func:`resolve` when it needs them (the controller never imports ``infra``):

    - ``action``: the :class:`controller.actions.base.Action` subclass that reads, activates and
      fences the component in one region;
    - ``deployer``: the Pulumi function ``(Region, name, spec) -> None`` that creates it in one
      region, or ``None`` for a kind that is global only. The sandbox deploys it by running the
      same program against the emulator (``sandbox.deploy``).

    A new kind is its model here, its action module and its deployer: three files
    (``tests/unit/test_kinds.py`` checks every kind resolves them); a new AWS resource type the
    deployer creates is one function in the sandbox's mapping (``sandbox/deploy/mapping.py``).
    """

    tier: Tier
    action: str
    deployer: str | None
    #: What fencing and activating do to the resource, in words (for readers of the registry).
    switch: str = "nothing to switch: its mode parameter says whether it serves"
    #: Where ``infra`` and the sandbox create the global pieces (tables, buckets, DNS).
    global_part: str | None = None


def resolve(path: str) -> Any:
    """The object a ``"module:attribute"`` name points at (``Class.method`` allowed).

    >>> resolve("controller.spec:Kind.BUS")
    <Kind.BUS: 'bus'>
    """
    module, _, attribute = path.partition(":")
    found: Any = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ComponentBase(_Strict):
    """Fields every component has."""

    declared: ClassVar[Declared]

    tier: Tier | None = None
    depends_on: tuple[str, ...] = ()
    degraded: DegradedMode | None = None
    on_failure: OnFailure = OnFailure.DEGRADE
    description: str = ""

    @property
    def resolved_tier(self) -> Tier:
        """The declared tier, or the kind's default."""
        return self.tier or self.declared.tier

    def implied_dependencies(self) -> tuple[str, ...]:
        """Components needed without saying so in ``depends_on`` (event sources, targets)."""
        return ()

    #: The field that names the implied dependencies (for error messages).
    implied_field: ClassVar[str] = "depends_on"

    def all_dependencies(self) -> tuple[str, ...]:
        """``depends_on`` plus the implied dependencies, without repeats, in declared order."""
        return tuple(dict.fromkeys((*self.depends_on, *self.implied_dependencies())))

    def check_references(self, kinds: Mapping[str, str]) -> None:
        """Raise ``ValueError`` when a component this one names has the wrong kind.

        ``kinds`` maps every component name to its kind; unknown names are the graph's to report.
        """


class EventSource(_Strict):
    """An event source mapping of a function: a queue, a table's stream, or a Kinesis stream."""

    source: str
    batch_size: int = Field(default=10, ge=1, le=10000)


class FunctionSpec(_ComponentBase):
    """A Lambda function, replicated in every region with its own role and a ``live`` alias."""

    kind: Literal["function"]
    declared = Declared(
        Tier.COMPUTE,
        "controller.actions.function:FunctionAction",
        "infra.regional:Region.deploy_function",
        switch="fenced: reserved concurrency 0 and its mappings disabled; active: the reverse",
    )
    implied_field = "events"
    code: str = "functions"
    handler: str = "app.handler"
    runtime: Literal["python3.11", "python3.12", "python3.13"] = "python3.12"
    memory: int = Field(default=256, ge=128, le=10240)
    timeout: int = Field(default=10, ge=1, le=900)
    reserved_concurrency: int | None = Field(default=None, ge=1, le=1000)
    events: tuple[EventSource, ...] = ()
    writes: bool = True

    def implied_dependencies(self) -> tuple[str, ...]:
        return tuple(e.source for e in self.events)


class QueueSpec(_ComponentBase):
    """An SQS queue with its dead-letter queue."""

    kind: Literal["queue"]
    declared = Declared(
        Tier.EVENTS,
        "controller.actions.queue:QueueAction",
        "infra.regional:Region.deploy_queue",
    )
    visibility_timeout: int = Field(default=60, ge=0, le=43200)
    max_receive_count: int = Field(default=3, ge=1, le=1000)
    dlq: bool = True


class TableSpec(_ComponentBase):
    """A DynamoDB table, a global table with a replica in every region."""

    kind: Literal["table"]
    declared = Declared(
        Tier.DATA,
        "controller.actions.table:TableAction",
        "infra.regional:Region.deploy_global",
        global_part="infra.global_:GlobalData (the global table)",
    )
    hash_key: str = "pk"
    range_key: str | None = None
    stream: bool = True
    max_lag_seconds: float = Field(default=30.0, gt=0)


class BucketSpec(_ComponentBase):
    """An S3 bucket, versioned and replicated to every other region."""

    kind: Literal["bucket"]
    declared = Declared(
        Tier.DATA,
        "controller.actions.bucket:BucketAction",
        "infra.regional:Region.deploy_global",
        global_part="infra.global_:GlobalData (replication between regions)",
    )
    versioning: bool = True


class StreamSpec(_ComponentBase):
    """A Kinesis data stream."""

    kind: Literal["stream"]
    declared = Declared(
        Tier.EVENTS,
        "controller.actions.stream:StreamAction",
        "infra.regional:Region.deploy_stream",
    )
    shards: int = Field(default=1, ge=1, le=500)


class ScheduleSpec(_ComponentBase):
    """An EventBridge schedule rule that invokes a function; enabled only in the active region."""

    kind: Literal["schedule"]
    declared = Declared(
        Tier.EVENTS,
        "controller.actions.schedule:ScheduleAction",
        "infra.regional:Region.deploy_schedule",
        switch="the rule is enabled in the active region, disabled elsewhere",
    )
    implied_field = "target"
    expression: str = Field(pattern=r"^(rate|cron)\(.+\)$")
    target: str

    def implied_dependencies(self) -> tuple[str, ...]:
        return (self.target,)


class ParameterSpec(_ComponentBase):
    """An SSM parameter; a secure one carries no value here (it is set out of band)."""

    kind: Literal["parameter"]
    declared = Declared(
        Tier.DATA,
        "controller.actions.parameter:ParameterAction",
        "infra.regional:Region.deploy_parameter",
    )
    value: str = ""
    secure: bool = False

    @model_validator(mode="after")
    def _no_secret_values(self) -> Self:
        if self.secure and self.value:
            raise ValueError("a secure parameter must not carry its value in the topology")
        return self


class Route(_Strict):
    """One route of the regional HTTP API."""

    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH", "ANY"] = "GET"
    path: str = Field(pattern=r"^/[A-Za-z0-9_{}/.-]*$")
    function: str
    auth: Literal["iam", "jwt", "none"] = "iam"


class ApiSpec(_ComponentBase):
    """The regional HTTPS API; ``/health`` is open, every other route is authorized."""

    kind: Literal["api"]
    declared = Declared(
        Tier.TRAFFIC,
        "controller.actions.api:ApiAction",
        "infra.regional:Region.deploy_api",
    )
    implied_field = "routes"
    routes: tuple[Route, ...] = ()
    health_path: str = "/health"

    def implied_dependencies(self) -> tuple[str, ...]:
        return tuple(r.function for r in self.routes)


class HealthCheck(_Strict):
    """The Route 53 health check of each regional endpoint."""

    path: str = "/health"
    interval: Literal[10, 30] = 10
    threshold: int = Field(default=3, ge=1, le=10)


class DnsSpec(_ComponentBase):
    """The application's DNS record, with failover records and a health check per region."""

    kind: Literal["dns"]
    declared = Declared(
        Tier.TRAFFIC,
        "controller.actions.dns:DnsAction",
        None,
        switch="the failover records point at the active region's endpoint",
        global_part="infra.global_:Traffic (records, health checks; the zone is the account's)",
    )
    implied_field = "target"
    name: str = Field(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    zone: str = Field(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    target: str
    ttl: int = Field(default=60, ge=1, le=86400)
    health_check: HealthCheck = HealthCheck()

    def implied_dependencies(self) -> tuple[str, ...]:
        return (self.target,)


class BusRule(_Strict):
    """One rule of an event bus: events matching ``pattern`` go to the ``target`` queue."""

    pattern: dict[str, Any] = Field(min_length=1)
    target: str

    @field_validator("pattern")
    @classmethod
    def _pattern_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, match in value.items():
            if not isinstance(match, (list, dict)):
                raise ValueError(f"pattern field {key!r} must be a list of values or a mapping")
        return value


class BusSpec(_ComponentBase):
    """An EventBridge custom event bus and its rules, in every region.

    Fencing disables the bus's rules in the fenced region (events published there reach no
    target); activating enables them in the active region. Each rule delivers to a queue.
    """

    kind: Literal["bus"]
    declared = Declared(
        Tier.EVENTS,
        "controller.actions.bus:BusAction",
        "infra.bus:deploy",
        switch="its rules are enabled in the active region, disabled elsewhere",
    )
    implied_field = "rules"
    rules: dict[str, BusRule] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _rule_names(cls, value: dict[str, BusRule]) -> dict[str, BusRule]:
        import re

        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(
                    f"rule name {name!r} must be lower-case letters, digits and dashes"
                )
        return value

    def implied_dependencies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.target for r in self.rules.values()))

    def check_references(self, kinds: Mapping[str, str]) -> None:
        for rule, spec in self.rules.items():
            kind = kinds.get(spec.target)
            if kind is not None and kind != Kind.QUEUE:
                raise ValueError(f"rule {rule!r}: target {spec.target!r} is a {kind}, not a queue")

    @staticmethod
    def rule_name(bus: str, rule: str) -> str:
        """The AWS name of ``rule`` on the bus whose AWS name is ``bus`` (64 characters at most).

        >>> BusSpec.rule_name("orders-events-us-east-1", "placed")
        'orders-events-us-east-1-placed'
        """
        return fit(f"{bus}-{rule}", 64)


Component = Annotated[
    FunctionSpec
    | QueueSpec
    | TableSpec
    | BucketSpec
    | StreamSpec
    | ScheduleSpec
    | ParameterSpec
    | ApiSpec
    | DnsSpec
    | BusSpec,
    Field(discriminator="kind"),
]

#: Every kind's model: the registry of kinds (each model's ``declared`` says the rest).
KINDS: Mapping[Kind, type[_ComponentBase]] = {
    Kind(get_args(model.model_fields["kind"].annotation)[0]): model
    for model in get_args(get_args(Component)[0])
}
DEFAULT_TIER: Mapping[Kind, Tier] = {kind: model.declared.tier for kind, model in KINDS.items()}


def declared(kind: str) -> Declared:
    """What ``kind`` declares (its tier, action and deployer)."""
    return KINDS[Kind(kind)].declared


class Regions(_Strict):
    """The primary region and the standbys, in order of preference."""

    primary: str
    standby: tuple[str, ...] = Field(min_length=1)

    @field_validator("primary")
    @classmethod
    def _known_primary(cls, value: str) -> str:
        return _check_region(value)

    @field_validator("standby")
    @classmethod
    def _known_standbys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for region in value:
            _check_region(region)
            if region in seen:
                raise ValueError(f"region {region!r} is listed twice")
            seen.add(region)
        return value

    @model_validator(mode="after")
    def _primary_not_standby(self) -> Self:
        if self.primary in self.standby:
            raise ValueError(f"region {self.primary!r} is both primary and standby")
        return self

    @property
    def all(self) -> tuple[str, ...]:
        """Every region, primary first."""
        return (self.primary, *self.standby)


class Control(_Strict):
    """Where the control table lives: three replicas, or two and a witness, in one MRSC set.

    The journal, the lease and the desired state live there; only multi-Region strong
    consistency makes a conditional write mean the same in every region.
    """

    replicas: tuple[str, ...]
    witness: str | None = None

    @field_validator("replicas")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for region in value:
            _control_region(region)
        if len(set(value)) != len(value):
            raise ValueError(f"a region is listed twice in {list(value)} ({_allowed()})")
        return value

    @field_validator("witness")
    @classmethod
    def _known_witness(cls, value: str | None) -> str | None:
        return _control_region(value) if value is not None else None

    @model_validator(mode="after")
    def _mrsc(self) -> Self:
        if self.witness is not None and self.witness in self.replicas:
            raise ValueError(f"the witness {self.witness!r} is also a replica ({_allowed()})")
        shape = (len(self.replicas), self.witness is not None)
        if shape not in ((3, False), (2, True)):
            raise ValueError(
                f"a control table has three replicas, or two replicas and a "
                f"witness, not {len(self.replicas)} replicas"
                f"{' and a witness' if self.witness else ''} ({_allowed()})"
            )
        if mrsc_set_of(self.all) is None:
            raise ValueError(
                f"{', '.join(self.all)} are not in one region set of multi-Region "
                f"strong consistency ({_allowed()})"
            )
        return self

    @property
    def all(self) -> tuple[str, ...]:
        """The replicas, then the witness if any."""
        return (*self.replicas, *((self.witness,) if self.witness else ()))


class Policy(_Strict):
    """How the watcher decides and how the executor behaves."""

    failure_threshold: int = Field(default=3, ge=1, le=100)
    quorum: int = Field(default=2, ge=1, le=3)
    cooldown_seconds: float = Field(default=300.0, ge=0)
    auto_failback: bool = False
    step_timeout_seconds: float = Field(default=10.0, gt=0)
    step_retries: int = Field(default=3, ge=0, le=10)
    lease_seconds: float = Field(default=60.0, gt=0)
    on_target_lost: TargetLost = TargetLost.NEXT_STANDBY
    #: Seconds between two evaluations of a watcher (the deployed watchers and ``failover watch``).
    watch_interval_seconds: float = Field(default=10.0, ge=0.2, le=50.0)


class Topology(_Strict):
    """A whole application: its name, regions, components and policy.

    Use :func:`load` to read one from a file; the graph checks (cycles, dangling references)
    live in :mod:`controller.graph`.
    """

    app: str = Field(pattern=NAME_PATTERN)
    regions: Regions
    components: dict[str, Component] = Field(min_length=1)
    policy: Policy = Policy()
    control: Control | None = None
    #: The deployment's stack qualifier (:meth:`for_stack`); empty for the sandbox.
    _stack: str = PrivateAttr(default="")

    @field_validator("components")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        import re

        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(
                    f"component name {name!r} must be lower-case letters, digits and dashes"
                )
        return value

    def for_stack(self, stack: str) -> Self:
        """This topology as the Pulumi stack ``stack`` deploys it: every name carries the stack.

        Two stacks of one application (staging and prod) in one account would otherwise
        collide on every fixed name (roles, tables, queues, functions, parameters, alarms).

        >>> t = Topology.model_validate({"app": "shop", "regions": {"primary": "us-east-1",
        ...     "standby": ["us-west-2"]}, "components": {"t": {"kind": "table"}}})
        >>> t.for_stack("Prod").physical_name("t", "us-west-2"), t.physical_name("t", "us-west-2")
        ('shop-prod-t-us-west-2', 'shop-t-us-west-2')
        """
        copy = self.model_copy()
        copy._stack = stack_qualifier(stack)
        return copy

    @property
    def prefix(self) -> str:
        """What every physical name of this deployment starts with: the app, and its stack."""
        return f"{self.app}-{self._stack}" if self._stack else self.app

    def physical_name(self, component: str, region: str) -> str:
        """The AWS name of ``component`` in ``region``: the one naming rule for every tool.

        >>> t = Topology.model_validate({"app": "shop", "regions": {"primary": "us-east-1",
        ...     "standby": ["us-west-2"]}, "components": {"t": {"kind": "table"}}})
        >>> t.physical_name("t", "us-west-2")
        'shop-t-us-west-2'
        """
        return f"{self.prefix}-{component}-{region}"

    def mode_parameter(self, region: str) -> str:
        """The SSM parameter that carries ``region``'s mode for the functions to read."""
        return f"/failover/{self.prefix}/{region}/mode"

    def component_mode_parameter(self, component: str, region: str) -> str:
        """The SSM parameter that carries one component's mode (degraded answers) in ``region``."""
        return f"/failover/{self.prefix}/{region}/mode/{component}"

    def watcher_function(self, region: str) -> str:
        """The Lambda function that watches from ``region`` (one per application region).

        >>> t = Topology.model_validate({"app": "shop", "regions": {"primary": "us-east-1",
        ...     "standby": ["us-west-2"]}, "components": {"t": {"kind": "table"}}})
        >>> t.watcher_function("us-west-2"), t.watcher_log_group("us-west-2")
        ('shop-failover-watcher-us-west-2', '/aws/lambda/shop-failover-watcher-us-west-2')
        """
        return fit(f"{self.prefix}-failover-watcher-{region}", 64)

    def watcher_log_group(self, region: str) -> str:
        """Where the watcher of ``region`` logs (Lambda's own log group name for it)."""
        return f"/aws/lambda/{self.watcher_function(region)}"

    @property
    def control_table(self) -> str:
        """The DynamoDB control table that holds the journal and the lease."""
        return f"{self.prefix}-failover-control"

    @property
    def control_regions(self) -> Control:
        """The control table's regions: the ``control`` section, else derived from the
        application's regions (:func:`controller.regions.default_control`)."""
        if self.control is not None:
            return self.control
        replicas, witness = default_control(self.regions.all)
        return Control(replicas=replicas, witness=witness)

    def of_kind(self, kind: Kind) -> Iterator[tuple[str, Any]]:
        """Yield ``(name, component)`` for every component of ``kind``, in declared order."""
        for name, comp in self.components.items():
            if comp.kind == kind:
                yield name, comp


def _allowed() -> str:
    return f"allowed region sets: {mrsc_sets_text()}"


def _control_region(region: str) -> str:
    if region not in known_regions():
        raise ValueError(f"unknown AWS region {region!r} ({_allowed()})")
    return region


def _check_region(region: str) -> str:
    if region not in known_regions():
        raise ValueError(f"unknown AWS region {region!r}")
    return region


def default_spec_path() -> Path:
    """``$FAILOVER_SPEC``, else ``./topology.yaml``, else the example application."""
    env = os.environ.get("FAILOVER_SPEC")
    if env:
        return Path(env)
    local = Path("topology.yaml")
    if local.exists():
        return local
    if not EXAMPLE_SPEC.exists():  # installed from a wheel: the example lives in the repository
        raise SpecError(
            "no topology: pass --spec FILE, set $FAILOVER_SPEC, or run where topology.yaml is"
        )
    return EXAMPLE_SPEC


def load(path: str | Path) -> Topology:
    """Read and validate a topology file.

    Parameters
    ----------
    path : a YAML file.

    Returns
    -------
    The validated :class:`Topology` (graph checks are :func:`controller.graph.build`'s).

    Raises
    ------
    SpecError
        One line naming the file, the line, the component and the field.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise SpecError("file does not exist", source=source)
    if path.is_dir():
        raise SpecError("is a directory, not a topology file", source=source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", source=source) from exc
    return loads(text, source=source, base=path.resolve().parent)


@paused_gc()
def loads(text: str, *, source: str = "<topology>", base: Path | None = None) -> Topology:
    """Validate a topology given as YAML text; see :func:`load`.

    ``base`` is the folder of the topology file: each function's ``code`` is resolved against
    it (and becomes absolute) and checked to hold the handler's module. Without ``base`` (text
    that is not a file) the code folders are left as written and not checked.
    """
    try:
        data = _load_json(text)
    except SpecError as exc:
        raise SpecError(exc.reason, source=source) from None
    try:
        if data is None:
            data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"not valid YAML: {problem}", source=source, line=line) from exc
    if data is None:
        raise SpecError("file is empty", source=source)
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a mapping with app, regions and components, found {type(data).__name__}",
            source=source,
        )
    written = _absolute_code(data, base) if base is not None else {}
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc, yaml.compose(text, Loader=_LOADER), source) from None
    problem = (
        _signed_routes_behind_failover(topology)
        or _queue_hides_less_than_its_consumer_runs(topology)
        or _dns_name_outside_its_zone(topology)
    )
    if problem is None and base is not None:
        problem = _missing_code(topology, written)
    if problem is not None:
        component, loc, message = problem
        line = _line_of(yaml.compose(text, Loader=_LOADER), ["components", component, *loc])
        raise SpecError(message, source=source, component=component, field=".".join(loc), line=line)
    return topology


#: A rule broken: (component, field path inside it, message).
_Problem = tuple[str, list[str], str]


def _signed_routes_behind_failover(topology: Topology) -> _Problem | None:
    """An ``auth: iam`` route of an api that a dns failover record points at, if any.

    A SigV4 signature carries the region in its scope: once DNS sends the name to another
    region, the API there refuses every signed request (403), so the route does not survive a
    failover. A JWT authorizer does.
    """
    for _, dns in topology.of_kind(Kind.DNS):
        api = topology.components.get(dns.target)
        if not isinstance(api, ApiSpec):
            continue
        for i, route in enumerate(api.routes):
            if route.auth == "iam":
                return (
                    dns.target,
                    ["routes", str(i), "auth"],
                    f"auth iam on {route.method} {route.path} does not survive a failover: "
                    f"SigV4 signs for one region and {dns.name} moves between regions "
                    "(use auth: jwt)",
                )
    return None


def _queue_hides_less_than_its_consumer_runs(topology: Topology) -> _Problem | None:
    """A queue whose visibility timeout is shorter than a function it feeds may run.

    Lambda refuses such an event source mapping (CreateEventSourceMapping: the queue's
    visibility timeout must be at least the function's timeout): ``pulumi up`` would fail
    halfway, and a message could be handed to a second consumer while the first still works.
    """
    for name, fn in topology.of_kind(Kind.FUNCTION):
        for event in fn.events:
            queue = topology.components.get(event.source)
            if isinstance(queue, QueueSpec) and queue.visibility_timeout < fn.timeout:
                return (
                    event.source,
                    ["visibility_timeout"],
                    f"is {queue.visibility_timeout} s, less than the timeout of {name} "
                    f"({fn.timeout} s), which it feeds: Lambda refuses the mapping and a message "
                    "would reach a second consumer while the first still works",
                )
    return None


def _dns_name_outside_its_zone(topology: Topology) -> _Problem | None:
    """A dns record whose name is not inside its zone, or is the zone's apex.

    Route 53 refuses a record outside its hosted zone, and the failover records are CNAMEs,
    which cannot be at a zone's apex.
    """
    for name, dns in topology.of_kind(Kind.DNS):
        record, zone = dns.name.rstrip("."), dns.zone.rstrip(".")
        if record == zone:
            return (
                name,
                ["name"],
                f"{record} is the apex of the zone {zone}: the failover records are CNAMEs, "
                "which cannot be at a zone's apex (use a name inside it, e.g. api." + zone + ")",
            )
        if not record.endswith("." + zone):
            return (name, ["name"], f"{record} is not inside the zone {zone}")
    return None


def _absolute_code(data: Any, base: Path) -> dict[str, str]:
    """Rewrite each function's ``code`` in the raw ``data`` as a folder under ``base``.

    Done before validation, on plain strings (no file system call, one join per distinct
    folder), so that ten thousand components cost nothing; returns absolute -> as written.
    """
    components = data.get("components") if isinstance(data, dict) else None
    if not isinstance(components, dict):
        return {}
    default = FunctionSpec.model_fields["code"].default
    written: dict[str, str] = {}
    absolute: dict[str, str] = {}
    for comp in components.values():
        if not isinstance(comp, dict) or comp.get("kind") != Kind.FUNCTION:
            continue
        code = comp.get("code", default)
        if not isinstance(code, str):
            continue  # validation says what is wrong with it
        if code not in absolute:
            absolute[code] = os.path.normpath(os.path.join(base, code))
            written[absolute[code]] = code
        comp["code"] = absolute[code]
    return written


def _missing_code(topology: Topology, written: Mapping[str, str]) -> _Problem | None:
    """The first function whose code folder, or handler module in it, does not exist.

    A folder that does not exist, or one without the handler's module (``mod.func`` needs
    ``mod.py`` or ``mod/__init__.py``), would deploy a function that fails at every request.
    """
    checked: set[tuple[str, str]] = set()  # many functions share one folder and handler
    for name, spec in topology.of_kind(Kind.FUNCTION):
        if (spec.code, spec.handler) in checked:
            continue
        folder = Path(spec.code)
        if not folder.is_dir():
            return (
                name,
                ["code"],
                f"code folder {written.get(spec.code, spec.code)!r} does "
                f"not exist (resolved against the topology's folder: {folder})",
            )
        module, _, function = spec.handler.rpartition(".")
        relative = Path(*module.split(".")) if module else None
        if (
            relative is None
            or not function
            or not (
                (folder / relative).with_suffix(".py").is_file()
                or (folder / relative / "__init__.py").is_file()
            )
        ):
            return (
                name,
                ["handler"],
                f"handler {spec.handler!r}: no module "
                f"{module or '(none)'!r} in the code folder {folder}",
            )
        checked.add((spec.code, spec.handler))
    return None


def _load_json(text: str) -> Any:
    """JSON is YAML too, and parses an order of magnitude faster: try it first for ``{...}``."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
    except RecursionError:  # YAML's loader refuses the same nesting; say it the same way
        raise SpecError("not valid JSON: exceeded maximum nesting depth") from None


def _spec_error(exc: ValidationError, node: yaml.Node | None, source: str) -> SpecError:
    """Turn pydantic's first error into one SpecError naming component, field and line."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    line = _line_of(node, loc)
    kinds = {k.value for k in Kind}
    component = None
    if len(loc) >= 2 and loc[0] == "components":
        component = loc[1]
        loc = [p for p in loc[2:] if p not in kinds]
    elif loc[:1] == ["components"]:
        loc = ["components"]
    field = ".".join(loc) or None
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        message = "required field is missing"
    elif err["type"] == "extra_forbidden":
        message = "unknown field"
    elif err["type"] == "union_tag_invalid":
        allowed = ", ".join(k.value for k in Kind)
        message = f"unknown kind {err['input'].get('kind')!r} (one of: {allowed})"
    elif err["type"] == "union_tag_not_found":
        message = "missing 'kind'"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return SpecError(message, source=source, component=component, field=field, line=line)


def _line_of(node: yaml.Node | None, loc: list[str]) -> int | None:
    """The 1-based line of the deepest YAML node found along ``loc``."""
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if node is not None:
                line = node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
            line = node.start_mark.line + 1
        else:
            break
    return line
