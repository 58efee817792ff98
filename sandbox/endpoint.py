"""A region's API endpoint: what API Gateway is in that region, on a loopback port.

Called by the data plane. The endpoint serves the API the program deployed in its region: its
routes and their integrations, read back from the emulator (``GetRoutes``, ``GetIntegrations``),
each request an HTTP API (payload 2.0) event for the function the route's integration names (its
alias), through the sandbox's one invoke path (:mod:`sandbox.lambda_.invoke`). A function that
fails, or that Lambda throttles (reserved concurrency in use: 0 when fenced), answers ``500
Internal Server Error``, as an HTTP API answers a Lambda error and maps Lambda's 429; a path no
route matches, ``404 Not Found``; every answer is told to ``answered`` (the API's metrics).
The endpoint lives and dies with its region: when the region's emulator does not answer,
neither does the endpoint (it waits as long as a hung region makes it wait, or refuses at once
for a dead one), as a regional API would. With strong replication, a write is acknowledged only
once it has been copied to the other regions.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from controller import clock
from controller.aws import Clients
from sandbox.lambda_.invoke import Invoker, Throttled
from sandbox.router import LoopbackService

log = logging.getLogger(__name__)

#: ``alive(region) -> bool``: does the region's emulator answer now?
Alive = Callable[[str], bool]
SERVER_ERROR = b'{"message":"Internal Server Error"}'


@dataclass(frozen=True)
class Route:
    """One deployed route: its method, its path as a pattern, the function its integration
    invokes (an alias ARN)."""

    method: str
    path: str
    pattern: re.Pattern[str]
    function: str


def deployed_routes(clients: Clients, region: str, api_id: str) -> list[Route]:
    """The routes of the API ``api_id`` in ``region``, each with its integration's function."""
    gateway = clients.client("apigatewayv2", region)
    uris = {
        i["IntegrationId"]: i.get("IntegrationUri", "")
        for i in gateway.get_integrations(ApiId=api_id).get("Items", [])
    }
    out = []
    for route in gateway.get_routes(ApiId=api_id).get("Items", []):
        method, _, path = str(route["RouteKey"]).partition(" ")
        target = str(route.get("Target", "")).removeprefix("integrations/")
        if target in uris:
            out.append(Route(method, path, _pattern(path), uris[target]))
    return out


class RegionalEndpoint(LoopbackService):
    """The API of one region, as deployed, on 127.0.0.1."""

    def __init__(
        self,
        region: str,
        routes: list[Route],
        invoker: Invoker,
        alive: Alive,
        after_write: Callable[[str], bool] | None = None,
        answered: Callable[[int], None] | None = None,
    ) -> None:
        self.region = region
        self.routes = routes
        self.invoker = invoker
        self.alive = alive
        self.after_write = after_write
        #: Told the status of every answer the API gave (its metrics: ``4xx``, ``5xx``).
        self.answered = answered
        super().__init__(self._handler(), f"api-{region}")

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: ``(status, headers, body)``."""
        path = urlsplit(target).path
        if not self.alive(self.region):  # no answer from the region: nothing it counts either
            return 503, {"X-Region-Down": self.region}, b'{"message": "region unavailable"}'
        try:
            answer = self._answer(method, target, path, headers, body)
        except Exception:
            if self.answered:
                self.answered(500)
            raise
        if self.answered:
            self.answered(answer[0])
        return answer

    def _answer(
        self, method: str, target: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        route, params = self._match(method, path)
        if route is None:
            return 404, {}, b'{"message":"Not Found"}'
        event = _event(method, target, headers, body, route, params)
        try:
            done = self.invoker.invoke(self.region, route.function, event, source="api")
        except Throttled:  # API Gateway answers Lambda's 429 as an integration failure
            return 500, {"Content-Type": "application/json"}, SERVER_ERROR
        if not done.ok:
            return 500, {"Content-Type": "application/json"}, SERVER_ERROR
        status, out, payload = _response(done.result)
        if (
            self.after_write
            and method != "GET"
            and 200 <= status < 300
            and not self.after_write(self.region)
        ):
            # Not replicated to another region: not acknowledged (the client retries; writes
            # carry their id, so the retry is idempotent).
            return 503, {"Retry-After": "1"}, b'{"message": "write not replicated"}'
        return status, out, payload

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found and route.method in (method, "ANY"):
                return route, found.groupdict()
        return None, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    status, headers, payload = endpoint.handle(
                        self.command, self.path, dict(self.headers.items()), body
                    )
                except Exception as exc:  # the invocation did not happen (its region is gone)
                    log.warning("%s %s in %s: %s", self.command, self.path, endpoint.region, exc)
                    status, headers, payload = 500, {}, SERVER_ERROR
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

        return Handler


def _pattern(path: str) -> re.Pattern[str]:
    """``/orders/{id}`` as a regular expression with a named group per parameter."""
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(regex)


def _event(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    route: Route,
    params: dict[str, str],
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as Lambda receives it."""
    parts = urlsplit(target)
    text = body.decode("utf-8", errors="replace")
    now = clock.now()  # AWS time: the sandbox's clock
    return {
        "version": "2.0",
        "routeKey": f"{route.method} {route.path}",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "queryStringParameters": dict(parse_qsl(parts.query)) or None,
        "pathParameters": params or None,
        "requestContext": {
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", ""),
            },
            "routeKey": f"{route.method} {route.path}",
            "stage": "$default",
            "requestId": f"{now:.6f}",
            "timeEpoch": int(now * 1000),
        },
        "body": text or None,
        "isBase64Encoded": False,
    }


def _response(response: Any) -> tuple[int, dict[str, str], bytes]:
    """A Lambda proxy response (dict with statusCode, headers, body) as HTTP."""
    if not isinstance(response, dict):
        return 200, {"Content-Type": "application/json"}, json.dumps(response).encode()
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode()
    headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
    return int(response.get("statusCode", 200)), headers, payload
