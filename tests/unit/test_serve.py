"""The status page's API, cache and server, on stub sources (no AWS, no emulator)."""

from __future__ import annotations

import inspect
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from controller.errors import FailoverError, NotReadYetError
from controller.interfaces.cli.serve_cmds import serve as serve_verb
from controller.interfaces.serve import Api, Cached, Sources, StatusServer

TOKEN = "s3cret-token_value"


class Switch:
    """An automation switch that remembers every write."""

    def __init__(self) -> None:
        self.paused = False
        self.writes: list[tuple[bool, str]] = []

    def set(self, paused: bool, reason: str) -> dict[str, Any]:
        self.writes.append((paused, reason))
        self.paused = paused
        return {"paused": paused, "reason": reason}


def sources(switch: Switch, status: Any = None) -> Sources:
    def const(value: Any) -> Cached[Any]:
        return Cached(lambda: value, max_age=1.0, wait=1.0)

    return Sources(
        status=status or const({"app": "orders", "active_region": "r1", "regions": {}}),
        runs=const({"runs": []}),
        run=const(None),
        watchers=const({"automation": {"paused": switch.paused}}),
        graph={"nodes": [], "edges": [], "activation_levels": []},
        config={"app": "orders", "regions": ["r1", "r2"], "components": {}},
        set_paused=switch.set,
    )


def test_unknown_paths_are_404_and_reads_are_json() -> None:
    api = Api(sources(Switch()))
    for path in (
        "/nope",
        "/api/nope",
        "/api/status/../../etc/passwd",
        "/static/app.js",
        "/../pyproject.toml",
    ):
        assert api.handle("GET", path, {}).status == 404, path
    ok = api.handle("GET", "/api/status?x=1", {})
    assert ok.status == 200
    assert json.loads(ok.body)["active_region"] == "r1"
    page = api.handle("GET", "/", {})
    assert page.status == 200 and b"/app.js" in page.body
    assert api.handle("GET", "/app.js", {}).content_type.startswith("text/javascript")


def test_read_only_page_has_no_action_routes() -> None:
    switch = Switch()
    api = Api(sources(switch))
    assert (
        api.handle("POST", "/api/automation/pause", {"Authorization": f"Bearer {TOKEN}"}).status
        == 404
    )
    assert api.handle("POST", "/api/status", {}).status == 405
    assert json.loads(api.handle("GET", "/api/config", {}).body)["actions"] is False
    assert switch.writes == []


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, 401),
        ({"Authorization": ""}, 401),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, 403),
        ({"Authorization": "Bearer"}, 403),
        ({"Authorization": f"Basic {TOKEN}"}, 403),
        ({"Authorization": TOKEN}, 403),
        ({"Authorization": "Bearer \udcff\udcfe"}, 403),
        ({"authorization": "Bearer ünïcode"}, 403),
    ],
)
def test_actions_without_the_right_token_are_refused_and_change_nothing(
    headers: dict[str, str], code: int
) -> None:
    switch = Switch()
    api = Api(sources(switch), token=TOKEN)
    for path in ("/api/automation/pause", "/api/automation/resume"):
        response = api.handle("POST", path, headers)
        assert response.status == code
        if code == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert switch.writes == []
    assert switch.paused is False


def test_actions_with_the_token_flip_the_switch() -> None:
    switch = Switch()
    api = Api(sources(switch), token=TOKEN)
    got = api.handle(
        "POST",
        "/api/automation/pause",
        {"AUTHORIZATION": f"bearer {TOKEN}"},
        b'{"reason": "drill"}',
    )
    assert got.status == 200 and json.loads(got.body)["paused"] is True
    assert (
        api.handle(
            "POST", "/api/automation/resume", {"Authorization": f"Bearer {TOKEN}"}, b"not json"
        ).status
        == 200
    )
    assert switch.writes == [(True, "drill"), (False, "from the status page")]


def test_a_foreign_host_header_is_refused() -> None:
    api = Api(sources(Switch()), allowed_hosts={"127.0.0.1:8080"})
    assert api.handle("GET", "/api/status", {"Host": "127.0.0.1:8080"}).status == 200
    assert api.handle("GET", "/api/status", {"Host": "evil.example:8080"}).status == 403
    assert api.handle("GET", "/api/status", {}).status == 403


