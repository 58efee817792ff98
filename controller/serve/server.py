"""The status page's HTTP server: the standard library's threading server around :class:`Api`.

Called by ``failover serve`` and by the demo. ``http.server.ThreadingHTTPServer`` and no web
framework: the page is six GET routes and two POSTs, the controller ships as a Lambda bundle
that should not carry a web stack, and every request is answered from a cached snapshot, so
one thread per request is plenty. It binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from controller.errors import UsageError
from controller.serve.api import HEADERS, MAX_BODY, Api

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class StatusServer:
    """Serve ``api`` on ``host:port`` (0: a free port) in a background thread until stopped."""

    def __init__(self, api: Api, host: str = LOOPBACK, port: int = 0) -> None:
        handler = type("Handler", (_Handler,), {"api": api})
        try:
            self.httpd = _Server((host, port), handler)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.httpd.daemon_threads = True
        self.api = api
        bound_host, bound_port = self.httpd.server_address[:2]
        self.host, self.port = str(bound_host), int(bound_port)
        if not api.allowed_hosts and _is_loopback(self.host):
            api.allowed_hosts = {
                f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]")
            }
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address."""
        return f"http://{self.host}:{self.port}/"

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


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A viewer that went away mid-answer is no error worth a traceback on the terminal."""
        log.debug("request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    api: Api
    server_version = "failover-serve"
    sys_version = ""
    timeout = 15  # a client that stops sending holds its thread no longer than this

    def _answer(self) -> None:
        length = self.headers.get("Content-Length") or "0"
        size = int(length) if length.isdigit() else 0
        if size > MAX_BODY:
            self.send_error(413, "request body too large")
            return
        body = self.rfile.read(size) if size else b""
        response = self.api.handle(self.command, self.path, dict(self.headers.items()), body)
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
