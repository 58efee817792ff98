"""One function's collaborators in one region, and how to build them for any endpoint.

Called by the Lambda entry points (``build(Settings.from_env(os.environ))``, once per container)
and by the sandbox's data plane (``build(settings, endpoint_url=<that region's emulator>)``, one
per function and region in one process). Nothing here reads the environment.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parameters import SSMProvider
from botocore.config import Config as BotoConfig
from orders_core.modes import STANDBY, ModeReader
from orders_core.settings import Settings
from orders_core.stores import Config, OrdersQueue, OrdersTable, Receipts

FAIL_FAST = BotoConfig(connect_timeout=1, read_timeout=3,
                       retries={"mode": "standard", "max_attempts": 2})
STATIC_ENTRIES = 1024


class StaticCache:
    """The last successful answer per key, bounded (LRU), for the ``static`` mode."""

    def __init__(self, size: int = STATIC_ENTRIES) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, body: str) -> None:
        """Remember ``body`` as the answer for ``key``."""
        with self._lock:
            self._items[key] = body
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, key: str) -> str | None:
        """The last answer for ``key``, or None."""
        with self._lock:
            return self._items.get(key)


@dataclass
class Service:
    """Everything an answer needs, injected: the entry points' ``handle`` take one of these."""

    settings: Settings
    modes: ModeReader
    config: Config
    table: OrdersTable | None = None
    queue: OrdersQueue | None = None
    receipts: Receipts | None = None
    static: StaticCache = field(default_factory=StaticCache)
    log: Any = field(default_factory=lambda: logging.getLogger("orders"))

    def mode(self) -> str:
        """The mode to answer in now (cached; never raises)."""
        return self.modes.current()

    def context(self, mode: str) -> dict[str, str]:
        """Structured log keys of every line: mode, region and component."""
        return {"mode": mode, "region": self.settings.region,
                "component": self.settings.component}


def build(settings: Settings, session: boto3.session.Session | None = None,
          endpoint_url: str | None = None, *, unknown_mode: str = STANDBY, max_age: int = 5,
          log: Any = None, boto_config: BotoConfig | None = None) -> Service:
    """A :class:`Service` whose clients talk to ``settings.region`` (at ``endpoint_url`` if set).

    ``unknown_mode`` is the safe mode when the mode cannot be read (see :mod:`orders_core.modes`).
    """
    session = session or boto3.session.Session(region_name=settings.region)

    def client(service: str) -> Any:
        return session.client(service, region_name=settings.region, endpoint_url=endpoint_url,
                              config=boto_config or FAIL_FAST)

    provider = SSMProvider(boto3_client=client("ssm"))
    return Service(
        settings=settings,
        modes=ModeReader(provider, settings.mode_parameter, settings.component_mode_parameter,
                         max_age=max_age, unknown=unknown_mode),
        config=Config(provider, settings.config_parameter),
        table=OrdersTable(client("dynamodb"), settings.table) if settings.table else None,
        queue=OrdersQueue(client("sqs"), settings.queue_url) if settings.queue_url else None,
        receipts=Receipts(client("s3"), settings.bucket) if settings.bucket else None,
        log=log if log is not None else logging.getLogger("orders"),
    )
