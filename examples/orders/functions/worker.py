"""Lambda entry point of ``worker`` (handler ``worker.handler``): queued orders into the table.

Fed by the SQS queue ``orders-queue`` (partial batch failures reported) and by the
``nightly-report`` schedule (an EventBridge scheduled event: it counts the orders).
``handle(event, service)`` is the same path with an injected service, for the sandbox and tests.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from orders_core.consumers import apply_orders, nightly_report
from orders_core.modes import STANDBY
from orders_core.service import Service, build
from orders_core.settings import Settings, tracing_disabled

logger = Logger()
tracer = Tracer(disabled=tracing_disabled(os.environ))
UNKNOWN_MODE = STANDBY  # mode unreadable: consume nothing


def handle(event: dict[str, Any], service: Service) -> dict[str, Any]:
    """An SQS batch (returns ``batchItemFailures``) or a scheduled event (returns the report)."""
    if event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events":
        return nightly_report(service)
    return dict(apply_orders(event, service))


@functools.cache
def lambda_service() -> Service:
    """The container's service, built once from the Lambda environment."""
    settings = Settings.from_env(os.environ)
    logger.append_keys(region=settings.region)
    return build(settings, unknown_mode=UNKNOWN_MODE, log=logger)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda's entry point: thin, everything is in :func:`handle`."""
    return handle(event, lambda_service())
