"""The worker: applies queued orders to the table (SQS batch, partial failures reported)."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Tracer
from orders import OrdersService, build

#: The AWS calls this handler makes (on its dependencies; the platform's own, such as reading
#: the mode parameters, are not listed): the Pulumi program grants these and nothing more.
AWS_CALLS = ("dynamodb:PutItem", "dynamodb:Scan", "ssm:GetParameter")

_service: OrdersService | None = None
# X-Ray in Lambda; off anywhere else (tests, the sandbox), so no daemon is needed.
tracer = Tracer(disabled=not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def handle(event: dict[str, Any], service: OrdersService) -> dict[str, Any]:
    """Put every queued order once; report the ones not applied so SQS redelivers them.

    A schedule event (the nightly report) only counts the orders; a region that may not
    consume (standby, fenced) reports every message as failed, so nothing is lost.
    """
    records = event.get("Records")
    if records is None:  # EventBridge schedule
        count = service.dynamodb.scan(TableName=service.settings.table, Select="COUNT")["Count"]
        service.logger.info("nightly report", extra={"orders": count})
        return {"orders": count}
    if not service.consuming():
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
    failures = []
    for record in records:
        try:
            service.put(service.validate(json.loads(record["body"])))
        except Exception as exc:
            service.logger.warning("order not applied", extra={"error": str(exc)})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point."""
    global _service
    if _service is None:
        _service = build(os.environ)
    return handle(event, _service)
