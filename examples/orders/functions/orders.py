"""The orders service: business logic and degraded answers, outside any handler.

Used by the Lambda handlers (``api``, ``worker``, ``projector``) and, in the sandbox, by the local
data plane, which builds one service per region with :func:`build` and calls each module's
``handle(event, service)``. Nothing here reads ``os.environ``: settings come in as a mapping, AWS
clients from an injected boto3 session, so one process can serve several regions.

Modes (``/failover/<app>/<region>/mode`` and the component's own parameter, which wins):
``active`` serves normally; ``read_only`` serves reads, refuses writes with 503 + Retry-After;
``queue_writes`` and ``standby`` serve reads and accept writes with 202 into the queue, for the
worker to apply once the region is active (a standby that DNS sends traffic to keeps answering);
``static`` answers from the last good answers kept in memory; ``unavailable`` and ``fenced``
answer 503. Every degraded answer carries ``X-Degraded: <mode>``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

MODE_MAX_AGE = 2  # seconds a warm container trusts the mode it read
SERVING = {"active"}
QUEUEING = {"queue_writes", "standby"}
REFUSING = {"unavailable", "fenced"}


@dataclass(frozen=True)
class Settings:
    """The names a function needs (what its Lambda environment carries; never secrets)."""

    app: str
    component: str
    region: str
    table: str
    queue_url: str
    bucket: str
    config_parameter: str
    mode_parameter: str
    component_mode_parameter: str
    log_level: str = "INFO"
    bus: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the Pulumi program's variables (``TABLE_ORDERS_TABLE``, ``FAILOVER_*``, ...)."""
        return cls(
            app=env.get("FAILOVER_APP", "orders"),
            component=env.get("FAILOVER_COMPONENT", "orders"),
            region=env.get("AWS_REGION", "us-east-1"),
            table=env.get("TABLE_ORDERS_TABLE", ""),
            queue_url=env.get("QUEUE_ORDERS_QUEUE_URL", ""),
            bucket=env.get("BUCKET_RECEIPTS_BUCKET", ""),
            config_parameter=env.get("PARAMETER_CONFIG", ""),
            mode_parameter=env.get("FAILOVER_MODE_PARAMETER", ""),
            component_mode_parameter=env.get("FAILOVER_COMPONENT_MODE_PARAMETER", ""),
            log_level=env.get("POWERTOOLS_LOG_LEVEL", "INFO"),
            bus=env.get("BUS_ORDER_EVENTS", ""),
        )


@dataclass(frozen=True)
class Response:
    """An HTTP answer, as the API handler returns it to API Gateway."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def to_proxy(self) -> dict[str, Any]:
        """The Lambda proxy integration shape."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json", **self.headers},
            "body": json.dumps(self.body, default=_json_default),
        }


class Modes:
    """The component's mode, read through powertools Parameters with a short cache."""

    def __init__(self, provider: SSMProvider, settings: Settings) -> None:
        self.provider = provider
        self.settings = settings
        self.last: str | None = None
        self._missing: dict[str, float] = {}

    def current(self) -> str:
        """The component's mode, else the region's; the last known one if SSM does not answer.

        With no mode ever read, a read failure means we cannot tell: ``unavailable`` (refuse)
        is the safe answer, never ``active`` (a fenced region must not start writing).
        """
        for name in (self.settings.component_mode_parameter, self.settings.mode_parameter):
            if not name or self._missing.get(name, 0.0) > time.monotonic():
                continue
            try:
                value = self.provider.get(name, max_age=MODE_MAX_AGE)
            except GetParameterError as exc:
                if "ParameterNotFound" in str(exc):
                    # remembered as missing for as long as a value would be cached
                    self._missing[name] = time.monotonic() + MODE_MAX_AGE
                    continue
                return self.last or "unavailable"
            if value and value != "normal":
                self.last = str(value)
                return self.last
        # Neither parameter exists: a function deployed outside the failover program. Answer
        # as a standby (reads served, writes queued, nothing consumed), never as a writer.
        self.last = self.last or "standby"
        return self.last


