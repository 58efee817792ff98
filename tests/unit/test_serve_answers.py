"""The status page always answers, and answers only the names it was told.

An action whose control table has no majority, loses its answer or hangs gets a JSON answer
saying what became of its write (never a closed connection); a ``Content-Length`` that does not
parse gets 400; the Host check accepts the address the server prints, whatever it listens on,
and a wildcard address must be told its names. Stub sources: no AWS, no emulator.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller.errors import ConflictError, NoMajorityError, OutcomeUnknownError, UsageError
from controller.serve import Api, Cached, Sources, StatusServer
from controller.serve.server import host_names
from tests.conftest import CliResult

TOKEN = "a-token-for-the-answers-tests"
#: How long a client of these tests waits for an answer: far more than any answer takes.
CLIENT_WAIT = 30.0


def sources(set_paused: Callable[[bool, str], dict[str, Any]], wait: float = 5.0) -> Sources:
    def const(value: Any) -> Cached[Any]:
        return Cached(lambda: value, max_age=1.0, wait=1.0)

    return Sources(
        status=const({"app": "orders", "active_region": "r1", "regions": {}}),
        runs=const({"runs": []}),
        run=const(None),
        watchers=const({"automation": {"paused": False}}),
        graph={"nodes": [], "edges": [], "activation_levels": []},
        config={"app": "orders", "regions": ["r1"], "components": {}},
        set_paused=set_paused,
        action_wait=wait,
    )


def post(url: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=b"{}", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_WAIT) as response:  # noqa: S310
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read())


@pytest.fixture
def serving() -> Iterator[Callable[..., StatusServer]]:
    """Start servers of stub sources; every one is stopped at the end."""
    started: list[StatusServer] = []

    def start(set_paused: Callable[[bool, str], dict[str, Any]], **kwargs: Any) -> StatusServer:
        server = StatusServer(Api(sources(set_paused, **kwargs), token=TOKEN)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def raising(error: Exception) -> Callable[[bool, str], dict[str, Any]]:
    def set_paused(paused: bool, reason: str) -> dict[str, Any]:
        raise error

    return set_paused


@pytest.mark.parametrize(
    ("error", "code", "outcome"),
    [
        (
            NoMajorityError("the control table t has no majority: ...; nothing was written"),
            503,
            "refused",
        ),
        (OutcomeUnknownError("the control table t did not confirm the write"), 503, "unknown"),
        (ConflictError("automation pause not applied: the switch changed"), 409, "refused"),
        (RuntimeError("a bug below"), 500, "unknown"),
    ],
)
def test_an_action_without_a_control_majority_gets_a_json_answer_saying_its_outcome(
    serving: Callable[..., StatusServer], error: Exception, code: int, outcome: str
) -> None:
    server = serving(raising(error))
    status, body = post(server.url + "api/automation/pause")
    assert (status, body["outcome"]) == (code, outcome)
    assert body["error"] and len(body["error"].splitlines()) == 1


def test_an_action_hung_on_the_control_table_answers_unknown_within_its_wait(
    serving: Callable[..., StatusServer],
) -> None:
    release = threading.Event()
    writes: list[bool] = []

    def hung(paused: bool, reason: str) -> dict[str, Any]:
        writes.append(paused)
        release.wait(CLIENT_WAIT)
        return {"paused": paused}

    server = serving(hung, wait=0.5)
    try:
        status, body = post(server.url + "api/automation/pause")
        assert (status, body["outcome"]) == (503, "unknown")
        assert "did not answer within 0.5s" in body["error"]
        assert "may still be applied" in body["error"]
        # the write still waits: a second action is refused, not piled up behind it
        status, body = post(server.url + "api/automation/resume")
        assert (status, body["outcome"]) == (409, "refused")
        assert writes == [True]
    finally:
        release.set()


def test_a_done_action_says_so_with_the_switch_it_wrote(
    serving: Callable[..., StatusServer],
) -> None:
    server = serving(lambda paused, reason: {"paused": paused, "reason": reason})
    status, body = post(server.url + "api/automation/pause")
    assert (status, body["outcome"], body["paused"]) == (200, "done", True)


def raw(server: StatusServer, request: bytes) -> bytes:
    """Send ``request`` as it is and return everything the server sends back."""
    with socket.create_connection((server.host, server.port), timeout=CLIENT_WAIT) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("length", ["abc", "\u00b2", "-1", "1e3", "0x10"])
def test_a_content_length_that_does_not_parse_gets_400_not_a_closed_connection(
    serving: Callable[..., StatusServer], length: str
) -> None:
    written: list[bool] = []
    server = serving(lambda paused, reason: written.append(paused) or {"paused": paused})
    answer = raw(
        server,
        b"POST /api/automation/pause HTTP/1.1\r\nHost: "
        + server.address.encode()
        + b"\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Length: "
        + length.encode()
        + b"\r\n\r\n{}",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split()[1] == b"400", answer
    assert "Content-Length" in json.loads(body)["error"]
    assert written == []  # refused before anything acted


def test_the_printed_address_is_accepted_on_any_loopback_address() -> None:
    api = Api(sources(raising(RuntimeError())), token=TOKEN)
    with StatusServer(api, host="127.0.0.2") as server:
        assert server.url == f"http://127.0.0.2:{server.port}/"
        with urllib.request.urlopen(server.url + "api/config", timeout=CLIENT_WAIT) as answer:  # noqa: S310
            assert answer.status == 200
        assert api.handle("GET", "/api/status", {"Host": f"localhost:{server.port}"}).status == 200
        assert api.handle("GET", "/api/status", {"Host": "rebound.example"}).status == 403


def test_on_port_80_a_host_without_its_port_is_accepted() -> None:
    """``curl http://127.0.0.1/`` sends ``Host: 127.0.0.1``: the default port left out."""
    address, accepted = host_names("127.0.0.1", 80, ())
    assert address == "127.0.0.1:80"
    assert {"127.0.0.1", "localhost", "127.0.0.1:80"} <= accepted
    assert "evil.example" not in accepted and "127.0.0.1:8080" not in accepted
    assert "127.0.0.1" not in host_names("127.0.0.1", 8080, ())[1]


