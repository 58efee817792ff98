"""The local router: resolves the API's DNS name exactly as Route 53 failover would, and forwards.

Called by the data plane. Route 53's checkers run in the global server (:mod:`sandbox.route53`)
and ``GetHealthCheckStatus`` answers what they found; the router answers the API's name from the
failover records and that status, as Route 53's resolvers do: the PRIMARY record when its check
is healthy (an inverted check reads the other way), else the SECONDARY when its is, else the
PRIMARY, cached for the record's TTL on the sandbox's clock (:mod:`controller.clock`). Each
load client sits behind a resolver of its own (:class:`Resolvers`), as a population of clients
spreads over many recursive resolvers. Every server here binds 127.0.0.1.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from controller import clock
from controller.aws import Clients
from controller.contract import GLOBAL, normalize_host
from controller.health.verdicts import route53_healthy
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)

#: AWS seconds a resolver keeps its last answer when Route 53 could not be read.
UNREADABLE_TTL = 10.0
#: AWS seconds the router waits for a regional endpoint: API Gateway's integration timeout (an
#: HTTP API's 30 s), at least :data:`UPSTREAM_WALL_FLOOR` on the wall, which is longer than a
#: client's own (:data:`sandbox.loadgen.SOCKET_WALL_FLOOR`): as on AWS, the client gives up
#: first, and a live region that answers late on this machine's busy cores is still answered.
INTEGRATION_TIMEOUT = 30.0
UPSTREAM_WALL_FLOOR = 6.0
#: The header a load client names itself by, ``i/n``: the i-th of n clients (:class:`Resolvers`).
CLIENT_HEADER = "X-Failover-Client"
#: Headers not forwarded: the hop's own, and the client's name (for its resolver, not the API).
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "host",
    "content-length",
    CLIENT_HEADER.lower(),
}


@dataclass
class Resolver:
    """Answers the API's name from the failover records, the checks and their inversion."""

    clients: Clients
    manifest: Manifest
    ttl: float | None = None  # None: each answer's record's own TTL
    #: The share of the TTL its first answer is kept: a resolver that already held the record
    #: when its client first asked hands it over with what was left of its TTL.
    first_share: float = 1.0
    _cached: tuple[float, str | None] | None = None
    _expires: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: One lookup at a time: the requests that find the answer expired wait for it, as a
    #: resolver's clients do, instead of each asking Route 53 again.
    _asking: threading.Lock = field(default_factory=threading.Lock)

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
        with self._asking:
            now = clock.monotonic()
            with self._lock:
                if self._cached and now < self._expires:
                    return self._cached[1]
            region, ttl = self._answer()
            with self._lock:
                share = self.first_share if self._cached is None else 1.0
                self._cached = (now, region)
                self._expires = now + (self.ttl if self.ttl is not None else ttl) * share
            return region

    def cached(self) -> str | None:
        """The answer it holds now (None: none yet, or expired), without asking Route 53."""
        with self._lock:
            if self._cached and clock.monotonic() < self._expires:
                return self._cached[1]
            return None

    def _answer(self) -> tuple[str | None, float]:
        """The region the records answer now, and the TTL of the record that answered."""
        dns = self.manifest.dns
        if dns is None:
            return None, 0.0
        r53 = self.clients.client("route53", GLOBAL)
        try:
            return self._lookup(r53, dns.zone_id, dns.record)
        except Exception as exc:  # Route 53 is global; if even it is gone, keep the last answer
            log.warning("route53 unreadable: %s", exc)
            return (self._cached[1] if self._cached else None), UNREADABLE_TTL

    def _lookup(self, r53: Any, zone_id: str, record: str) -> tuple[str | None, float]:
        """:meth:`_answer` read from Route 53: the records, then each one's health check. Any
        of these reads may fail (a busy global server, its client's short timeouts): a
        resolver then keeps its last answer, as resolvers serve a stale one, and the request
        that asked is forwarded, not dropped."""
        records = r53.list_resource_record_sets(HostedZoneId=zone_id)
        by_role: dict[str, Any] = {}
        for rs in records["ResourceRecordSets"]:
            if rs.get("Failover") and rs["Name"].rstrip(".") == record.rstrip("."):
                by_role[rs["Failover"]] = rs
        hosts = self.host_region()
        for role in ("PRIMARY", "SECONDARY"):
            chosen = by_role.get(role)
            if chosen and self._healthy(r53, chosen, hosts):
                return _region(chosen, hosts), float(chosen.get("TTL", 60))
        primary = by_role.get("PRIMARY")
        if primary is None:
            return None, 1.0
        return _region(primary, hosts), float(primary.get("TTL", 60))

    def _healthy(self, r53: Any, rs: Mapping[str, Any], hosts: Mapping[str, str]) -> bool:
        """The record's health check as Route 53 uses it: what its checkers found, inverted
        when the check is."""
        check_id = rs.get("HealthCheckId")
        if _region(rs, hosts) is None:
            return False
        if not check_id:
            return True
        config = r53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
        found = r53.get_health_check_status(HealthCheckId=check_id)["HealthCheckObservations"]
        healthy = route53_healthy(found)
        return not healthy if config.get("Inverted") else healthy


