"""The projector may see a record twice (streams start at TRIM_HORIZON, batches are retried):
projecting it again must change nothing: one receipt per order, the same bytes."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from controller.topology import EXAMPLE_SPEC

FUNCTIONS = EXAMPLE_SPEC.parent / "functions"


class Bucket:
    """An S3 client that keeps objects by key (what a put does to a bucket)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:
        self.puts += 1
        self.objects[Key] = Body
        return {}


@pytest.fixture
def example_modules() -> Iterator[tuple[Any, Any]]:
    sys.path.insert(0, str(FUNCTIONS))
    try:
        yield importlib.import_module("orders"), importlib.import_module("projector")
    finally:
        sys.path.remove(str(FUNCTIONS))
        for name in ("orders", "projector"):
            sys.modules.pop(name, None)


def test_projecting_the_same_insert_twice_leaves_one_receipt(
    example_modules, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the SSM client is made, never called
    orders, projector = example_modules
    bucket = Bucket()
    settings = orders.Settings.from_env({"BUCKET_RECEIPTS_BUCKET": "receipts"})
    service = orders.OrdersService(
        settings, {"dynamodb": None, "sqs": None, "s3": bucket, "ssm": None}
    )
    order = {"order_id": "o-1", "items": ["a"], "total": 3, "created": 1.0}
    record = {
        "eventName": "INSERT",
        "dynamodb": {"NewImage": {"order_id": {"S": "o-1"}, "body": {"S": json.dumps(order)}}},
    }
    first = projector.handle({"Records": [record]}, service)
    snapshot = dict(bucket.objects)
    second = projector.handle({"Records": [record, record]}, service)
    assert first == {"receipts": ["receipts/o-1.json"]}
    assert second["receipts"] == ["receipts/o-1.json"] * 2
    assert bucket.objects == snapshot and len(bucket.objects) == 1
