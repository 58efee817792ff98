"""The status page's HTTP server: the standard library's threading server around :class:`Api`.

Called by ``failover serve`` and by the demo. ``http.server.ThreadingHTTPServer`` and no web
framework: the page is six GET routes and two POSTs, the controller ships as a Lambda bundle
that should not carry a web stack, and every request is answered from a cached snapshot, so
one thread per request is plenty. It binds 127.0.0.1 unless told otherwise (an IPv6 address
too), and answers only requests whose ``Host`` names it: the address it listens on (on the
loopback, every loopback name), and the names it is told; a wildcard address (``0.0.0.0``,
``::``) must be told them, since any name could reach it (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import threading
from collections.abc import Collection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from controller.errors import UsageError
from controller.serve.api import HEADERS, MAX_BODY, Api, Response

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
#: The names a loopback address is reached by from this machine.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: A ``Content-Length`` as HTTP defines it: ASCII digits only.
_LENGTH = re.compile(r"[0-9]{1,12}")


class StatusServer:
    """Serve ``api`` on ``host:port`` (0: a free port) in a background thread until stopped.

    ``allowed_hosts``: the names (``host`` or ``host:port``) the page answers to besides its own
    address; required when ``host`` is a wildcard address.

    Raises
    ------
    UsageError
        The address cannot be listened on, or is a wildcard and no name was given (exit 2).
    """

    def __init__(
        self,
        api: Api,
        host: str = LOOPBACK,
        port: int = 0,
        allowed_hosts: Collection[str] = (),
    ) -> None:
        host = check_listen(host, allowed_hosts)
        wildcard = _is_wildcard(host)
        handler = type("Handler", (_Handler,), {"api": api})
        server_class = _Server6 if ":" in host else _Server
        try:
            self.httpd = server_class((host, port), handler)
        except (OSError, OverflowError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise UsageError(f"cannot listen on {_netloc(host, port)}: {why}") from exc
        self.httpd.daemon_threads = True
        self.api = api
        bound_host, bound_port = self.httpd.server_address[:2]
        self.host, self.port = str(bound_host), int(bound_port)
        #: The address printed: the one listened on, or for a wildcard the first name given.
        self.address, accepted = host_names("" if wildcard else self.host, self.port, allowed_hosts)
        api.allowed_hosts |= accepted
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address (always one its Host check accepts)."""
        return f"http://{self.address}/"

    def start(self) -> StatusServer:
        """Start answering in a background thread."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name="serve-http",
        )
        self._thread.start()
        log.info("status page at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop answering and close the socket."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def check_listen(host: str, allowed_hosts: Collection[str]) -> str:
    """``host`` without brackets, once it is known the page may listen there: a wildcard
    address needs the names it answers to.

    Raises
    ------
    UsageError
        ``host`` is a wildcard address and ``allowed_hosts`` is empty (exit 2).

    >>> check_listen("[::1]", ())
    '::1'
    """
    host = host.strip().removeprefix("[").removesuffix("]")
    if _is_wildcard(host) and not any(h.strip() for h in allowed_hosts):
        raise UsageError(
            f"--host {host or repr(host)} answers any name that reaches this machine (a web "
            "page could read it through a rebound DNS name): name the hosts it answers to "
            "with --allow-host NAME (repeatable), or listen on one address"
        )
    return host


def host_names(host: str, port: int, allowed_hosts: Collection[str]) -> tuple[str, set[str]]:
    """The address to print and every ``Host`` header to accept, for a page listening on
    ``host`` (empty: a wildcard) and ``port``: the address itself, every loopback name when it
    is on the loopback, and ``allowed_hosts``; on port 80 each also without the port, as a
    browser sends it.

    >>> host_names("127.0.0.2", 80, ())[0], sorted(host_names("127.0.0.2", 80, ())[1])[:3]
    ('127.0.0.2:80', ['127.0.0.1', '127.0.0.1:80', '127.0.0.2'])
    >>> host_names("", 8080, ["Status.Example"])
    ('status.example:8080', {'status.example:8080'})
    """
    named = [_with_port(h.strip().lower(), port) for h in allowed_hosts if h.strip()]
    own = [_netloc(host, port)] if host else []
    if host and _is_loopback(host):
        own += [_netloc(n, port) for n in LOOPBACK_NAMES]
    accepted = {*own, *named}
    if port == 80:  # a browser leaves the default port out of Host
        accepted |= {h.removesuffix(":80") for h in accepted if h.endswith(":80")}
    return (own or named)[0], {h.lower() for h in accepted}


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _is_wildcard(host: str) -> bool:
    """True for an address that listens on every interface (``0.0.0.0``, ``::``, empty)."""
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _netloc(host: str, port: int) -> str:
    """``host:port`` as a URL and a ``Host`` header write it (an IPv6 address in brackets).

    >>> _netloc("::1", 8080), _netloc("127.0.0.2", 80)
    ('[::1]:8080', '127.0.0.2:80')
    """
    bare = host.removeprefix("[").removesuffix("]")
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def _with_port(name: str, port: int) -> str:
    """A ``--allow-host`` name as a ``Host`` header carries it: with the port when it has none.

    >>> _with_port("status.example", 8080), _with_port("status.example:443", 8080)
    ('status.example:8080', 'status.example:443')
    >>> _with_port("::1", 80), _with_port("[::1]:8080", 80)
    ('[::1]:80', '[::1]:8080')
    """
    if name.startswith("[") and "]:" in name:
        return name
    if name.count(":") == 1:
        return name
    return _netloc(name, port)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A viewer that went away mid-answer is no error worth a traceback on the terminal."""
        log.debug("request from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    """The same server on an IPv6 address (``--host ::1``)."""

    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    api: Api
    server_version = "failover-serve"
    sys_version = ""
    timeout = 15  # a client that stops sending holds its thread no longer than this

    def _answer(self) -> None:
        length = (self.headers.get("Content-Length") or "0").strip()
        if not _LENGTH.fullmatch(length):
            # The body's end is unknown: answer, and close instead of reading the next request.
            self.close_connection = True
            return self._send(_json_error(400, f"Content-Length {length[:40]!r} is not a number"))
        size = int(length)
        if size > MAX_BODY:
            self.close_connection = True
            return self._send(_json_error(413, "request body too large"))
        body = self.rfile.read(size) if size else b""
        try:
            response = self.api.handle(self.command, self.path, dict(self.headers.items()), body)
        except Exception as exc:  # an answer, not a closed connection, whatever went wrong
            log.exception("%s %s failed", self.command, self.path)
            response = _json_error(500, f"{type(exc).__name__}: the server failed")
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in {**HEADERS, **response.headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def _json_error(status: int, message: str) -> Response:
    return Response(status, json.dumps({"error": message}).encode("utf-8"))
