"""An EventBridge schedule rule: ``ENABLED`` only in the active region."""

from __future__ import annotations

from controller.actions.base import Action, Observed, State, is_not_found, missing
from controller.contract import DegradedMode


class ScheduleAction(Action):
    """Enable or disable a rule; read its state back with ``describe_rule``."""

    kind = "schedule"

    def _read(self) -> Observed:
        try:
            rule = self.clients.client("events", self.region).describe_rule(Name=self.ref.name)
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"rule {self.ref.name}")
            raise
        enabled = rule.get("State") == "ENABLED"
        return Observed(
            State.ACTIVE if enabled else State.STANDBY,
            facts={"rule_state": rule.get("State"), "expression": rule.get("ScheduleExpression")},
        )

    def _activate(self, mode: DegradedMode | None) -> None:
        if mode == DegradedMode.UNAVAILABLE:
            self.clients.client("events", self.region).disable_rule(Name=self.ref.name)
        else:
            self.clients.client("events", self.region).enable_rule(Name=self.ref.name)

    def _deactivate(self) -> None:
        self.clients.client("events", self.region).disable_rule(Name=self.ref.name)

    def _settle(self, state: State, mode: str | None) -> State:
        # Degraded to "unavailable" is a disabled rule.
        if state == State.STANDBY and mode == DegradedMode.UNAVAILABLE.value:
            return State.DEGRADED
        return super()._settle(state, mode)
