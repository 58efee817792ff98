"""The sandbox servers' modelled round trip: set over HTTP with the sandbox's secret, bounded,
slept before each request; moto's own controls need the secret too."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox import controls, launcher

SECRET = "s3cr3t-of-this-sandbox"
HEADER = "HTTP_" + controls.SECRET_HEADER.upper().replace("-", "_")


def call(
    app: launcher.RoundTrip,
    path: str,
    query: str = "",
    *,
    secret: str | None = SECRET,
    method: str = "POST",
) -> tuple[str, list[bytes]]:
    seen: list[str] = []
    environ = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": method}
    if secret is not None:
        environ[HEADER] = secret
    body = app(environ, lambda status, headers: seen.append(status))
    return (seen[0] if seen else ""), list(body)


def moto_app(served: list[str]) -> Any:
    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        served.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    return moto


def test_round_trip_is_set_over_http_and_slept_before_each_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(launcher.clock, "sleep", slept.append)
    served: list[str] = []
    app = launcher.RoundTrip(moto_app(served), SECRET)
    assert call(app, "/", method="GET") == ("200 OK", [b"ok"]) and slept == []  # off by default
    assert call(app, launcher.ROUND_TRIP_PATH, "seconds=0.02")[0] == "204 No Content"
    assert served == ["/"]  # the setting is the middleware's, moto never sees it
    assert call(app, "/x", method="GET") == ("200 OK", [b"ok"])
    assert slept == [0.02] and served == ["/", "/x"]


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e9", "2.5", "x"])
def test_round_trip_out_of_bounds_is_refused_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(launcher.clock, "sleep", slept.append)
    app = launcher.RoundTrip(moto_app([]), SECRET)
    assert call(app, launcher.ROUND_TRIP_PATH, f"seconds={value}")[0] == "400 Bad Request"
    assert app.seconds == 0.0
    call(app, "/y", method="GET")
    assert slept == []  # every request is still served at once (not 500s after an inf wait)


@pytest.mark.parametrize("secret", [None, "", "wrong"])
@pytest.mark.parametrize(
    "path", [launcher.ROUND_TRIP_PATH, "/moto-api/reset", "/moto-api/seed", "/moto-api/config"]
)
def test_controls_without_the_sandbox_secret_are_refused(secret: str | None, path: str) -> None:
    served: list[str] = []
    app = launcher.RoundTrip(moto_app(served), SECRET)
    status, _ = call(app, path, "seconds=5" if "round" in path else "", secret=secret)
    assert status == "403 Forbidden"
    assert served == [] and app.seconds == 0.0  # moto never saw the reset


def test_controls_with_the_secret_reach_moto_and_reads_need_none() -> None:
    served: list[str] = []
    app = launcher.RoundTrip(moto_app(served), SECRET)
    assert call(app, "/moto-api/reset")[0] == "200 OK"
    assert call(app, "/moto-api/", secret=None, method="GET")[0] == "200 OK"  # liveness probe
    assert served == ["/moto-api/reset", "/moto-api/"]


def test_a_server_without_a_secret_refuses_every_control() -> None:
    app = launcher.RoundTrip(moto_app([]), "")
    assert call(app, "/moto-api/reset", secret="")[0] == "403 Forbidden"


def test_the_launcher_knows_its_peer_user() -> None:
    """What the zygote compares with its own uid before it forks anything (SO_PEERCRED)."""
    import os
    import socket

    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert launcher.peer_uid(left) == os.getuid()


def flaky_moto(failures: int) -> Any:
    """A Flask app as moto builds them but out of debug mode, so that Flask answers its HTML
    page (moto's own re-raise: tests/unit/test_moto_dispatch.py), whose first ``failures``
    calls raise inside it."""
    import flask

    app = flask.Flask("flaky")
    calls = [0]

    @app.route("/", methods=["POST"])
    def create_role() -> tuple[str, int, dict[str, str]]:
        calls[0] += 1
        if calls[0] <= failures:
            raise RuntimeError("dictionary changed size during iteration")  # a moto bug
        return (
            "<CreateRoleResponse><CreateRoleResult><Role><RoleName>r</RoleName>"
            "<Arn>arn:aws:iam::123456789012:role/r</Arn><RoleId>x</RoleId><Path>/</Path>"
            "<CreateDate>2026-01-01T00:00:00Z</CreateDate></Role></CreateRoleResult>"
            "</CreateRoleResponse>",
            200,
            {"Content-Type": "text/xml"},
        )

    return app, calls


@pytest.mark.parametrize("wrapped", [True, False])
def test_an_error_inside_moto_answers_as_aws_does_so_botocore_retries_it(
    monkeypatch: pytest.MonkeyPatch, wrapped: bool
) -> None:
    import threading

    import boto3
    import botocore.config
    import botocore.parsers
    from werkzeug.serving import make_server

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    app, calls = flaky_moto(failures=1)
    server = make_server("127.0.0.1", 0, launcher.AwsErrors(app) if wrapped else app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{server.port}",
            config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3}),
        )
        if wrapped:
            role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
            assert role["Role"]["RoleName"] == "r" and calls[0] == 2  # retried once
        else:  # Flask's HTML page: botocore's query parser fails before it can retry
            with pytest.raises(botocore.parsers.ResponseParserError):
                iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
            assert calls[0] == 1
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
