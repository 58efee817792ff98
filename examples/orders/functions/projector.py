"""The projector: writes a receipt for every new order (DynamoDB stream)."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Tracer
from orders import OrdersService, build

#: The AWS calls this handler makes (on its dependencies; the platform's own, such as reading
#: the mode parameters, are not listed): the Pulumi program grants these and nothing more.
AWS_CALLS = ("s3:PutObject",)

_service: OrdersService | None = None
# X-Ray in Lambda; off anywhere else (tests, the sandbox), so no daemon is needed.
tracer = Tracer(disabled=not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def handle(event: dict[str, Any], service: OrdersService) -> dict[str, Any]:
    """A receipt per INSERT; replicated copies (from another region) are not projected again."""
    written = []
    for record in event.get("Records", []):
        image = record.get("dynamodb", {}).get("NewImage", {})
        if record.get("eventName") != "INSERT" or "_replicated_from" in image:
            continue
        order = json.loads(image["body"]["S"])
        written.append(service.write_receipt(order))
    return {"receipts": written}


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point."""
    global _service
    if _service is None:
        _service = build(os.environ)
    return handle(event, _service)
