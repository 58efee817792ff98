"""An EventBridge custom event bus: its rules ``ENABLED`` only in the active region.

The bus itself has no on/off switch; what it delivers is decided by its rules. Fencing disables
every rule of the bus in the fenced region, so events published there (by a late client or a
function still running) reach no target; activating enables them. State: ``active`` when every
rule is enabled, ``standby`` when every rule is disabled, ``degraded`` (unhealthy) when they
disagree, which an activate or a fence then sets right.
"""

from __future__ import annotations

from typing import Any

from controller.actions.base import Action, Observed, State, is_not_found, missing
from controller.contract import DegradedMode
from controller.topology.kinds import BusSpec


class BusAction(Action):
    """Enable or disable every rule of a bus; read their states back with ``describe_rule``."""

    kind = "bus"

    @property
    def rules(self) -> list[str]:
        """The AWS names of the bus's rules in this region, in declared order."""
        spec: BusSpec = self.spec
        return [BusSpec.rule_name(self.ref.name, rule) for rule in spec.rules]

    def _read(self) -> Observed:
        events = self.clients.client("events", self.region)
        states: dict[str, Any] = {}
        for rule in self.rules:
            try:
                states[rule] = events.describe_rule(Name=rule, EventBusName=self.ref.name)["State"]
            except Exception as exc:
                if is_not_found(exc):
                    return missing(f"rule {rule} on bus {self.ref.name}")
                raise
        facts = {"bus": self.ref.name, "rules": states}
        enabled = [state == "ENABLED" for state in states.values()]
        if all(enabled):
            return Observed(State.ACTIVE, facts=facts)
        if not any(enabled):
            return Observed(State.STANDBY, facts=facts)
        off = ", ".join(rule for rule, state in states.items() if state != "ENABLED")
        return Observed(
            State.DEGRADED, healthy=False, facts=facts, detail=f"rules disagree: {off} not enabled"
        )

    def _activate(self, mode: DegradedMode | None) -> None:
        if mode == DegradedMode.UNAVAILABLE:
            self._set("DISABLED")
        else:
            self._set("ENABLED")

    def _deactivate(self) -> None:
        self._set("DISABLED")

    def _set(self, state: str) -> None:
        """Set every rule to ``state``; a rule already there is left alone (no call)."""
        events = self.clients.client("events", self.region)
        seen: dict[str, Any] = self._seen().get("rules") or {}
        for rule in self.rules:
            if seen.get(rule) == state:
                continue
            if state == "ENABLED":
                events.enable_rule(Name=rule, EventBusName=self.ref.name)
            else:
                events.disable_rule(Name=rule, EventBusName=self.ref.name)

    def _settle(self, state: State, mode: str | None) -> State:
        # Degraded to "unavailable" is a bus whose rules are all disabled; rules that disagree
        # are not that yet (so that activating in that mode still disables the rest).
        if mode == DegradedMode.UNAVAILABLE.value:
            if state == State.STANDBY:
                return State.DEGRADED
            if state == State.DEGRADED:
                return State.STANDBY
        return super()._settle(state, mode)
