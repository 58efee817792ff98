"""The worker's and the projector's record logic, and the mode rule for consumers.

Called by ``worker.handle`` and ``projector.handle``. A consumer works only in ``active``; in any
other mode (fenced, standby, degraded, unknown) it reports every record as failed, so nothing is
consumed and the records come back later (the queue's redrive, the stream's retry).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from orders_core import modes
from orders_core.model import parse_order
from orders_core.service import Service


def refuse_all(records: list[dict[str, Any]], key: str) -> PartialItemFailureResponse:
    """Every record reported failed: nothing is consumed."""
    return {"batchItemFailures": [{"itemIdentifier": _ident(r, key)} for r in records]}


def _ident(record: dict[str, Any], key: str) -> str:
    if key == "messageId":
        return str(record.get("messageId", ""))
    return str(record.get("dynamodb", {}).get("SequenceNumber", ""))


def apply_orders(event: dict[str, Any], service: Service) -> PartialItemFailureResponse:
    """Put each queued order into the table, idempotently; failed records are reported."""
    mode = service.mode()
    records = event.get("Records", [])
    if mode != modes.ACTIVE or service.table is None:
        service.log.info("not consuming", extra={**service.context(mode), "n": len(records)})
        return refuse_all(records, "messageId")
    table, config = service.table, service.config.get()

    def one(record: SQSRecord) -> None:
        order = parse_order(record.body, int(config["max_items"]), str(config["currency"]))
        written = table.put_new(order)
        service.log.info("order applied" if written else "order already there",
                         extra={**service.context(mode), "order_id": order.order_id})

    processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=one, processor=processor)


def project_receipts(event: dict[str, Any], service: Service) -> PartialItemFailureResponse:
    """Write ``receipts/<order_id>.json`` for every INSERT of the stream batch."""
    mode = service.mode()
    records = event.get("Records", [])
    if mode != modes.ACTIVE or service.receipts is None:
        service.log.info("not consuming", extra={**service.context(mode), "n": len(records)})
        return refuse_all(records, "SequenceNumber")
    receipts = service.receipts

    def one(record: Any) -> None:
        if record.event_name != DynamoDBRecordEventName.INSERT:
            return
        order = record.dynamodb.new_image or record.dynamodb.keys
        key = receipts.put({**order, "region": service.settings.region})
        service.log.info("receipt written", extra={**service.context(mode), "key": key})

    processor = BatchProcessor(EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=one, processor=processor)


def nightly_report(service: Service) -> dict[str, Any]:
    """The scheduled run: count the orders (only in ``active``: a fenced region reports nothing)."""
    mode = service.mode()
    if mode != modes.ACTIVE or service.table is None:
        return {"report": "skipped", "mode": mode}
    count = service.table.count()
    service.log.info("nightly report", extra={**service.context(mode), "orders": count})
    return {"report": "done", "orders": count, "mode": mode}
