"""A reset's epoch (sandbox.ghosts): which requests a server drops as ghosts of an earlier world,
and what the reset waits for so that no request of the new world is taken for one."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from sandbox import ghosts


class Clock:
    """A wall clock that moves only when slept on."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def serve(gate: ghosts.DropGhosts, environ: dict[str, Any]) -> tuple[str, bytes | None]:
    """Pass ``environ`` through ``gate``: the status, and the body the application read (None:
    it was never called)."""
    reached: list[bytes] = []

    def application(env: dict[str, Any], start_response: Any) -> list[bytes]:
        reached.append(env["wsgi.input"].read())
        start_response("200 OK", [])
        return [b"applied"]

    gate.application = application
    statuses: list[str] = []
    gate(environ, lambda status, headers: statuses.append(status))
    return statuses[0], reached[0] if reached else None


def request(date: str | None, body: bytes = b'{"x": 1}') -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    if date is not None:
        environ["HTTP_X_AMZ_DATE"] = date
    return environ


@pytest.mark.parametrize(
    ("held", "epoch", "slept"),
    [(False, "20261203T110219Z", 0.0), (True, "20261203T110220Z", 0.25)],
)
def test_the_epoch_is_the_next_second_only_when_a_request_may_be_held(
    tmp_path: Path, held: bool, epoch: str, slept: float
) -> None:
    clock = Clock(1796295739.75)
    first = ghosts.begin(tmp_path, held=held, clock=clock)
    assert ghosts.epoch_file(tmp_path).read_text() == epoch
    assert ghosts.sigv4_date(first) == epoch
    ghosts.wait_for(first, clock=clock, sleep=clock.sleep)
    assert sum(clock.slept) == pytest.approx(slept)
    assert ghosts.sigv4_date(clock()) >= epoch  # what is signed from now on is never dropped


def test_a_request_signed_before_the_epoch_is_dropped_once_its_body_has_arrived(
    tmp_path: Path,
) -> None:
    gate = ghosts.DropGhosts(lambda *a: [], tmp_path)
    assert serve(gate, request("20261203T110219Z")) == ("200 OK", b'{"x": 1}')  # no reset yet
    ghosts.begin(tmp_path, held=True, clock=lambda: 1796295739.5)  # epoch ...220Z
    body = io.BytesIO(b'{"x": 1}')
    ghost = request("20261203T110219Z")
    ghost["wsgi.input"] = body
    assert serve(gate, ghost) == ("503 Service Unavailable", None)
    assert body.tell() == len(b'{"x": 1}')  # read whole before the check
    assert serve(gate, request("20261203T110220Z")) == ("200 OK", b'{"x": 1}')
    assert serve(gate, request(None)) == ("200 OK", b'{"x": 1}')  # unsigned: the controls
    presigned = request(None)
    presigned["QUERY_STRING"] = "X-Amz-Date=20261203T110219Z&X-Amz-Expires=60"
    assert serve(gate, presigned)[0] == "503 Service Unavailable"


def test_the_next_reset_moves_the_epoch_a_running_server_reads(tmp_path: Path) -> None:
    gate = ghosts.DropGhosts(lambda *a: [], tmp_path)
    ghosts.begin(tmp_path, held=False, clock=lambda: 1796295739.5)
    assert serve(gate, request("20261203T110219Z"))[0] == "200 OK"
    ghosts.begin(tmp_path, held=False, clock=lambda: 1796295745.5)
    assert serve(gate, request("20261203T110219Z"))[0] == "503 Service Unavailable"
    assert serve(gate, request("20261203T110225Z"))[0] == "200 OK"
