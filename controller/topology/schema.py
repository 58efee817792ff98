"""The application's schema: its regions, its control table's regions, its policy, and the
whole :class:`Topology` they make with its components.

Called by the loader (:mod:`controller.topology.loading`), which validates a file against it,
and by everything that reads a topology. Each component's own model is its kind's
(:mod:`controller.topology.kinds`); the physical names come from
:class:`~controller.topology.naming.PhysicalNames`.
"""

# No ``from __future__ import annotations`` here (see controller.topology.kinds).
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Self

from pydantic import Field, PrivateAttr, field_validator, model_validator

from controller.contract import stack_qualifier
from controller.topology.kinds import NAME_PATTERN, Component, Kind, _Strict
from controller.topology.naming import PhysicalNames
from controller.topology.regions import default_control, known_regions, mrsc_set_of, mrsc_sets_text


class TargetLost(StrEnum):
    """Where a run goes when its target stops answering mid-run (``policy.on_target_lost``)."""

    #: The next healthy standby (topology order), else back to the source if it is healthy.
    NEXT_STANDBY = "next_standby"
    #: Back to the source if it is healthy, else the next healthy standby.
    SOURCE = "source"


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

    def targets(self, away_from: str) -> tuple[str, ...]:
        """The regions a failover away from ``away_from`` may pick, in order of preference:
        the standbys, then the primary.

        >>> Regions(primary="us-east-1", standby=("us-west-2", "eu-west-1")).targets("us-west-2")
        ('eu-west-1', 'us-east-1')
        """
        return tuple(r for r in (*self.standby, self.primary) if r != away_from)


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
    #: How long one step keeps trying: a failed attempt is not retried when its retry would
    #: begin after this many seconds from the step's start (an attempt in flight still ends at
    #: its client timeouts, and a target that stops answering is left as the run moves on).
    step_timeout_seconds: float = Field(default=10.0, gt=0)
    #: How many times a failed step is tried again (throttled, 5xx, read back not yet right).
    step_retries: int = Field(default=3, ge=0, le=10)
    lease_seconds: float = Field(default=60.0, gt=0)
    on_target_lost: TargetLost = TargetLost.NEXT_STANDBY
    #: Seconds between two evaluations of a watcher (the deployed watchers and ``failover watch``).
    watch_interval_seconds: float = Field(default=10.0, ge=0.2, le=50.0)


class Topology(_Strict, PhysicalNames):
    """A whole application: its name, regions, components and policy.

    Use :func:`load` to read one from a file; the graph checks (cycles, dangling references)
    live in :mod:`controller.plan.graph`.
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
    def control_regions(self) -> Control:
        """The control table's regions: the ``control`` section, else derived from the
        application's regions (:func:`controller.topology.regions.default_control`)."""
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