def test_cache_reads_once_for_many_callers_within_max_age() -> None:
    calls: list[float] = []

    def read() -> int:
        calls.append(time.monotonic())
        time.sleep(0.05)
        return len(calls)

    cached = Cached(read, max_age=5.0, wait=2.0)
    threads = [threading.Thread(target=cached.get) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert cached.get().value == 1


def test_cache_never_waits_longer_than_its_wait_on_a_hung_read() -> None:
    release = threading.Event()
    results = iter([1])

    def read() -> int:
        value = next(results, None)
        if value is None:
            release.wait(10)  # a hung region
            return 99
        return value

    cached = Cached(read, max_age=0.0, wait=0.3)
    assert cached.get().value == 1
    started = time.monotonic()
    stale = cached.get()
    assert time.monotonic() - started < 1.5
    assert stale.value == 1  # the previous snapshot, not a hang
    release.set()


def test_cache_first_read_hung_says_so_and_errors_keep_the_last_value() -> None:
    release = threading.Event()
    hung = Cached(lambda: release.wait(10), max_age=1.0, wait=0.2)
    with pytest.raises(NotReadYetError):
        hung.get()
    release.set()

    answers: list[Any] = [5, FailoverError("the table is gone")]

    def read() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return int(answer)

    flaky = Cached(read, max_age=0.0, wait=2.0)
    assert flaky.get().value == 5
    snap = flaky.get()
    assert (snap.value, snap.error) == (5, "the table is gone")
    answers.append(RuntimeError("boom"))
    response = Api(sources(Switch(), status=flaky)).handle("GET", "/api/status", {})
    # the last value, still shown, with what went wrong since in a header
    assert (response.status, json.loads(response.body)) == (200, 5)
    assert response.headers["X-Snapshot-Error"] == "RuntimeError: boom"
    failed = Cached(lambda: 1 // 0, max_age=1.0, wait=2.0)
    assert Api(sources(Switch(), status=failed)).handle("GET", "/api/status", {}).status == 503


@pytest.fixture
def server() -> Iterator[StatusServer]:
    with StatusServer(Api(sources(Switch()), token=TOKEN)) as running:
        yield running


def test_server_binds_the_loopback_by_default(server: StatusServer) -> None:
    assert server.httpd.server_address[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")
    assert inspect.signature(serve_verb).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(StatusServer).parameters["host"].default == "127.0.0.1"


def test_server_over_http_answers_and_refuses(server: StatusServer) -> None:
    with urllib.request.urlopen(server.url + "api/config", timeout=5) as response:  # noqa: S310
        assert response.status == 200
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert json.loads(response.read())["actions"] is True

    def status_of(path: str, method: str = "GET", **headers: str) -> int:
        request = urllib.request.Request(  # noqa: S310 - loopback
            server.url + path,
            method=method,
            headers=headers,
            data=b"" if method == "POST" else None,
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert status_of("nope") == 404
    assert status_of("api/automation/pause", "POST") == 401
    assert status_of("api/automation/pause", "POST", Authorization="Bearer wrong") == 403
    assert status_of("api/status", Host="attacker.example") == 403
    assert status_of("api/automation/pause", "POST", Authorization=f"Bearer {TOKEN}") == 200


def test_graph_marks_what_the_last_snapshots_say_is_degraded() -> None:
    status = Cached(
        lambda: {
            "active_region": "r2",
            "regions": {
                "r2": {
                    "components": {"api": {"health": "healthy"}, "table": {"health": "degraded"}}
                }
            },
        },
        max_age=5.0,
    )
    api = Api(sources(Switch(), status=status))
    assert json.loads(api.handle("GET", "/api/graph", {}).body)["degraded"] == {}  # unread yet
    api.sources.run = Cached(lambda: {"to": "r2", "degraded": {"api": "read_only"}})
    api.handle("GET", "/api/status", {})
    api.handle("GET", "/api/run", {})
    graph = json.loads(api.handle("GET", "/api/graph", {}).body)
    assert graph["degraded"] == {"api": "read_only", "table": "degraded"}
    assert graph["activation_levels"] == []
