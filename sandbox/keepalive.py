"""The sandbox servers' HTTP/1.1 front: keep-alive connections, each request parsed once.

werkzeug's development server, which moto's server runs on, closes the connection after every
answer (it cannot tell where a request's body ends and the next request begins), parses every
request's headers with the email package and drains the socket after each answer. Behind a
server of the sandbox, that front cost more CPU than moto's own work for most calls: a
``ListTables`` took 0.71 ms of the server's CPU, 0.32 ms of it in the application.

:class:`KeepAlive` is the request handler instead: HTTP/1.1 on connections kept across requests,
the request line and headers read as bytes, the WSGI environ werkzeug and moto's handler would
build (``PATH_INFO`` unquoted, ``x-amz-meta-`` headers with underscores kept as moto keeps them),
and each answer written in one call. The application reads a request's body from a stream that
ends with the body (``Content-Length``); what it left unread is read before the answer is sent.
A request whose body has no length (chunked), one from an HTTP/1.0 client or one that asks to
close is answered on a connection that closes, as werkzeug answers every request.
"""

from __future__ import annotations

import email.utils
import logging
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit

from werkzeug import serving
from werkzeug.serving import BaseWSGIServer, DechunkedInput

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
#: The most connections a server keeps open at once; past it, an answer closes its connection
#: as werkzeug's do. A caller's pool keeps each connection until that caller is closed (each
#: client a test made), so this bounds the descriptors a test process holds, about 80 before.
MOST_KEPT = 16
#: The longest request line or header line taken, and the most header lines (http.server's).
MAX_LINE = 65536
MAX_HEADERS = 100
#: Connections a caller drops mid-request or mid-answer: nothing to answer, nothing to log.
DROPPED = (ConnectionError, TimeoutError)
_NO_BODY = frozenset({HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED})
try:  # moto keeps S3 metadata headers with underscores under their own names (moto 5.1 on)
    from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY as _PRESERVED
except ImportError:  # an older moto folds them as werkzeug does: dropped
    _PRESERVED = ""


class Body:
    """``raw`` (the connection's buffered input) up to ``length`` bytes, then at its end.

    >>> import io
    >>> raw = io.BytesIO(b"abcdefGET / HTTP/1.1")
    >>> body = Body(raw, 6)
    >>> body.read(4), body.read(), body.read(), body.left
    (b'abcd', b'ef', b'', 0)
    >>> raw.read()
    b'GET / HTTP/1.1'
    """

    def __init__(self, raw: BinaryIO, length: int) -> None:
        self.raw = raw
        self.left = length

    def _size(self, size: int | None) -> int:
        return self.left if size is None or size < 0 else min(size, self.left)

    def _took(self, data: bytes) -> bytes:
        self.left = self.left - len(data) if data else 0  # no data: the caller went away
        return data

    def read(self, size: int | None = -1) -> bytes:
        """At most ``size`` bytes of what is left of the body (all of it by default)."""
        return self._took(self.raw.read(self._size(size))) if self.left > 0 else b""

    def read1(self, size: int | None = -1) -> bytes:
        """:meth:`read`, as a buffered stream's ``read1``."""
        return self.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        """One line of what is left of the body, at most ``size`` bytes."""
        return self._took(self.raw.readline(self._size(size))) if self.left > 0 else b""

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``; the number of bytes read."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def body_length(environ: dict[str, Any]) -> int | None:
    """The length of a request's body as its environ gives it, or None when it has none that a
    connection could be kept across (chunked, or not a number).

    >>> body_length({"CONTENT_LENGTH": "12"}), body_length({}), body_length({"CONTENT_LENGTH": "x"})
    (12, 0, None)
    >>> body_length({"HTTP_TRANSFER_ENCODING": "chunked"}) is None
    True
    """
    if environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    length = str(environ.get("CONTENT_LENGTH") or "0").strip()
    return int(length) if length.isdigit() else None


