"""The orders example's function code: the Lambda package root (the topology's ``code``).

Lambda imports ``api``, ``worker`` and ``projector`` as top-level modules from this folder, and
they import the shared package ``orders_core`` the same way. To run the same code locally, put
this folder on ``sys.path`` (as Lambda does) and import the modules by the topology's handler
names; do not import them as ``examples.orders.functions.api``.

Calling convention for the local data plane (one service per function and region, all in one
process; nothing reads ``os.environ`` except ``Settings.from_env`` in the Lambda path)::

    import importlib, sys
    sys.path.insert(0, "examples/orders/functions")        # the topology's `code`
    from orders_core.settings import Settings
    from orders_core.service import build
    api = importlib.import_module("api")                   # "api.handler" -> module "api"

    settings = Settings(
        region="us-west-2",
        mode_parameter="/failover/orders/us-west-2/mode",
        component_mode_parameter="/failover/orders/us-west-2/mode/api-handler",
        table="orders-orders-table-us-east-1",             # names from the manifest
        queue_url="http://127.0.0.1:PORT/123456789012/orders-orders-queue-us-west-2",
        bucket=None, config_parameter="orders-config-us-west-2",
        component="api-handler")
    # or Settings.from_env({...}) with a dict shaped like the Lambda environment
    service = build(settings, endpoint_url="http://127.0.0.1:PORT",   # that region's emulator
                    unknown_mode=api.UNKNOWN_MODE)
    response = api.handle(http_api_v2_event, service)      # {"statusCode", "headers", "body"}

- ``build(settings, session=None, endpoint_url=None, *, unknown_mode="standby", max_age=5,
  log=None, boto_config=None) -> Service``: clients for ``settings.region`` at ``endpoint_url``;
  the mode is cached ``max_age`` seconds; ``unknown_mode`` is answered when it cannot be read
  (each module's ``UNKNOWN_MODE``: ``read_only`` for the API, ``standby`` for the consumers).
- ``api.handle(event, service) -> dict``: an HTTP API payload v2 event (``rawPath``,
  ``requestContext.http.method``, ``body``) -> a proxy response. ``GET /health`` is 200 in every
  mode; degraded answers carry ``X-Degraded: <mode>``, 503s a ``Retry-After``.
- ``worker.handle(event, service) -> dict``: an SQS batch (``{"Records": [{"messageId", "body",
  ...}]}``) -> ``{"batchItemFailures": [...]}``; a scheduled event (``"detail-type": "Scheduled
  Event"``) -> the nightly report. Messages are POST bodies with their ``order_id``.
- ``projector.handle(event, service) -> dict``: a DynamoDB stream batch (``eventName``,
  ``dynamodb.NewImage``, ``dynamodb.SequenceNumber``) -> ``{"batchItemFailures": [...]}``.

The consumers work only in ``active``: in any other mode they report every record failed, so a
fenced region consumes nothing even if something still polls it. ``handle`` is thread-safe for
one service used by several threads (the sandbox's router answers concurrently).
"""
