"""A DynamoDB table: ``ACTIVE``, its stream, and its replicas where it is a global table.

A table is not fenced (a global table stays writable everywhere): writers are fenced where they
run, and the table's mode tells the functions whether to write. :func:`read_replication_lag` gives
the plan's precheck a replica's lag.
"""

from __future__ import annotations

from datetime import timedelta

from controller import clock
from controller.actions.base import Observed, PassiveAction, State, is_not_found, missing
from controller.aws import Clients, classify
from controller.contract import DegradedMode
from controller.errors import TransientStepError
from controller.topology.manifest import Manifest


class TableAction(PassiveAction):
    """Read a table's status, stream and replicas."""

    kind = "table"

    def _read(self) -> Observed:
        try:
            table = self.clients.client("dynamodb", self.region).describe_table(
                TableName=self.ref.name
            )["Table"]
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"table {self.ref.name}")
            raise
        status = str(table.get("TableStatus", ""))
        stream = table.get("StreamSpecification", {}).get("StreamEnabled", False)
        replicas = {
            r.get("RegionName", ""): r.get("ReplicaStatus", "") for r in table.get("Replicas", [])
        }
        facts = {
            "status": status,
            "stream": bool(stream),
            "replicas": replicas,
            "items": table.get("ItemCount"),
        }
        healthy = status == "ACTIVE" and all(s == "ACTIVE" for s in replicas.values())
        if getattr(self.spec, "stream", False) and not stream:
            return Observed(State.ACTIVE, healthy=False, detail="stream disabled", facts=facts)
        return Observed(
            State.ACTIVE, healthy=healthy, detail="" if healthy else f"status {status}", facts=facts
        )

    def _activate(self, mode: DegradedMode | None) -> None:
        """A table serves once it (and its replicas) are ``ACTIVE``; until then, retry."""
        facts = self._seen()
        statuses = {facts.get("status"), *facts.get("replicas", {}).values()}
        if statuses != {"ACTIVE"}:
            raise TransientStepError(
                f"table not writable yet: {sorted(map(str, statuses))}",
                component=self.component,
                region=self.region,
            )


def read_replication_lag(
    clients: Clients,
    manifest: Manifest,
    component: str,
    source: str,
    target: str,
    *,
    window_seconds: int = 300,
) -> tuple[float | None, float | None]:
    """Seconds ``target``'s replica of ``component`` lags ``source``, worst over the window, and
    the newest datapoint's timestamp (epoch seconds: the start of its 60-second period, the
    finest this standard-resolution metric has).

    Reads CloudWatch's ``AWS/DynamoDB`` ``ReplicationLatency`` (milliseconds), which AWS emits in
    the source region per receiving region (the sandbox's replicator publishes the same metric).
    ``(None, None)`` when there is no datapoint: nothing is known, which a precheck must not take
    for 0.
    """
    end = clock.utcnow() + timedelta(seconds=60)  # include the current minute
    try:
        got = clients.client("cloudwatch", source).get_metric_statistics(
            Namespace="AWS/DynamoDB",
            MetricName="ReplicationLatency",
            Dimensions=[
                {"Name": "TableName", "Value": manifest.ref(component, source).name},
                {"Name": "ReceivingRegion", "Value": target},
            ],
            StartTime=end - timedelta(seconds=window_seconds),
            EndTime=end,
            Period=60,
            Statistics=["Maximum"],
        )
    except Exception as exc:
        raise classify(exc, component=component, region=source) from exc
    points = got.get("Datapoints", [])
    if not points:
        return None, None
    worst = max(float(p["Maximum"]) for p in points) / 1000.0
    return worst, max(p["Timestamp"] for p in points).timestamp()