def split_target(target: str) -> tuple[str, str, str | None]:
    """A request target's path (unquoted), query and host (for an absolute URL), as werkzeug
    reads them.

    >>> split_target("/a%20b/c?x=1&y=2")
    ('/a b/c', 'x=1&y=2', None)
    >>> split_target("http://example.com/p?q"), split_target("//twice/p")
    (('/p', 'q', 'example.com'), ('/twice/p', '', None))
    """
    if target.startswith("/") and not target.startswith("//"):
        path, _, query = target.partition("#")[0].partition("?")
        return unquote(path), query, None
    url = urlsplit(target)
    path = f"/{url.netloc}{url.path}" if not url.scheme and url.netloc else url.path
    return unquote(path), url.query, url.netloc if url.scheme and url.netloc else None


def _latin1(text: str) -> str:
    """WSGI's native strings: the UTF-8 bytes of ``text`` as latin-1 (PEP 3333)."""
    return text.encode().decode("latin1")


_DATE: list[Any] = [0, ""]


def http_date() -> str:
    """The ``Date`` header's value, formatted once a second."""
    now = int(time.time())
    if _DATE[0] != now:
        _DATE[:] = [now, email.utils.formatdate(now, usegmt=True)]
    return str(_DATE[1])


class BadRequest(Exception):
    """A request that cannot be read as HTTP/1.x: answered with its status, then closed."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


class KeepAlive(socketserver.StreamRequestHandler):
    """The request handler of a sandbox server (werkzeug's server, its WSGI application in
    ``server.app``): requests one after another on a kept connection (see the module's
    docstring)."""

    #: An answer goes out in one write, but a 100 Continue goes before it: with Nagle's
    #: algorithm on, a later write would wait for the caller's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: Any
    #: The connections this server has open (shared by its handlers).
    _open = [0]
    _count = threading.Lock()

    def handle(self) -> None:
        """Serve requests until the caller or an answer closes the connection."""
        with self._count:
            self._open[0] += 1
        try:
            while self._serve_one():
                pass
        except DROPPED:
            pass
        finally:
            with self._count:
                self._open[0] -= 1

    def _serve_one(self) -> bool:
        """Read, answer and log one request; whether the connection stays open."""
        try:
            request = self._read()
            if request is None:
                return False
            environ, keep = request
            body = self._body(environ)
        except BadRequest as exc:
            self._answer(f"{exc.status.value} {exc.status.phrase}", [], [], closing=True)
            return False
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        keep = keep and isinstance(body, Body) and self._open[0] <= MOST_KEPT
        status, whole = self._run(environ, closing=not keep)
        if status.startswith("5"):
            self._log(environ, status)
        return keep and whole

    def _body(self, environ: dict[str, Any]) -> Body | DechunkedInput:
        """Give ``environ`` the request's body as a stream that ends with it."""
        raw = cast(BinaryIO, self.rfile)
        length = body_length(environ)
        if length is not None:
            body: Body | DechunkedInput = Body(raw, length)
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = DechunkedInput(raw)
            environ["wsgi.input_terminated"] = True
        else:
            raise BadRequest(HTTPStatus.BAD_REQUEST)  # a length that is not a number
        environ["wsgi.input"] = body
        return body

    def _read(self) -> tuple[dict[str, Any], bool] | None:
        """The next request's environ and whether its connection may be kept; None at the
        connection's end."""
        line = self.rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # blank lines before a request are ignored (RFC 9112)
            line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        if len(line) > MAX_LINE:
            raise BadRequest(HTTPStatus.REQUEST_URI_TOO_LONG)
        words = line.decode("latin-1").split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            raise BadRequest(HTTPStatus.BAD_REQUEST)
        method, target, version = words
        path, query, host = split_target(target)
        environ = self._environ(method, target, version, path, query)
        keep = version == "HTTP/1.1"
        for name, value in self._headers():
            if name.lower() == "connection":
                keep = keep and value.strip().lower() != "close"
            self._header(environ, name, value)
        if host is not None:  # an absolute URL's host stands for the Host header (RFC 9112)
            environ["HTTP_HOST"] = host
        return environ, keep

    def _headers(self) -> Iterable[tuple[str, str]]:
        """The request's header lines as (name, value), up to the blank line."""
        for _ in range(MAX_HEADERS + 1):
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            if line in (b"\r\n", b"\n", b""):
                return
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or not name or name != name.strip():
                raise BadRequest(HTTPStatus.BAD_REQUEST)
            yield name, value.strip()
        raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def _environ(
        self, method: str, target: str, version: str, path: str, query: str
    ) -> dict[str, Any]:
        """The environ of a request before its headers, as werkzeug's server makes it."""
        address = self.server.server_address
        environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": self.rfile,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "werkzeug.socket": self.connection,  # sandbox.mrsc.drop cuts the connection by it
            "SERVER_SOFTWARE": "sandbox",
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": _latin1(path),
            "QUERY_STRING": _latin1(query),
            "REQUEST_URI": _latin1(target),
            "RAW_URI": _latin1(target),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": self.client_address[1],
            "SERVER_NAME": address[0],
            "SERVER_PORT": str(address[1]),
            "SERVER_PROTOCOL": version,
        }
        return environ

    @staticmethod
    def _header(environ: dict[str, Any], name: str, value: str) -> None:
        """Add one header to ``environ``: a repeated one joined with a comma, one with an
        underscore in its name dropped (WSGI cannot tell it from a dashed one) unless moto
        keeps it under its own name (S3 metadata)."""
        key = name.upper().replace("-", "_")
        if "_" in name:
            if not _PRESERVED or not name.lower().startswith("x-amz-meta-"):
                return
            environ.setdefault(_PRESERVED, {})
            key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
            if key in environ and key not in environ[_PRESERVED]:
                return  # a dashed header of the same key stands: never replaced by this one
            environ[_PRESERVED].setdefault(key, name)
        elif key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value

    def _run(self, environ: dict[str, Any], closing: bool) -> tuple[str, bool]:
        """Run the application and send its answer after the rest of the request's body (the
        caller may still be sending it); the status sent, and whether the body was all read."""
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return chunks.append

        chunks: list[bytes] = []
        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except DROPPED:
            raise
        except Exception:
            log.exception("%s %s failed", environ["REQUEST_METHOD"], environ["PATH_INFO"])
            status = "500 Internal Server Error"
            text = b"Internal Server Error: the server's log says why\n"
            self._answer(status, [("Content-Type", "text/plain")], [text], closing=True)
            return status, False
        while environ["wsgi.input"].read(_CHUNK):
            pass
        status, headers = started
        bodiless = environ["REQUEST_METHOD"] == "HEAD" or int(status[:3]) in _NO_BODY
        self._answer(status, headers, chunks, closing, send=not bodiless)
        return str(status), True

    def _answer(
        self,
        status: str,
        headers: list[tuple[str, str]],
        chunks: list[bytes],
        closing: bool,
        send: bool = True,
    ) -> None:
        """Write one answer: its status, headers and (unless not to ``send`` it: HEAD, 204,
        304) body, in one write."""
        lines = [f"HTTP/1.1 {status}"]
        named = set()
        for name, value in headers:
            lower = name.lower()
            if lower in ("connection", "keep-alive", "transfer-encoding"):
                continue
            named.add(lower)
            lines.append(f"{name}: {value}")
        if "content-length" not in named:
            lines.append(f"Content-Length: {sum(len(chunk) for chunk in chunks)}")
        if "date" not in named:
            lines.append(f"Date: {http_date()}")
        if closing:  # _serve_one decided, MOST_KEPT included: the header says what happens
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(b"".join((head, *chunks)) if send else head)

    def _log(self, environ: dict[str, Any], status: str) -> None:
        """One line for an answer the server failed (5xx), as werkzeug logs requests."""
        print(
            f'{environ["REMOTE_ADDR"]} - - [{http_date()}] "{environ["REQUEST_METHOD"]} '
            f'{environ["RAW_URI"]} {environ["SERVER_PROTOCOL"]}" {status[:3]} -',
            file=sys.stderr,
            flush=True,
        )


def make_server(
    host: str, port: int, application: Callable[..., Iterable[bytes]], fd: int | None = None
) -> BaseWSGIServer:
    """werkzeug's threaded server for ``application`` on ``host:port`` (or the listening socket
    ``fd``), its requests handled by :class:`KeepAlive`."""
    handler = cast(Any, KeepAlive)  # werkzeug types it as its own; its server needs no more
    return serving.make_server(
        host, port, application, threaded=True, request_handler=handler, fd=fd
    )
