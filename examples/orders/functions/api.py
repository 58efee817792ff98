"""The API function: GET /orders/{id}, POST /orders, GET /health (HTTP API, payload 2.0)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Tracer
from orders import OrdersService, Response, build

#: The AWS calls this handler makes (on its dependencies; the platform's own, such as reading
#: the mode parameters, are not listed): the Pulumi program grants these and nothing more.
AWS_CALLS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "sqs:SendMessage",
    "ssm:GetParameter",
    "events:PutEvents",
)

_service: OrdersService | None = None
# X-Ray in Lambda; off anywhere else (tests, the sandbox), so no daemon is needed.
tracer = Tracer(disabled=not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def handle(event: dict[str, Any], service: OrdersService) -> dict[str, Any]:
    """Route one HTTP API event to the service and answer in the proxy shape."""
    http = event.get("requestContext", {}).get("http", {})
    method, path = http.get("method", "GET"), event.get("rawPath", "/")
    params = event.get("pathParameters") or {}
    if method == "GET" and path == "/health":
        return Response(200, {"status": "ok", "mode": service.modes.current()}).to_proxy()
    if method == "GET" and path.startswith("/orders/"):
        order_id = params.get("id") or path.rsplit("/", 1)[-1]
        return service.get_order(order_id).to_proxy()
    if method == "POST" and path == "/orders":
        return service.create_order(event.get("body") or "").to_proxy()
    return Response(404, {"message": f"no route {method} {path}"}).to_proxy()


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: one warm service per container."""
    global _service
    if _service is None:
        _service = build(os.environ)
    with _service.logger.append_context_keys(
        mode=_service.modes.last, region=_service.settings.region
    ):
        return handle(event, _service)
