"""An SSM parameter the functions read (configuration): it exists."""

from __future__ import annotations

from controller.actions.base import Observed, PassiveAction, State, is_not_found, missing


class ParameterAction(PassiveAction):
    """Read a parameter's existence and version (never its value)."""

    kind = "parameter"

    def _read(self) -> Observed:
        try:
            ssm = self.clients.client("ssm", self.region)
            got = ssm.get_parameter(Name=self.ref.name)["Parameter"]
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"parameter {self.ref.name}")
            raise
        return Observed(
            State.ACTIVE, facts={"version": got.get("Version"), "type": got.get("Type")}
        )
