"""The sandbox servers' modelled round trip: set over HTTP, slept before each request."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox import launcher


def call(app: launcher.RoundTrip, path: str, query: str = "") -> tuple[str, list[bytes]]:
    seen: list[str] = []
    body = app({"PATH_INFO": path, "QUERY_STRING": query},
               lambda status, headers: seen.append(status))
    return (seen[0] if seen else ""), list(body)


def test_round_trip_is_set_over_http_and_slept_before_each_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(launcher.time, "sleep", slept.append)
    served: list[str] = []

    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        served.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    app = launcher.RoundTrip(moto)
    assert call(app, "/") == ("200 OK", [b"ok"]) and slept == []  # off by default
    assert call(app, launcher.ROUND_TRIP_PATH, "seconds=0.02")[0] == "204 No Content"
    assert served == ["/"]  # the setting is the middleware's, moto never sees it
    assert call(app, "/x") == ("200 OK", [b"ok"])
    assert slept == [0.02] and served == ["/", "/x"]
    call(app, launcher.ROUND_TRIP_PATH, "seconds=-1")  # nonsense is no wait, not a crash
    call(app, "/y")
    assert slept == [0.02]
