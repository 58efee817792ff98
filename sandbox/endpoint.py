"""A region's API endpoint: what API Gateway is in that region, on a loopback port.

Called by the data plane. Each request becomes an HTTP API (payload 2.0) event for the routed
function, run in-process against that region's emulator. The endpoint lives and dies with its
region: when the region's emulator does not answer, neither does the endpoint (it waits as long as
a hung region makes it wait, or refuses at once for a dead one), as a regional API would. With
strong replication, a write is acknowledged only once it has been copied to the other regions.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from controller.topology.kinds import ApiSpec, Route
from sandbox.pollers import Invoke
from sandbox.router import LoopbackService

log = logging.getLogger(__name__)

#: ``alive(region) -> bool``: does the region's emulator answer now?
Alive = Callable[[str], bool]


class RegionalEndpoint(LoopbackService):
    """The API of one region: routes to functions, ``/health`` open, on 127.0.0.1."""

    def __init__(
        self,
        region: str,
        api: ApiSpec,
        invoke: Invoke,
        alive: Alive,
        after_write: Callable[[str], bool] | None = None,
    ) -> None:
        self.region = region
        self.api = api
        self.invoke = invoke
        self.alive = alive
        self.after_write = after_write
        self.routes = [(_pattern(r.path), r) for r in api.routes]
        super().__init__(self._handler(), f"api-{region}")

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: ``(status, headers, body)``."""
        path = urlsplit(target).path
        if not self.alive(self.region):
            return 503, {"X-Region-Down": self.region}, b'{"message": "region unavailable"}'
        route, params = self._match(method, path)
        if route is None:
            if path == self.api.health_path and method == "GET":
                return 200, {"Content-Type": "application/json"}, b'{"status": "ok"}'
            return 404, {}, b'{"message": "no route"}'
        event = _event(method, target, headers, body, route, params)
        response = self.invoke(self.region, route.function, event)
        status, out, payload = _response(response)
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
        for pattern, route in self.routes:
            found = pattern.fullmatch(path)
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
                except Exception as exc:  # the function failed: what Lambda's 502 says
                    log.warning("%s %s in %s: %s", self.command, self.path, endpoint.region, exc)
                    status, headers, payload = 502, {}, b'{"message": "function error"}'
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
    now = time.time()
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
