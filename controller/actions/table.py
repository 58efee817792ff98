"""A DynamoDB table: ``ACTIVE``, its stream, and its replicas where it is a global table.

A table is not fenced (a global table stays writable everywhere): writers are fenced where they
run, and the table's mode tells the functions whether to write.
"""

from __future__ import annotations

from typing import Any

from controller.actions.base import Observed, PassiveAction, State, is_not_found, missing


class TableAction(PassiveAction):
    """Read a table's status, stream and replicas."""

    kind = "table"

    def _read(self) -> Observed:
        try:
            table: dict[str, Any] = self.client("dynamodb").describe_table(
                TableName=self.ref.name)["Table"]
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"table {self.ref.name}")
            raise
        status = str(table.get("TableStatus", ""))
        stream = table.get("StreamSpecification", {}).get("StreamEnabled", False)
        replicas = {r.get("RegionName", ""): r.get("ReplicaStatus", "")
                    for r in table.get("Replicas", [])}
        facts = {"status": status, "stream": bool(stream), "replicas": replicas,
                 "items": table.get("ItemCount")}
        healthy = status == "ACTIVE" and all(s == "ACTIVE" for s in replicas.values())
        if getattr(self.spec, "stream", False) and not stream:
            return Observed(State.ACTIVE, healthy=False, detail="stream disabled", facts=facts)
        return Observed(State.ACTIVE, healthy=healthy,
                        detail="" if healthy else f"status {status}", facts=facts)