class Resolvers:
    """The clients' resolvers: one per load client (named by :data:`CLIENT_HEADER`), and
    ``default`` for any other caller.

    Client i of n first gets its answer from a resolver that already held the record, with a
    share of its TTL left drawn in [i/n, (i+1)/n): the population's answers expire spread over
    one TTL, as a real population's do. With one resolver for every client, all of them moved
    at one instant, and where that instant fell after the records changed was an accident of
    the warm-up: the same outage was back to full service 30 s or 90 s after it.
    """

    def __init__(self, default: Resolver) -> None:
        self.default = default
        self._by_client: dict[tuple[int, int], Resolver] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()

    def of(self, client: str | None) -> Resolver:
        """The resolver of the client named ``client`` (a header's value; the default one for
        none, or a name that is not ``i/n``)."""
        key = client_of(client)
        if key is None:
            return self.default
        with self._lock:
            got = self._by_client.get(key)
            if got is None:
                i, n = key
                got = Resolver(
                    self.default.clients,
                    self.default.manifest,
                    ttl=self.default.ttl,
                    first_share=(i + self._rng.random()) / n,
                )
                self._by_client[key] = got
            return got

    def answers(self) -> list[str | None]:
        """What each client's resolver holds now (None: nothing yet, or expired)."""
        with self._lock:
            resolvers = list(self._by_client.values())
        return [r.cached() for r in resolvers]


def client_of(name: str | None) -> tuple[int, int] | None:
    """``(i, n)`` from a client's name ``i/n`` (0 <= i < n), else None.

    >>> client_of("3/16"), client_of("16/16"), client_of("x/2"), client_of(None)
    ((3, 16), None, None, None)
    """
    i, _, n = (name or "").partition("/")
    if not (i.isdigit() and n.isdigit()) or not 0 <= int(i) < int(n):
        return None
    return int(i), int(n)


def _region(rs: Mapping[str, Any], hosts: Mapping[str, str]) -> str | None:
    return hosts.get(normalize_host(rs["ResourceRecords"][0]["Value"]))


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

    def __init__(self, resolver: Resolver, endpoints: Mapping[str, str]) -> None:
        self.resolver = resolver
        self.resolvers = Resolvers(resolver)
        self.endpoints = dict(endpoints)
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
        region = self.resolvers.of(request.headers.get(CLIENT_HEADER)).resolve()
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        target = self.endpoints.get(region or "")
        if target is None:
            return _reply(request, 502, {"X-Router": "no-region"}, b'{"message": "no region"}')
        parts = urlsplit(target)
        conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1",
            parts.port,
            timeout=clock.wall(clock.patient(INTEGRATION_TIMEOUT, UPSTREAM_WALL_FLOOR)),
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
