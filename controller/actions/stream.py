"""A Kinesis data stream: ``ACTIVE`` with its shards."""

from __future__ import annotations

from controller.actions.base import Observed, PassiveAction, State, is_not_found, missing


class StreamAction(PassiveAction):
    """Read a stream's status."""

    kind = "stream"

    def _read(self) -> Observed:
        try:
            summary = self.clients.client("kinesis", self.region).describe_stream_summary(
                StreamName=self.ref.name
            )["StreamDescriptionSummary"]
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"stream {self.ref.name}")
            raise
        status = str(summary.get("StreamStatus", ""))
        facts = {"status": status, "shards": summary.get("OpenShardCount")}
        return Observed(
            State.ACTIVE,
            healthy=status in ("ACTIVE", "UPDATING"),
            detail="" if status == "ACTIVE" else f"status {status}",
            facts=facts,
        )
