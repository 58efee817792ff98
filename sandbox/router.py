"""The local router: resolves the API's DNS name exactly as Route 53 failover would, and forwards.

Called by the data plane. The emulator stores failover records and health checks but always
reports a check healthy and answers no DNS, so the sandbox plays Route 53's part: its own health
checkers probe each region's endpoint every interval (a check flips after ``threshold`` results in
a row), an inverted check reads the other way, and the answer is the PRIMARY record when its check
is healthy, else the SECONDARY when its is, else the PRIMARY (as Route 53 does), cached for the
record's TTL. Every server here binds 127.0.0.1.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from controller.aws import Clients
from controller.contract import GLOBAL, normalize_host
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class HealthChecks:
    """Route 53's health checkers, played locally: one probe per region every ``interval``."""

    probe: Callable[[str], bool]
    regions: list[str]
    interval: float
    threshold: int
    healthy: dict[str, bool] = field(default_factory=dict)
    _streak: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start one checker thread per region (every region starts healthy)."""
        for region in self.regions:
            self.healthy[region] = True
            self._streak[region] = 0
            thread = threading.Thread(
                target=self._loop, args=(region,), daemon=True, name=f"r53-check-{region}"
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the checkers."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _loop(self, region: str) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.observe(region, self.probe(region))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def observe(self, region: str, ok: bool) -> None:
        """Count one probe result; flip the region's state after ``threshold`` in a row."""
        if ok == self.healthy[region]:
            self._streak[region] = 0
            return
        self._streak[region] += 1
        if self._streak[region] >= self.threshold:
            self.healthy[region] = ok
            self._streak[region] = 0
            log.info("health check %s -> %s", region, "healthy" if ok else "unhealthy")


@dataclass
class Resolver:
    """Answers the API's name from the failover records, the checks and their inversion."""

    clients: Clients
    manifest: Manifest
    checks: HealthChecks
    ttl: float
    _cached: tuple[float, str | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def host_region(self) -> dict[str, str]:
        """Each region's host, as the failover records name it: the regional target of its
        custom domain (the DNS component's endpoint), or its API's own host."""
        hosts = {}
        for region, part in self.manifest.regions.items():
            for ref in part.components.values():
                if ref.kind == "dns" and ref.endpoint:
                    hosts[normalize_host(ref.endpoint)] = region
            if part.api_endpoint:
                hosts.setdefault(normalize_host(part.api_endpoint), region)
        return hosts

    def resolve(self) -> str | None:
        """The region the name resolves to now (cached for the TTL, as a resolver would)."""
        now = time.monotonic()
        with self._lock:
            if self._cached and now - self._cached[0] < self.ttl:
                return self._cached[1]
        region = self._answer()
        with self._lock:
            self._cached = (now, region)
        return region

    def _answer(self) -> str | None:
        dns = self.manifest.dns
        if dns is None:
            return None
        r53 = self.clients.client("route53", GLOBAL)
        try:
            records = r53.list_resource_record_sets(HostedZoneId=dns.zone_id)
        except Exception as exc:  # Route 53 is global; if even it is gone, keep the last answer
            log.warning("route53 unreadable: %s", exc)
            return self._cached[1] if self._cached else None
        by_role: dict[str, Any] = {}
        for rs in records["ResourceRecordSets"]:
            if rs.get("Failover") and rs["Name"].rstrip(".") == dns.record.rstrip("."):
                by_role[rs["Failover"]] = rs
        hosts = self.host_region()
        for role in ("PRIMARY", "SECONDARY"):
            chosen = by_role.get(role)
            if chosen and self._healthy(r53, chosen, hosts):
                return hosts.get(normalize_host(chosen["ResourceRecords"][0]["Value"]))
        primary = by_role.get("PRIMARY")
        if primary is None:
            return None
        return hosts.get(normalize_host(primary["ResourceRecords"][0]["Value"]))

    def _healthy(self, r53: Any, rs: Mapping[str, Any], hosts: Mapping[str, str]) -> bool:
        region = hosts.get(normalize_host(rs["ResourceRecords"][0]["Value"]))
        check_id = rs.get("HealthCheckId")
        if region is None:
            return False
        if not check_id:
            return True
        config = r53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
        healthy = self.checks.healthy.get(region, True)
        return not healthy if config.get("Inverted") else healthy


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that logs a client hanging up instead of printing a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended early", client_address)


class LoopbackService:
    """An HTTP server of ours on 127.0.0.1, a free port, served from a background thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.server = QuietServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=name)

    @property
    def url(self) -> str:
        """The server's loopback URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()


class Router(LoopbackService):
    """An HTTP server on loopback that forwards each request to the region DNS resolves to."""

    def __init__(
        self, resolver: Resolver, endpoints: Mapping[str, str], *, upstream_timeout: float = 2.0
    ) -> None:
        self.resolver = resolver
        self.endpoints = dict(endpoints)
        self.upstream_timeout = upstream_timeout
        super().__init__(self._handler(), "router")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                """Quiet: the load generator records every request."""

            def do_GET(self) -> None:
                router.forward(self)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

        return Handler

    def forward(self, request: BaseHTTPRequestHandler) -> None:
        """Send ``request`` to the resolved region; 502/504 when it does not answer."""
        region = self.resolver.resolve()
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        target = self.endpoints.get(region or "")
        if target is None:
            return _reply(request, 502, {"X-Router": "no-region"}, b'{"message": "no region"}')
        parts = urlsplit(target)
        conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=self.upstream_timeout
        )
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
            conn.request(request.command, request.path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            out = {k: v for k, v in response.getheaders() if k.lower() not in HOP_HEADERS}
            out["X-Served-By-Region"] = region or ""
            _reply(request, response.status, out, payload)
        except (OSError, http.client.HTTPException) as exc:
            status = 504 if isinstance(exc, TimeoutError) else 502
            _reply(
                request,
                status,
                {"X-Served-By-Region": region or ""},
                b'{"message": "upstream region did not answer"}',
            )
        finally:
            conn.close()


def _reply(
    request: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], body: bytes
) -> None:
    try:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
    except OSError:
        log.debug("client went away")
