"""An order: its validation from a request body and its DynamoDB/JSON shapes.

A body is ``{"order_id"?: str, "items": [{"sku": str, "quantity": int, "price": number}]}``; the
total is computed here, never trusted from the client. A client-supplied ``order_id`` makes a
retried write idempotent; without one a uuid is assigned.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ValidationError(ValueError):
    """A request the client must fix (answered 400 with this message)."""


@dataclass(frozen=True)
class Order:
    """A validated order."""

    order_id: str
    items: tuple[dict[str, Any], ...]
    total: Decimal
    currency: str
    created_at: str

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (numbers as Decimal)."""
        return {"order_id": self.order_id, "items": list(self.items), "total": self.total,
                "currency": self.currency, "created_at": self.created_at}

    def to_message(self) -> str:
        """The SQS message body the worker applies later (same shape as a POST body)."""
        return dumps({**self.to_item(), "total": str(self.total)})


def parse_order(body: str | None, max_items: int, currency: str) -> Order:
    """Validate a POST body (or a queued message) into an :class:`Order`.

    >>> parse_order('{"order_id": "a1", "items": [{"sku": "x", "quantity": 2, "price": 1.5}]}',
    ...             50, "EUR").total
    Decimal('3.0')
    """
    try:
        data = json.loads(body or "", parse_float=Decimal)
    except ValueError as exc:
        raise ValidationError(f"body is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ValidationError("body must be a JSON object")
    order_id = data.get("order_id") or str(uuid.uuid4())
    if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
        raise ValidationError("order_id must be 1-64 letters, digits, '-' or '_'")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise ValidationError("items is required: a non-empty list")
    if len(items) > max_items:
        raise ValidationError(f"too many items: {len(items)} (at most {max_items})")
    parsed = tuple(_item(i, item) for i, item in enumerate(items))
    total = sum((it["quantity"] * it["price"] for it in parsed), Decimal(0))
    return Order(order_id, parsed, total, str(data.get("currency") or currency),
                 str(data.get("created_at") or datetime.now(UTC).isoformat()))


def _item(index: int, item: Any) -> dict[str, Any]:
    where = f"items[{index}]"
    if not isinstance(item, dict):
        raise ValidationError(f"{where} must be an object with sku, quantity and price")
    sku, quantity = item.get("sku"), item.get("quantity")
    if not isinstance(sku, str) or not sku:
        raise ValidationError(f"{where}.sku is required: a non-empty string")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ValidationError(f"{where}.quantity is required: an integer >= 1")
    try:
        price = Decimal(str(item.get("price")))
    except InvalidOperation as exc:
        raise ValidationError(f"{where}.price is required: a number >= 0") from exc
    if not price.is_finite() or price < 0:
        raise ValidationError(f"{where}.price is required: a number >= 0")
    return {"sku": sku, "quantity": quantity, "price": price}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> str:
    """JSON with DynamoDB's Decimals as numbers.

    >>> dumps({"n": Decimal("2"), "p": Decimal("1.5")})
    '{"n": 2, "p": 1.5}'
    """
    return json.dumps(value, default=_plain, sort_keys=True)
