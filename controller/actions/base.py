"""The action interface: read the state of one component in one region, activate, fence, verify.

Called by the executor (one action per plan step) and by ``health``. The shared work lives here,
once: the idempotence check ("already in the wanted state: nothing to do"), the read-back
verification, and turning every botocore error into a transient or permanent step error that
names the component and the region. A kind implements only ``_read``, ``_activate`` and
``_deactivate`` (the pattern of powertools' parameter providers).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from controller.aws import Clients, classify
from controller.manifest import ComponentRef, Manifest
from controller.spec import DegradedMode, Topology

log = logging.getLogger(__name__)


class State(StrEnum):
    """What a component is doing in a region."""

    ACTIVE = "active"
    STANDBY = "standby"
    FENCED = "fenced"
    DEGRADED = "degraded"
    MISSING = "missing"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Observed:
    """One read of a component's real state."""

    state: State
    healthy: bool = True
    detail: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What an activate or deactivate did: whether it changed anything, and the state read back."""

    changed: bool
    observed: Observed


class Action(ABC):
    """Read, activate, fence and verify one component in one region.

    Subclasses set ``kind`` and implement ``_read``, ``_activate`` and ``_deactivate``; each of
    those sets a state, never toggles one, so doing it twice is doing it once.
    """

    kind: ClassVar[str]
    #: The state a fenced component is left in (a table is not fenced, it stays as it is).
    fenced_state: ClassVar[State] = State.FENCED

    def __init__(self, topology: Topology, manifest: Manifest, clients: Clients,
                 component: str, region: str) -> None:
        self.topology = topology
        self.manifest = manifest
        self.clients = clients
        self.component = component
        self.region = region

    @property
    def ref(self) -> ComponentRef:
        """This component's physical resource in this region."""
        return self.manifest.ref(self.component, self.region)

    @property
    def spec(self) -> Any:
        """This component's declaration in the topology."""
        return self.topology.components[self.component]

    def client(self, service: str) -> Any:
        """A client of ``service`` in this action's region."""
        return self.clients.client(service, self.region)

    # -- the public, shared part -------------------------------------------------------------

    def read(self) -> Observed:
        """Read the real state (raises a transient or permanent step error)."""
        observed: Observed = self._guard(self._read)
        return observed

    def activate(self, mode: DegradedMode | None = None) -> Outcome:
        """Make the component serve in this region (in ``mode`` when degraded); idempotent."""
        want = State.DEGRADED if mode else State.ACTIVE
        before = self.read()
        if before.state == want and self._mode_matches(before, mode):
            log.info("%s/%s already %s: nothing to do", self.component, self.region, want)
            return Outcome(False, before)
        self._guard(lambda: self._activate(mode))
        return Outcome(True, self.read())

    def deactivate(self) -> Outcome:
        """Fence the component in this region: it consumes and serves nothing; idempotent."""
        before = self.read()
        if before.state in (self.fenced_state, State.MISSING):
            log.info("%s/%s already %s: nothing to do", self.component, self.region, before.state)
            return Outcome(False, before)
        self._guard(self._deactivate)
        return Outcome(True, self.read())

    def verify(self, want: State) -> bool:
        """Read the state back and say whether it is ``want``."""
        return self.read().state == want

    # -- what a kind implements --------------------------------------------------------------

    @abstractmethod
    def _read(self) -> Observed:
        """Read the state with real API calls."""

    @abstractmethod
    def _activate(self, mode: DegradedMode | None) -> None:
        """Set the active (or degraded) state with real API calls."""

    @abstractmethod
    def _deactivate(self) -> None:
        """Set the fenced state with real API calls."""

    # -- helpers -----------------------------------------------------------------------------

    def _mode_matches(self, observed: Observed, mode: DegradedMode | None) -> bool:
        return observed.facts.get("mode") in (None, mode.value if mode else "active")

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            raise classify(exc, component=self.component, region=self.region) from exc
