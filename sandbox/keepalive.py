"""Keep-alive connections for the sandbox's servers: a caller's next request reuses its connection.

werkzeug's development server closes the connection after every answer, because it cannot tell
where one request's body ends and the next request begins (it drains whatever the socket holds
after each answer). Every AWS call then paid a new TCP connection, and the server a new thread,
about a fifth of both sides' CPU per request. :class:`KeepAlive` gives the handler that boundary:
the application reads a request's body from a stream that ends with the body
(``Content-Length``), the rest of the body is read before the answer is sent, and the answer no
longer says ``Connection: close``. A request whose body has no length (chunked), one from an
HTTP/1.0 client or one that asks to close is answered as before, on a connection that closes.
"""

from __future__ import annotations

import threading
from typing import Any, BinaryIO

from werkzeug.serving import WSGIRequestHandler

_CHUNK = 1 << 16
#: The most connections a server keeps open at once; past it, an answer closes its connection
#: as werkzeug's do. A caller's pool keeps each connection until that caller is closed (each
#: client a test made), so this bounds the descriptors a test process holds, about 80 before.
MOST_KEPT = 16


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

    def drain(self) -> None:
        """Read and forget what the application left of the body."""
        while self.left > 0 and self.read(_CHUNK):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def body_length(headers: Any) -> int | None:
    """The length of a request's body as its headers give it, or None when it has none that a
    connection could be kept across (chunked, or not a number).

    >>> body_length({"Content-Length": "12"}), body_length({}), body_length({"Content-Length": "x"})
    (12, 0, None)
    >>> body_length({"Transfer-Encoding": "chunked"}) is None
    True
    """
    if headers.get("Transfer-Encoding"):
        return None
    length = str(headers.get("Content-Length") or "0").strip()
    return int(length) if length.isdigit() else None


class KeepAlive(WSGIRequestHandler):
    """werkzeug's request handler, keeping an HTTP/1.1 connection open across requests whose
    bodies have a length (see the module's docstring)."""

    #: A kept connection's answer goes out in more than one write (headers, body, chunks):
    #: with Nagle's algorithm on, each later write waited for the caller's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    _body: Body | None = None
    #: The connections this server has open (shared by its handlers).
    _open = [0]
    _count = threading.Lock()

    def setup(self) -> None:
        """Count the connection as open."""
        super().setup()
        with self._count:
            self._open[0] += 1

    def finish(self) -> None:
        """Count the connection as closed."""
        with self._count:
            self._open[0] -= 1
        super().finish()

    def run_wsgi(self) -> None:
        """Serve one request with its body bounded, so that the next request stays unread."""
        length = body_length(self.headers)
        if length is None or self._open[0] > MOST_KEPT:
            self.close_connection = True
            super().run_wsgi()
            return
        raw = self.rfile
        self._body = Body(raw, length)  # type: ignore[arg-type]
        self.rfile = self._body  # type: ignore[assignment]
        try:
            super().run_wsgi()
        finally:
            self.rfile = raw
            if self._body.left > 0:  # not drained (an answer never sent): it cannot be kept
                self.close_connection = True
            self._body = None

    def send_response(self, code: int, message: str | None = None) -> None:
        """Read the rest of the request's body first: the next request starts after it."""
        if self._body is not None:
            self._body.drain()
        super().send_response(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        """Every header but werkzeug's ``Connection: close`` on a connection that is kept."""
        closing = keyword.lower() == "connection" and value.lower() == "close"
        if closing and self._body is not None and not self.close_connection:
            return
        super().send_header(keyword, value)
