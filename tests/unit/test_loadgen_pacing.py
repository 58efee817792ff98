"""The load generator paces its clients in AWS seconds, spread over one period: on a scaled
clock it asks as often in AWS time whatever k is (paced on the wall it asked k times less
often, and when a client first asked after an outage depended on k)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from controller import clock
from sandbox.loadgen import LoadGenerator
from tests.kit.loopback import serving


class Ok(BaseHTTPRequestHandler):
    """Answers every request at once: 201 to a write, 200 to a read."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        """Quiet."""

    def _answer(self, status: int) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:
        self._answer(200)

    def do_POST(self) -> None:
        self._answer(201)


@pytest.fixture
def url() -> Iterator[str]:
    with serving(Ok) as served:
        yield served


def run(url: str, scale: float, aws_seconds: float, **kwargs: Any) -> LoadGenerator:
    """The load for ``aws_seconds`` of the clock at ``scale``."""
    before = clock.current()
    clock.use(clock.Clock(scale=scale))
    try:
        load = LoadGenerator(url, **kwargs)
        began = clock.monotonic()
        load.start()
        while clock.monotonic() - began < aws_seconds:
            time.sleep(0.01)
        load.stop()
        return load
    finally:
        clock.use(before)


def test_the_rate_is_per_aws_second_on_a_scaled_clock(url: str) -> None:
    # 4 clients, one request an AWS second in all, for 40 AWS seconds (2 wall seconds at
    # k = 20): about 40 requests; paced on the wall, about 4
    load = run(url, 20.0, 40.0, workers=4, rate=1.0)
    assert len(load.samples) >= 20, len(load.samples)
    assert all(s.outcome == "ok" for s in load.samples)


def test_the_clients_start_spread_over_one_period(url: str) -> None:
    # 4 clients, each every 8 AWS seconds (4 wall seconds at k = 2): the first requests
    # begin 0, 2, 4 and 6 AWS seconds after the start, not all at once
    load = run(url, 2.0, 7.0, workers=4, rate=0.5)
    first = sorted(s.start for s in load.samples)[:4]
    assert len(first) == 4, load.samples
    assert first[-1] - first[0] >= 4.0, first


class Slow(Ok):
    """Answers every request, each one 2.5 wall seconds late: a live region on busy cores."""

    def _answer(self, status: int) -> None:
        time.sleep(2.5)
        super()._answer(status)


def test_a_live_answer_slower_on_the_wall_than_the_clients_timeout_is_taken() -> None:
    """At k = 5 a client's 10 AWS-second timeout is 2 wall seconds, which a live region on this
    machine's busy cores can take: the client waits at least SOCKET_WALL_FLOOR on the wall, so
    the answer is taken at its first attempt instead of counted as an outage AWS would not have."""
    with serving(Slow) as slow:
        load = run(slow, 5.0, 1.0, workers=1, rate=1.0)
    assert load.samples, "the request ended"
    assert [(s.outcome, s.attempts) for s in load.samples] == [("ok", 1)]
