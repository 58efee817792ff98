"""The kinds of component: each kind's model, and the registry of kinds.

A kind is declared once, here: its model (its fields, validated by pydantic) and, in the model's
``declared``, its tier, its action and its deployer (:class:`Declared`). Called by the schema
(:mod:`controller.topology.schema`), the graph, the actions' registry, the sandbox and ``infra``.
"""

# No ``from __future__ import annotations`` here: pydantic would evaluate each of the models'
# ~100 string annotations back with ``compile`` (about 10 ms of every command's start-up).
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controller.contract import DegradedMode, fit
from controller.topology.registry import Declared, Tier

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,47}$"


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


class OnFailure(StrEnum):
    """What the executor does when this component cannot be activated in the target."""

    DEGRADE = "degrade"
    ROLLBACK = "rollback"


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
        "function:FunctionAction",
        "regional:Region.deploy_function",
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
        "queue:QueueAction",
        "regional:Region.deploy_queue",
    )
    visibility_timeout: int = Field(default=60, ge=0, le=43200)
    max_receive_count: int = Field(default=3, ge=1, le=1000)
    dlq: bool = True


class TableSpec(_ComponentBase):
    """A DynamoDB table, a global table with a replica in every region."""

    kind: Literal["table"]
    declared = Declared(
        Tier.DATA,
        "table:TableAction",
        "regional:Region.deploy_global",
        global_part="the global table, a replica in every region",
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
        "bucket:BucketAction",
        "regional:Region.deploy_global",
        global_part="replication from every region to every other",
    )
    versioning: bool = True


class StreamSpec(_ComponentBase):
    """A Kinesis data stream."""

    kind: Literal["stream"]
    declared = Declared(
        Tier.EVENTS,
        "stream:StreamAction",
        "regional:Region.deploy_stream",
    )
    shards: int = Field(default=1, ge=1, le=500)


class ScheduleSpec(_ComponentBase):
    """An EventBridge schedule rule that invokes a function; enabled only in the active region."""

    kind: Literal["schedule"]
    declared = Declared(
        Tier.EVENTS,
        "schedule:ScheduleAction",
        "regional:Region.deploy_schedule",
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
        "parameter:ParameterAction",
        "regional:Region.deploy_parameter",
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
        "api:ApiAction",
        "regional:Region.deploy_api",
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
        "dns:DnsAction",
        None,
        switch="the failover records point at the active region's endpoint",
        global_part="the failover records, a health check per region (the zone is the account's)",
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
        "bus:BusAction",
        "bus:deploy",
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


def declared(kind: str) -> Declared:
    """What ``kind`` declares (its tier, action and deployer)."""
    return KINDS[Kind(kind)].declared
