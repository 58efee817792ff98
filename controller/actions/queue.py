"""An SQS queue and its dead-letter queue: exists, and redrives to the DLQ the manifest names.

Fencing a queue changes nothing in SQS (producers and pollers are fenced where they run); it
writes the queue's mode, which the functions read.
"""

from __future__ import annotations

import json

from controller.actions.base import Observed, PassiveAction, State, is_not_found, missing


class QueueAction(PassiveAction):
    """Read a queue's depth and its redrive policy."""

    kind = "queue"

    def _read(self) -> Observed:
        sqs = self.clients.client("sqs", self.region)
        try:
            url = self.ref.queue_url or sqs.get_queue_url(QueueName=self.ref.name)["QueueUrl"]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"queue {self.ref.name}")
            raise
        redrive = json.loads(attrs.get("RedrivePolicy") or "{}")
        dlq = redrive.get("deadLetterTargetArn")
        facts = {
            "messages": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "dlq": dlq,
        }
        wants_dlq = bool(getattr(self.spec, "dlq", True))
        expected = self.ref.dlq_arn
        if wants_dlq and (not dlq or (expected and dlq != expected)):
            return Observed(
                State.ACTIVE,
                healthy=False,
                facts=facts,
                detail=f"no redrive to the dead-letter queue {expected or ''}",
            )
        return Observed(State.ACTIVE, facts=facts)
