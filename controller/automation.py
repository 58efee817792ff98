"""The automation switch: whether the watchers may fail over on their own.

Called by the journal (``failover automation pause|resume|show`` and every watcher read it
through it). One item of the control table, so that every watcher in every region sees the
same switch.
"""

from __future__ import annotations

from typing import Any

from controller.controltable import ControlTable, as_float, item

PK = SK = "automation"


class AutomationSwitch:
    """Read and flip the automation item of ``table``."""

    def __init__(self, table: ControlTable) -> None:
        self.table = table

    def read(self) -> dict[str, Any]:
        """``{"paused": bool, "by": str, "reason": str, "since": float}``."""
        got = self.table.get(PK, SK) or {}
        return {
            "paused": bool(got.get("paused", False)),
            "by": got.get("by", ""),
            "reason": got.get("reason", ""),
            "since": as_float(got.get("since")),
        }

    def set(self, paused: bool, by: str, reason: str = "") -> None:
        """Pause or resume automatic failover (kept in the control table for every watcher)."""
        self.table.call(
            "put_item",
            Item=item(PK, SK, paused=paused, by=by, reason=reason, since=self.table.clock()),
        )
