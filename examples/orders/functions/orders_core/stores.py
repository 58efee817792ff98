"""Thin wrappers over the clients: the orders table, the queue, the receipts bucket, the config.

Each takes its boto3 client and resource name as arguments, so one process can hold one per
region. botocore errors pass through; the answers decide what they mean.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from orders_core.model import Order, dumps

DEFAULT_CONFIG: dict[str, Any] = {"currency": "EUR", "max_items": 50}
_SER, _DES = TypeSerializer(), TypeDeserializer()


class OrdersTable:
    """The orders table: idempotent puts and reads by order id."""

    def __init__(self, client: Any, name: str) -> None:
        self.client, self.name = client, name

    def get(self, order_id: str) -> dict[str, Any] | None:
        """The stored order, or None."""
        item = self.client.get_item(TableName=self.name, Key={"order_id": {"S": order_id}},
                                    ConsistentRead=True).get("Item")
        return {k: _DES.deserialize(v) for k, v in item.items()} if item else None

    def put_new(self, order: Order) -> bool:
        """Write the order unless its id exists: True when written, False when already there."""
        item = {k: _SER.serialize(v) for k, v in order.to_item().items()}
        try:
            self.client.put_item(TableName=self.name, Item=item,
                                 ConditionExpression="attribute_not_exists(order_id)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def count(self) -> int:
        """How many orders the table holds (the nightly report)."""
        total = 0
        for page in self.client.get_paginator("scan").paginate(TableName=self.name,
                                                               Select="COUNT"):
            total += int(page["Count"])
        return total


class OrdersQueue:
    """The orders queue: writes accepted for later (queue_writes mode)."""

    def __init__(self, client: Any, url: str) -> None:
        self.client, self.url = client, url

    def send(self, order: Order) -> str:
        """Enqueue the order for the worker; returns the message id."""
        return str(self.client.send_message(QueueUrl=self.url,
                                            MessageBody=order.to_message())["MessageId"])


class Receipts:
    """The receipts bucket: one JSON object per order."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def put(self, order: dict[str, Any]) -> str:
        """Write ``receipts/<order_id>.json`` (overwriting is idempotent); returns the key."""
        key = f"receipts/{order['order_id']}.json"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=dumps(order).encode(),
                               ContentType="application/json")
        return key


class Config:
    """The app's config parameter (JSON), cached; its defaults when unset or unreadable."""

    def __init__(self, provider: SSMProvider | None, name: str | None,
                 max_age: int = 60) -> None:
        self.provider, self.name, self.max_age = provider, name, max_age

    def get(self) -> dict[str, Any]:
        """The config merged over the defaults; never raises."""
        if self.provider is None or not self.name:
            return dict(DEFAULT_CONFIG)
        try:
            value = self.provider.get(self.name, max_age=self.max_age, transform="json")
        except (GetParameterError, TransformParameterError, ValueError):
            return dict(DEFAULT_CONFIG)
        return {**DEFAULT_CONFIG, **value} if isinstance(value, dict) else dict(DEFAULT_CONFIG)
