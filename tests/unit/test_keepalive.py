"""The sandbox servers keep a caller's connection across requests (sandbox/keepalive.py): each
request is answered whole, whatever of its body the application read, and a request whose body
has no length is answered on a connection that closes, as werkzeug answers every request."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from sandbox import keepalive
from sandbox.keepalive import KeepAlive


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Echo the body, or read none of it (``/ignore``), and say which connection it came on."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = b"" if environ["PATH_INFO"] == "/ignore" else environ["wsgi.input"].read(length)
    answer = f"{environ['REMOTE_PORT']} {body.decode()}".encode()
    start_response("200 OK", [("Content-Length", str(len(answer)))])
    return [answer]


@pytest.fixture
def server() -> Iterator[BaseWSGIServer]:
    served = make_server("127.0.0.1", 0, app, threaded=True, request_handler=KeepAlive)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served
    served.shutdown()
    thread.join(5)
    served.server_close()


def ask(conn: http.client.HTTPConnection, path: str, body: bytes = b"") -> tuple[str, str | None]:
    conn.request("POST", path, body=body)
    answer = conn.getresponse()
    return answer.read().decode(), answer.getheader("Connection")


def test_requests_share_a_connection_whatever_of_their_bodies_was_read(
    server: BaseWSGIServer,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        first, closing = ask(conn, "/", b"one")
        ignored, _ = ask(conn, "/ignore", b"GET /smuggled HTTP/1.1\r\n\r\n" * 100)
        last, _ = ask(conn, "/", b"three")
    finally:
        conn.close()
    port = first.split()[0]
    assert (first, closing) == (f"{port} one", None)
    assert ignored == f"{port} "  # the unread body was skipped, not taken for a request
    assert last == f"{port} three"


def test_a_chunked_request_is_answered_on_a_connection_that_closes(
    server: BaseWSGIServer,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", "/", body=iter([b"a", b"b"]), encode_chunked=True)
        answer = conn.getresponse()
        answer.read()
    finally:
        conn.close()
    assert answer.getheader("Connection") == "close"


def test_past_its_most_kept_connections_a_server_closes_them_as_werkzeug_does(
    server: BaseWSGIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keepalive, "MOST_KEPT", 1)
    first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    second = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        _, kept = ask(first, "/", b"a")
        _, closed = ask(second, "/", b"b")
    finally:
        first.close()
        second.close()
    assert (kept, closed) == (None, "close")
