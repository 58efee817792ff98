"""The API's answers by mode, for an HTTP API (payload v2) event.

Called by ``api.handle``. A small router rather than powertools' ``APIGatewayHttpResolver``: the
resolver keeps the current event on a shared instance, and the sandbox answers for several
regions at once in one process.

Modes: ``active`` normal; ``read_only`` reads served, writes 503; ``queue_writes`` writes 202
into the queue, reads served; ``static`` the last good answer per order kept in the instance (or
a fixed body), never touching the table; ``unavailable``/``standby``/``fenced`` 503. Every answer
outside ``active`` carries ``X-Degraded: <mode>``, every 503 a ``Retry-After``. ``GET /health``
answers 200 in every mode (it says the regional stack runs; traffic follows the controller).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from orders_core import modes
from orders_core.model import ValidationError, dumps, parse_order
from orders_core.service import Service

RETRY_AFTER = "5"
ORDER_PATH = re.compile(r"^/orders/([^/]+)/?$")
READS = frozenset({modes.ACTIVE, modes.READ_ONLY, modes.QUEUE_WRITES})


@dataclass(frozen=True)
class Response:
    """An HTTP API answer."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def to_event(self) -> dict[str, Any]:
        """The Lambda proxy (payload v2) response."""
        return {"statusCode": self.status, "isBase64Encoded": False,
                "headers": {"Content-Type": "application/json", **self.headers},
                "body": dumps(self.body)}


def unavailable(mode: str, why: str) -> Response:
    """503 with Retry-After: the client should try again (likely in another region)."""
    return Response(503, {"message": why, "mode": mode}, {"Retry-After": RETRY_AFTER})


def answer(event: dict[str, Any], service: Service) -> Response:
    """Route the event and answer it in the service's current mode."""
    http = event.get("requestContext", {}).get("http", {})
    method = str(http.get("method") or event.get("httpMethod") or "GET").upper()
    path = str(event.get("rawPath") or http.get("path") or event.get("path") or "/")
    mode = service.mode()
    if method == "GET" and path.rstrip("/") == "/health":
        response = Response(200, {"status": "ok", "mode": mode,
                                  "region": service.settings.region})
    elif method == "POST" and path.rstrip("/") == "/orders":
        response = _create(_body(event), mode, service)
    elif method == "GET" and (match := ORDER_PATH.match(path)):
        order_id = (event.get("pathParameters") or {}).get("id") or match.group(1)
        response = _read(order_id, mode, service)
    else:
        response = Response(404, {"message": f"no route for {method} {path}"})
    if mode != modes.ACTIVE:
        response = Response(response.status, response.body,
                            {**response.headers, "X-Degraded": mode})
    service.log.info("answered", extra={**service.context(mode), "method": method,
                                        "path": path, "status": response.status})
    return response


def _body(event: dict[str, Any]) -> str | None:
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        return base64.b64decode(body).decode("utf-8", "replace")
    return body if body is None else str(body)


def _read(order_id: str, mode: str, service: Service) -> Response:
    if mode == modes.STATIC:
        return _static(order_id, service)
    if mode not in READS:
        return unavailable(mode, f"this region is {mode}")
    if service.table is None:
        return unavailable(mode, "no orders table configured")
    try:
        item = service.table.get(order_id)
    except (BotoCoreError, ClientError) as exc:
        service.log.warning("table read failed: %s", exc, extra=service.context(mode))
        cached = service.static.get(order_id)
        if cached is None:
            return unavailable(mode, "orders table unavailable")
        return Response(200, json.loads(cached), {"X-Degraded": modes.STATIC})
    if item is None:
        return Response(404, {"message": f"order {order_id} not found"})
    service.static.put(order_id, dumps(item))
    return Response(200, item)


def _static(order_id: str, service: Service) -> Response:
    cached = service.static.get(order_id)
    if cached is not None:
        return Response(200, json.loads(cached))
    return Response(200, {"order_id": order_id, "status": "unknown",
                          "message": "degraded: order details are not available right now"})


def _create(body: str | None, mode: str, service: Service) -> Response:
    if mode not in (modes.ACTIVE, modes.QUEUE_WRITES):
        return unavailable(mode, f"writes are not accepted: this region is {mode}")
    config = service.config.get()
    try:
        order = parse_order(body, int(config["max_items"]), str(config["currency"]))
    except ValidationError as exc:
        return Response(400, {"message": str(exc)})
    try:
        if mode == modes.QUEUE_WRITES:
            if service.queue is None:
                return unavailable(mode, "no queue configured")
            service.queue.send(order)
            return Response(202, {"order_id": order.order_id, "status": "queued"})
        if service.table is None:
            return unavailable(mode, "no orders table configured")
        created = service.table.put_new(order)
    except (BotoCoreError, ClientError) as exc:
        service.log.warning("write failed: %s", exc, extra=service.context(mode))
        return unavailable(mode, "the write could not be stored; retry")
    if created:
        return Response(201, {**order.to_item(), "status": "created"},
                        {"Location": f"/orders/{order.order_id}"})
    return Response(200, {"order_id": order.order_id, "status": "exists"},
                    {"Location": f"/orders/{order.order_id}"})