class OrdersService:
    """Reads and writes orders, answering by mode; one instance per (function, region)."""

    def __init__(self, settings: Settings, clients: Mapping[str, Any]) -> None:
        self.settings = settings
        self.dynamodb = clients["dynamodb"]
        self.sqs = clients["sqs"]
        self.s3 = clients["s3"]
        self.events = clients.get("events")
        self.modes = Modes(SSMProvider(boto3_client=clients["ssm"]), settings)
        self.logger = Logger(service=settings.component, level=settings.log_level)
        self.static: dict[str, Any] = {}
        self._config: tuple[float, dict[str, Any]] | None = None

    # -- API ---------------------------------------------------------------------------------

    def get_order(self, order_id: str) -> Response:
        """GET /orders/{id}: served in every mode that serves reads."""
        mode = self.modes.current()
        if mode in REFUSING:
            return _unavailable(mode)
        if mode == "static":
            cached = self.static.get(order_id)
            body = cached if cached is not None else {"order_id": order_id, "status": "unknown"}
            return Response(200, body, {"X-Degraded": "static"})
        item = self.dynamodb.get_item(
            TableName=self.settings.table, Key={"order_id": {"S": order_id}}
        ).get("Item")
        degraded = {} if mode in SERVING else {"X-Degraded": mode}
        if item is None:
            return Response(404, {"message": f"no order {order_id}"}, degraded)
        order = _from_item(item)
        self.static[order_id] = order
        return Response(200, order, degraded)

    def create_order(self, payload: Any) -> Response:
        """POST /orders: written (201), queued (202), or refused (400, 503) by mode."""
        try:
            order = self.validate(payload)
        except ValueError as exc:
            return Response(400, {"message": str(exc)})
        mode = self.modes.current()
        if mode in SERVING:
            self.put(order)
            self.announce(order)
            return Response(201, order)
        if mode in QUEUEING:
            self.sqs.send_message(QueueUrl=self.settings.queue_url, MessageBody=json.dumps(order))
            return Response(202, {**order, "status": "queued"}, {"X-Degraded": mode})
        if mode == "read_only":
            return Response(
                503,
                {"message": "read-only: writes are paused during failover"},
                {"X-Degraded": mode, "Retry-After": "30"},
            )
        return _unavailable(mode)

    def announce(self, order: dict[str, Any]) -> None:
        """Publish "order placed" on the bus, best effort: the order is written either way."""
        if not self.settings.bus or self.events is None:
            return
        try:
            self.events.put_events(
                Entries=[
                    {
                        "Source": "orders.api",
                        "DetailType": "OrderPlaced",
                        "Detail": json.dumps(order, default=_json_default),
                        "EventBusName": self.settings.bus,
                    }
                ]
            )
        except Exception as exc:
            self.logger.warning("order event not published", extra={"error": str(exc)})

    def validate(self, payload: Any) -> dict[str, Any]:
        """A well-formed order (raises ValueError with what is wrong)."""
        if isinstance(payload, str | bytes):
            try:
                payload = json.loads(payload or "{}")
            except ValueError:
                raise ValueError("body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise ValueError("body must be a JSON object")
        items = payload.get("items")
        if not isinstance(items, list) or not items:
            raise ValueError("'items' must be a non-empty list")
        limit = int(self.config().get("max_items", 50))
        if len(items) > limit:
            raise ValueError(f"at most {limit} items per order")
        order_id = str(payload.get("order_id") or uuid.uuid4().hex)
        total = payload.get("total", 0)
        if not isinstance(total, int | float):
            raise ValueError("'total' must be a number")
        return {
            "order_id": order_id,
            "items": items,
            "total": total,
            "created": payload.get("created") or time.time(),
        }

    # -- worker and projector ----------------------------------------------------------------

    def consuming(self) -> bool:
        """True only in ``active``: a degraded region keeps queued writes queued, where they are
        safe, rather than failing them against a dependency it cannot reach."""
        return self.modes.current() in SERVING

    def put(self, order: dict[str, Any]) -> bool:
        """Write ``order`` once: a second put of the same id changes nothing (idempotent)."""
        try:
            self.dynamodb.put_item(
                TableName=self.settings.table,
                Item=_to_item(order),
                ConditionExpression="attribute_not_exists(order_id)",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def write_receipt(self, order: dict[str, Any]) -> str:
        """Store ``receipts/<order_id>.json`` in the bucket; the key."""
        key = f"receipts/{order['order_id']}.json"
        self.s3.put_object(
            Bucket=self.settings.bucket,
            Key=key,
            Body=json.dumps(order, default=_json_default).encode(),
        )
        return key

    def config(self) -> dict[str, Any]:
        """The config parameter (JSON), cached for a minute."""
        if self._config and time.monotonic() - self._config[0] < 60:
            return self._config[1]
        value: dict[str, Any] = {}
        if self.settings.config_parameter:
            try:
                value = json.loads(
                    self.modes.provider.get(self.settings.config_parameter, max_age=60) or "{}"
                )
            except (GetParameterError, ValueError):
                value = {}
        self._config = (time.monotonic(), value)
        return value


def build(
    env: Mapping[str, str], session: Any = None, endpoint_url: str | None = None, config: Any = None
) -> OrdersService:
    """A service for one region: the names from ``env``, clients from ``session``."""
    import boto3

    settings = Settings.from_env(env)
    session = session or boto3.session.Session(region_name=settings.region)
    kwargs = {k: v for k, v in (("endpoint_url", endpoint_url), ("config", config)) if v}
    clients = {
        name: session.client(name, region_name=settings.region, **kwargs)
        for name in ("dynamodb", "sqs", "s3", "ssm", "events")
    }
    return OrdersService(settings, clients)


def _unavailable(mode: str) -> Response:
    return Response(
        503, {"message": f"this region is {mode}"}, {"X-Degraded": mode, "Retry-After": "10"}
    )


def _to_item(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": {"S": order["order_id"]},
        "body": {"S": json.dumps(order, default=_json_default)},
    }


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(item["body"]["S"]))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