def test_a_wildcard_bind_needs_the_names_it_answers_to() -> None:
    """Refused without names (nothing bound); with names, only they are accepted and the first
    is the printed address (computed without binding: tests listen on the loopback only)."""
    api = Api(sources(raising(RuntimeError())))
    for wildcard in ("0.0.0.0", "::", "[::]", ""):  # noqa: S104 - refused, never bound
        with pytest.raises(UsageError, match="--allow-host"):
            StatusServer(api, host=wildcard)
    address, accepted = host_names("", 8080, ["status.internal", "10.0.0.5:8080"])
    assert address == "status.internal:8080"
    assert accepted == {"status.internal:8080", "10.0.0.5:8080"}  # no loopback name, no other


def test_failover_serve_on_a_wildcard_without_names_is_refused_before_anything_starts(
    cli: Callable[..., CliResult],
) -> None:
    result = cli("serve", "--host", "0.0.0.0", "--manifest", "/nonexistent/manifest.json")  # noqa: S104
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "--allow-host" in result.err
    assert "status page" not in result.out


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_serve_listens_on_the_ipv6_loopback_and_accepts_its_printed_address() -> None:
    api = Api(sources(raising(RuntimeError())))
    with StatusServer(api, host="::1") as server:
        assert server.url == f"http://[::1]:{server.port}/"
        with urllib.request.urlopen(server.url + "api/config", timeout=CLIENT_WAIT) as answer:  # noqa: S310
            assert answer.status == 200
        assert api.handle("GET", "/api/status", {"Host": f"127.0.0.1:{server.port}"}).status == 200
