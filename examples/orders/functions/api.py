"""Lambda entry point of ``api-handler`` (handler ``api.handler``): the orders HTTP API.

``handler`` is what Lambda calls; ``handle(event, service)`` is the same path with an injected
:class:`~orders_core.service.Service`, for the sandbox's data plane and for tests.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from orders_core.answers import answer
from orders_core.modes import READ_ONLY
from orders_core.service import Service, build
from orders_core.settings import Settings, tracing_disabled

logger = Logger()
tracer = Tracer(disabled=tracing_disabled(os.environ))
UNKNOWN_MODE = READ_ONLY  # mode unreadable: serve reads, refuse writes


def handle(event: dict[str, Any], service: Service) -> dict[str, Any]:
    """Answer one HTTP API (payload v2) event in the service's current mode."""
    return answer(event, service).to_event()


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
