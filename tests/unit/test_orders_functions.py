"""The example functions answer by mode, cache the mode, apply queued writes once."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.kit.paths import REPO

FUNCTIONS = REPO / "examples" / "orders" / "functions"
REGION = "us-east-1"
ENV = {
    "FAILOVER_APP": "orders",
    "FAILOVER_COMPONENT": "api-handler",
    "AWS_REGION": REGION,
    "TABLE_ORDERS_TABLE": "orders",
    "QUEUE_ORDERS_QUEUE": "q",
    "BUCKET_RECEIPTS_BUCKET": "receipts",
    "PARAMETER_CONFIG": "/orders/config",
    "FAILOVER_MODE_PARAMETER": "/failover/orders/us-east-1/mode",
    "FAILOVER_COMPONENT_MODE_PARAMETER": "/failover/orders/us-east-1/mode/api-handler",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, dummy_credentials: None) -> Iterator[dict[str, Any]]:
    """Moto in-process, the resources the functions use, and the function modules."""
    monkeypatch.syspath_prepend(str(FUNCTIONS))
    with mock_aws():
        db = boto3.client("dynamodb", region_name=REGION)
        db.create_table(
            TableName="orders",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
        )
        url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="q")["QueueUrl"]
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="receipts")
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/orders/config", Type="String", Value='{"max_items": 3}')
        ssm.put_parameter(Name=ENV["FAILOVER_MODE_PARAMETER"], Type="String", Value="active")
        modules = {m: importlib.import_module(m) for m in ("orders", "api", "worker", "projector")}
        service = modules["orders"].build({**ENV, "QUEUE_ORDERS_QUEUE_URL": url})
        yield {"service": service, "ssm": ssm, "url": url, "db": db, **modules}
    for name in ("orders", "api", "worker", "projector"):
        sys.modules.pop(name, None)


def call(aws: dict[str, Any], method: str, path: str, body: Any = None) -> dict[str, Any]:
    event = {
        "rawPath": path,
        "requestContext": {"http": {"method": method}},
        "pathParameters": {"id": path.rsplit("/", 1)[-1]} if method == "GET" else None,
        "body": json.dumps(body) if body is not None else None,
    }
    return aws["api"].handle(event, aws["service"])


def set_mode(aws: dict[str, Any], mode: str, component: bool = False) -> None:
    name = ENV["FAILOVER_COMPONENT_MODE_PARAMETER" if component else "FAILOVER_MODE_PARAMETER"]
    aws["ssm"].put_parameter(Name=name, Type="String", Value=mode, Overwrite=True)
    aws["service"].modes.provider.clear_cache()
    aws["service"].modes._missing.clear()


ORDER = {"order_id": "o-1", "items": [{"sku": "tea"}], "total": 3}


def test_active_writes_then_reads(aws: dict[str, Any]) -> None:
    created = call(aws, "POST", "/orders", ORDER)
    assert created["statusCode"] == 201
    got = call(aws, "GET", "/orders/o-1")
    assert got["statusCode"] == 200 and json.loads(got["body"])["items"] == ORDER["items"]
    assert "X-Degraded" not in got["headers"]
    assert call(aws, "GET", "/orders/nope")["statusCode"] == 404


def test_read_only_serves_reads_and_refuses_writes(aws: dict[str, Any]) -> None:
    call(aws, "POST", "/orders", ORDER)
    set_mode(aws, "read_only")
    refused = call(aws, "POST", "/orders", {**ORDER, "order_id": "o-2"})
    assert refused["statusCode"] == 503
    assert refused["headers"]["Retry-After"] and refused["headers"]["X-Degraded"] == "read_only"
    read = call(aws, "GET", "/orders/o-1")
    assert read["statusCode"] == 200 and read["headers"]["X-Degraded"] == "read_only"
    assert "Item" not in aws["db"].get_item(TableName="orders", Key={"order_id": {"S": "o-2"}})


@pytest.mark.parametrize("mode", ["queue_writes", "standby"])
def test_queue_writes_accepts_into_the_queue(aws: dict[str, Any], mode: str) -> None:
    set_mode(aws, mode)
    accepted = call(aws, "POST", "/orders", ORDER)
    assert accepted["statusCode"] == 202 and accepted["headers"]["X-Degraded"] == mode
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=aws["url"])
    assert json.loads(messages["Messages"][0]["Body"])["order_id"] == "o-1"
    assert "Item" not in aws["db"].get_item(TableName="orders", Key={"order_id": {"S": "o-1"}})


def test_static_answers_from_the_last_good_answer(aws: dict[str, Any]) -> None:
    call(aws, "POST", "/orders", ORDER)
    call(aws, "GET", "/orders/o-1")
    set_mode(aws, "static")
    aws["db"].delete_item(TableName="orders", Key={"order_id": {"S": "o-1"}})
    got = call(aws, "GET", "/orders/o-1")
    assert got["statusCode"] == 200 and got["headers"]["X-Degraded"] == "static"
    assert json.loads(got["body"])["order_id"] == "o-1"


@pytest.mark.parametrize("mode", ["unavailable", "fenced"])
def test_unavailable_refuses_everything_but_health(aws: dict[str, Any], mode: str) -> None:
    set_mode(aws, mode)
    assert call(aws, "GET", "/orders/o-1")["statusCode"] == 503
    assert call(aws, "POST", "/orders", ORDER)["statusCode"] == 503
    assert call(aws, "GET", "/health")["statusCode"] == 200


def test_component_mode_overrides_the_region(aws: dict[str, Any]) -> None:
    set_mode(aws, "active")
    set_mode(aws, "read_only", component=True)
    assert call(aws, "POST", "/orders", ORDER)["statusCode"] == 503


def test_mode_is_cached_between_calls(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    service = aws["service"]
    reads = []
    original = service.modes.provider._get
    monkeypatch.setattr(
        service.modes.provider,
        "_get",
        lambda name, **kw: reads.append(name) or original(name, **kw),
    )
    service.modes.provider.clear_cache()
    service.modes.current()
    first = len(reads)
    service.modes.current()
    assert len(reads) == first  # within max_age: not read again
    service.modes.provider.clear_cache()
    service.modes._missing.clear()
    service.modes.current()
    assert len(reads) > first


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not valid JSON"),
        ({"items": []}, "non-empty list"),
        ({"items": [1, 2, 3, 4]}, "at most 3 items"),
        ({"items": [1], "total": "x"}, "number"),
    ],
)
def test_bad_input_is_400_with_a_reason(aws: dict[str, Any], body: Any, message: str) -> None:
    answer = (
        call(aws, "POST", "/orders", body)
        if not isinstance(body, str)
        else aws["api"].handle(
            {"rawPath": "/orders", "requestContext": {"http": {"method": "POST"}}, "body": body},
            aws["service"],
        )
    )
    assert answer["statusCode"] == 400
    assert message in json.loads(answer["body"])["message"]


def test_worker_applies_each_order_once_and_reports_failures(aws: dict[str, Any]) -> None:
    good = {"messageId": "m1", "body": json.dumps(ORDER)}
    bad = {"messageId": "m2", "body": "{broken"}
    out = aws["worker"].handle({"Records": [good, good, bad]}, aws["service"])
    assert out == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert aws["db"].scan(TableName="orders")["Count"] == 1


def test_a_standby_worker_consumes_nothing(aws: dict[str, Any]) -> None:
    set_mode(aws, "standby")
    out = aws["worker"].handle(
        {"Records": [{"messageId": "m1", "body": json.dumps(ORDER)}]}, aws["service"]
    )
    assert out == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert aws["db"].scan(TableName="orders")["Count"] == 0


def test_projector_writes_a_receipt_for_new_orders_only(aws: dict[str, Any]) -> None:
    image = {"order_id": {"S": "o-1"}, "body": {"S": json.dumps(ORDER)}}
    records = [
        {"eventName": "INSERT", "dynamodb": {"NewImage": image}},
        {"eventName": "MODIFY", "dynamodb": {"NewImage": image}},
        {
            "eventName": "INSERT",
            "dynamodb": {"NewImage": {**image, "_replicated_from": {"S": "x"}}},
        },
    ]
    out = aws["projector"].handle({"Records": records}, aws["service"])
    assert out == {"receipts": ["receipts/o-1.json"]}
    body = boto3.client("s3", region_name=REGION).get_object(
        Bucket="receipts", Key="receipts/o-1.json"
    )["Body"]
    assert json.loads(body.read())["order_id"] == "o-1"


def test_a_degraded_worker_keeps_queued_writes_queued(aws: dict[str, Any]) -> None:
    set_mode(aws, "queue_writes")
    out = aws["worker"].handle(
        {"Records": [{"messageId": "m1", "body": json.dumps(ORDER)}]}, aws["service"]
    )
    assert out == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_the_lambda_entry_point_reads_its_environment(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**ENV, "QUEUE_ORDERS_QUEUE_URL": aws["url"]}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(aws["api"], "_service", None)
    event = {
        "rawPath": "/orders",
        "requestContext": {"http": {"method": "POST"}},
        "body": json.dumps(ORDER),
    }
    assert aws["api"].handler(event, None)["statusCode"] == 201
    assert aws["api"]._service.settings.table == "orders"  # built once, from the environment


def test_a_written_order_is_announced_on_the_bus_and_a_dead_bus_loses_no_write(
    aws: dict[str, Any],
) -> None:
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name="bus")
    events.put_rule(
        Name="placed",
        EventBusName="bus",
        EventPattern=json.dumps({"source": ["orders.api"], "detail-type": ["OrderPlaced"]}),
    )
    shipping = sqs.create_queue(QueueName="shipping")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=shipping, AttributeNames=["QueueArn"])
    events.put_targets(
        Rule="placed",
        EventBusName="bus",
        Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}],
    )
    service = aws["orders"].build(
        {**ENV, "QUEUE_ORDERS_QUEUE_URL": aws["url"], "BUS_ORDER_EVENTS": "bus"}
    )
    aws["service"] = service
    assert call(aws, "POST", "/orders", ORDER)["statusCode"] == 201
    got = sqs.receive_message(QueueUrl=shipping, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["detail"]["order_id"] for m in got] == ["o-1"]
    service.settings = dataclasses.replace(service.settings, bus="no-such-bus")
    assert call(aws, "POST", "/orders", {**ORDER, "order_id": "o-2"})["statusCode"] == 201
    assert call(aws, "GET", "/orders/o-2")["statusCode"] == 200
