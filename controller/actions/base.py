"""The action interface: read the state of one component in one region, activate, fence.

Called by the executor (one action per plan step) and by ``health``. The shared work lives here,
once: the component's mode parameter (read into ``facts["mode"]``, written after every change),
the idempotence check ("already in the wanted state: nothing to do"), the read-back verification,
and turning every botocore error into a transient or permanent step error that names the
component and the region. A kind implements only ``_read``, ``_activate`` and ``_deactivate``
(the pattern of powertools' parameter providers).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from controller.actions import mode as modes
from controller.actions.state import REGION_MODES, state_of
from controller.actions.state import State as State  # the actions' vocabulary
from controller.aws import Clients, classify
from controller.aws import is_not_found as is_not_found  # the actions read it from here
from controller.aws.background import in_background
from controller.contract import DegradedMode, Mode
from controller.errors import PermanentStepError, TransientStepError
from controller.topology import Topology
from controller.topology.manifest import ComponentRef, Manifest

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Seconds a global resource waits for its region's mode parameter before going on without it.
MODE_WAIT = 2.0


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


def missing(what: str) -> Observed:
    """The observation of a resource that does not exist."""
    return Observed(State.MISSING, healthy=False, detail=f"{what} does not exist")


class Action(ABC):
    """Read, activate and fence one component in one region (each change read back).

    Subclasses set ``kind`` and implement ``_read``, ``_activate`` and ``_deactivate``; each of
    those sets a state, never toggles one, so doing it twice is doing it once. ``_read`` returns
    the resource's own state; the component's mode (its parameter, else the region's) refines it
    here: a *passive* kind (a queue, a table: nothing to switch off) takes its state from the mode
    alone, an active one (a function, a rule, the DNS) is degraded when it serves in a degraded
    mode.
    """

    kind: ClassVar[str]
    #: The state a fenced component is left in.
    fenced_state: ClassVar[State] = State.FENCED
    #: True when the resource has no on/off switch: its state is its mode parameter.
    passive: ClassVar[bool] = False
    #: True when "switched off and told fenced" is fenced (a rule); False when fencing has a
    #: mark of its own that ``_read`` reports (a function's concurrency 0).
    off_is_fenced: ClassVar[bool] = True
    #: True when the resource lives in the global endpoint (DNS): the region's mode parameter
    #: is then best effort, so that a dead region can still be fenced.
    global_resource: ClassVar[bool] = False

    def __init__(
        self, topology: Topology, manifest: Manifest, clients: Clients, component: str, region: str
    ) -> None:
        self.topology = topology
        self.manifest = manifest
        self.clients = clients
        self.component = component
        self.region = region
        self._region_silent = False
        #: What the read before an activate or a fence saw: ``_activate``/``_deactivate`` act
        #: on it instead of reading again (the read after the change verifies).
        self.before: Observed | None = None

    @property
    def region_silent(self) -> bool:
        """True once this region left a best-effort mode parameter call unanswered (a global
        resource only): the caller need not ask the region anything more."""
        return self._region_silent

    def assume_silent(self) -> None:
        """Skip the region's best-effort mode parameter from now on: the caller already knows
        the region does not answer (a global resource acts without it)."""
        self._region_silent = True

    @property
    def ref(self) -> ComponentRef:
        """This component's physical resource in this region."""
        return self.manifest.ref(self.component, self.region)

    @property
    def spec(self) -> Any:
        """This component's declaration in the topology."""
        return self.topology.components[self.component]

    # -- the public, shared part -------------------------------------------------------------

    def read(self, parameters: Mapping[str, str] | None = None) -> Observed:
        """Read the real state (raises a transient or permanent step error).

        ``parameters``: the region's mode parameters as a caller read them just before, in one
        batch for every component (``health``: a name absent does not exist); else this reads
        its own two in one call.
        """
        component_mode, region_mode = self._guard(lambda: self._read_modes(parameters))
        observed = self._guard(self._read)
        facts = {**observed.facts, "mode": component_mode, "region_mode": region_mode}
        # A component mode of no opinion ("normal", as Pulumi deploys it) defers to the region's.
        effective = component_mode if component_mode in REGION_MODES else region_mode
        return replace(observed, state=self._settle(observed.state, effective), facts=facts)

    def activate(self, mode: DegradedMode | None = None) -> Outcome:
        """Make the component serve in this region (in ``mode`` when degraded); idempotent."""
        want = State.DEGRADED if mode else State.ACTIVE
        value = mode.value if mode else Mode.ACTIVE
        before = self.read()
        if before.state == State.MISSING:
            raise PermanentStepError(
                before.detail or f"{self.kind} is missing",
                component=self.component,
                region=self.region,
            )
        if before.state == want and self._mode_is(before, value):
            log.info("%s/%s already %s: nothing to do", self.component, self.region, want)
            return Outcome(False, before)
        self.before = before
        self._guard(lambda: self._activate(mode))
        self._write_mode(value)
        return Outcome(True, self._expect(want))

    def deactivate(self) -> Outcome:
        """Fence the component in this region: it consumes and serves nothing; idempotent."""
        before = self.read()
        if before.state == State.MISSING or (
            before.state == self.fenced_state and self._mode_is(before, Mode.FENCED)
        ):
            log.info("%s/%s already %s: nothing to do", self.component, self.region, before.state)
            return Outcome(False, before)
        self.before = before
        self._guard(self._deactivate)
        self._write_mode(Mode.FENCED)
        return Outcome(True, self._expect(self.fenced_state))

    # -- what a kind implements --------------------------------------------------------------

    @abstractmethod
    def _read(self) -> Observed:
        """Read the resource's own state with real API calls (``missing(...)`` when absent)."""

    @abstractmethod
    def _activate(self, mode: DegradedMode | None) -> None:
        """Set the active (or degraded) state with real API calls."""

    @abstractmethod
    def _deactivate(self) -> None:
        """Set the fenced state with real API calls."""

    # -- helpers -----------------------------------------------------------------------------

    def _settle(self, state: State, mode: str | None) -> State:
        """Refine the resource's own state with the mode it was told to serve in."""
        if state in (State.MISSING, State.UNREACHABLE) or mode is None:
            return state
        named = state_of(mode)
        if self.passive:
            return named
        if state == State.STANDBY and named == State.FENCED and self.off_is_fenced:
            return State.FENCED
        if state != State.ACTIVE or named == State.ACTIVE:
            return state
        if named == State.FENCED:
            # Switched on although told fenced (a fence that did not land, a region that came
            # back as it went down, its components' modes deferring to the region's): it serves.
            return State.ACTIVE
        # Switched on but told to degrade (degraded), or told not to serve at all (standby).
        return State.DEGRADED if named == State.DEGRADED else State.STANDBY

    def _mode_is(self, observed: Observed, value: str) -> bool:
        got = observed.facts.get("mode")
        if got is None and self.global_resource:
            return True
        return bool(got == value)

    def _seen(self) -> dict[str, Any]:
        """The facts of the read before this change, or a fresh read when there was none."""
        return (self.before or self._read()).facts

    def _expect(self, want: State) -> Observed:
        """Read back after a change; a state other than ``want`` is worth a retry."""
        after = self.read()
        if after.state != want:
            raise TransientStepError(
                f"read back {after.state}, wanted {want}: {after.detail}",
                component=self.component,
                region=self.region,
            )
        return after

    @property
    def mode_parameter(self) -> str:
        """The SSM parameter that carries this component's mode in this region."""
        ref = self.manifest.regions.get(self.region)
        named = ref.components.get(self.component) if ref else None
        return (
            named.mode_parameter
            if named and named.mode_parameter
            else self.topology.component_mode_parameter(self.component, self.region)
        )

    def _read_modes(
        self, parameters: Mapping[str, str] | None = None
    ) -> tuple[str | None, str | None]:
        region_parameter = modes.parameter_of(self.topology, self.manifest, self.region)
        if parameters is not None:
            return parameters.get(self.mode_parameter), parameters.get(region_parameter)

        def read() -> tuple[str | None, str | None]:
            return modes.read_modes(
                self.clients, self.region, self.mode_parameter, region_parameter
            )

        if self.global_resource:
            unknown: tuple[str | None, str | None] = (None, None)
            return self._best_effort("read", read, unknown)
        return read()

    def _write_mode(self, value: str) -> None:
        def write() -> None:
            modes.put(self.clients, self.region, self.mode_parameter, value)

        if self.global_resource:
            self._best_effort("write", write, None)
        else:
            self._guard(write)

    def _best_effort(self, what: str, fn: Callable[[], T], default: T) -> T:
        """Run ``fn`` against the region for at most ``MODE_WAIT`` seconds, else ``default``.

        A global resource's mode lives in its region, which may be the dead one being fenced:
        its traffic must move anyway. A late call finishes in a daemon thread (same value: a
        late write is harmless); after one failure the region is not asked again.
        """
        if self._region_silent:
            return default
        call = in_background(fn, name=f"mode-{self.region}")
        try:
            return call.result(timeout=MODE_WAIT)
        except Exception as exc:
            why: object = exc if call.done() else f"no answer in {MODE_WAIT}s"
        self._region_silent = True
        log.log(
            logging.WARNING if what == "write" else logging.INFO,
            "%s/%s: mode parameter %s skipped: %s",
            self.component,
            self.region,
            what,
            why,
        )
        return default

    def _guard(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except Exception as exc:
            raise classify(exc, component=self.component, region=self.region) from exc


class PassiveAction(Action):
    """A kind with no on/off switch (a queue, a table): its state is its mode parameter.

    Activating and fencing only check that the resource exists (the shared part does that) and
    write the mode; the functions that use the resource read the mode and answer accordingly.
    """

    passive = True

    def _activate(self, mode: DegradedMode | None) -> None:
        """Nothing to switch on: the resource serves whenever it exists."""

    def _deactivate(self) -> None:
        """Nothing to switch off: fencing is the mode parameter alone."""
