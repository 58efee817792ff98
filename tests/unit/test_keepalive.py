"""The sandbox servers keep a caller's connection across requests (sandbox/keepalive.py): each
request is answered whole, whatever of its body the application read, and a request whose body
has no length is answered on a connection that closes, as werkzeug answers every request."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer

from sandbox import keepalive
from sandbox.keepalive import make_server

PRESERVED = "moto.preserved_header_names"  # moto's key for headers kept under their own names


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Echo the body, or read none of it (``/ignore``), and say which connection it came on."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = b"" if environ["PATH_INFO"] == "/ignore" else environ["wsgi.input"].read(length)
    answer = f"{environ['REMOTE_PORT']} {body.decode()}".encode()
    start_response("200 OK", [("Content-Length", str(len(answer)))])
    return [answer]


def serving(application: Any) -> Iterator[BaseWSGIServer]:
    """A sandbox server's front for ``application`` on a free port, until the test ends."""
    served = make_server("127.0.0.1", 0, application)
    thread = threading.Thread(target=served.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield served
    served.shutdown()
    thread.join(5)
    served.server_close()


@pytest.fixture
def server() -> Iterator[BaseWSGIServer]:
    yield from serving(app)


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


def environ_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answer with the environ's request fields and headers, as JSON; raise on ``/boom``."""
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    fields = {k: v for k, v in environ.items() if k.isupper() and isinstance(v, str)}
    answer = json.dumps({**fields, "body": body.decode(), "kept": environ.get(PRESERVED)}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])  # no length: the front's
    return [answer]


@pytest.fixture
def environ_server() -> Iterator[BaseWSGIServer]:
    yield from serving(environ_app)


def raw(port: int, request: bytes) -> bytes:
    """Send ``request`` as it is and read until the server closes or 1 s passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        sock.settimeout(1)
        got = b""
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                got += chunk
    return got


def test_the_environ_is_werkzeugs_with_underscored_metadata_kept_as_moto_keeps_it(
    environ_server: BaseWSGIServer,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", environ_server.port, timeout=5)
    try:
        conn.putrequest("PUT", "/bucket/a%20key?x=1&y=%2F", skip_accept_encoding=True)
        for name, value in [
            ("Content-Type", "text/plain"),
            ("X-Amz-Meta-My_Key", "under"),
            ("X-Amz-Meta-Other", "dash"),
            ("X-Forwarded_For", "spoof"),
            ("X-Twice", "a"),
            ("X-Twice", "b"),
            ("Content-Length", "4"),
        ]:
            conn.putheader(name, value)
        conn.endheaders(b"data")
        answer = conn.getresponse()
        got = json.loads(answer.read())
    finally:
        conn.close()
    assert answer.getheader("Content-Length") == str(len(json.dumps(got).encode()))
    assert (got["REQUEST_METHOD"], got["PATH_INFO"], got["QUERY_STRING"]) == (
        "PUT",
        "/bucket/a key",
        "x=1&y=%2F",
    )
    assert (got["CONTENT_TYPE"], got["CONTENT_LENGTH"], got["body"]) == ("text/plain", "4", "data")
    assert got["HTTP_X_AMZ_META_OTHER"] == "dash" and got["HTTP_X_TWICE"] == "a,b"
    assert "HTTP_X_FORWARDED_FOR" not in got  # an underscored header is not taken for a dashed one
    assert got["HTTP_X_AMZ_META_MY_KEY"] == "under"
    assert got["kept"] == {"HTTP_X_AMZ_META_MY_KEY": "X-Amz-Meta-My_Key"}


def test_a_caller_that_expects_100_continue_gets_it_before_its_answer(
    environ_server: BaseWSGIServer,
) -> None:
    got = raw(
        environ_server.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\nhi",
    )
    assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert got.endswith(b'"kept": null}')


def test_an_application_that_raises_answers_500_and_closes_the_connection(
    environ_server: BaseWSGIServer, capfd: pytest.CaptureFixture[str]
) -> None:
    got = raw(environ_server.port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"Connection: close" in got and got.count(b"HTTP/1.1 ") == 1  # the second never read
    assert '"GET /boom HTTP/1.1" 500' in capfd.readouterr().err


@pytest.mark.parametrize(
    ("request_line", "status"),
    [(b"NONSENSE\r\n", b"400"), (b"GET / SPDY/3\r\n", b"400"), (b"GET /" + b"a" * 70000, b"414")],
    ids=["one-word", "not-http", "too-long"],
)
def test_a_request_that_is_not_http_is_refused_with_its_status_and_closed(
    environ_server: BaseWSGIServer, request_line: bytes, status: bytes
) -> None:
    got = raw(environ_server.port, request_line + b"Host: x\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 " + status) and b"Connection: close" in got


def test_a_head_request_is_answered_with_no_body_on_a_kept_connection(
    environ_server: BaseWSGIServer,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", environ_server.port, timeout=5)
    try:
        conn.request("HEAD", "/")
        head = conn.getresponse()
        assert head.read() == b""
        conn.request("GET", "/again")
        again = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    # the length GET would have, no body, and the connection kept for the next request
    assert int(head.getheader("Content-Length") or 0) > 0 and head.getheader("Connection") is None
    assert again["PATH_INFO"] == "/again"


def test_an_absolute_target_names_the_host_whatever_the_host_header_says(
    environ_server: BaseWSGIServer,
) -> None:
    """botocore sends absolute targets through our clients' connections; werkzeug took the
    URL's host, and moto's S3 finds a bucket by it (a joined ``Host`` made every bucket absent)."""
    got = raw(
        environ_server.port,
        b"GET http://127.0.0.1:9/bkt?versioning HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"
        b"Connection: close\r\n\r\n",
    )
    answer = json.loads(got.split(b"\r\n\r\n", 1)[1])
    assert (answer["HTTP_HOST"], answer["PATH_INFO"], answer["QUERY_STRING"]) == (
        "127.0.0.1:9",
        "/bkt",
        "versioning",
    )
