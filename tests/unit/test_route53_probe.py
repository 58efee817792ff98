"""Route 53's checker in the sandbox gives a probe Route 53's times (4 AWS seconds to connect,
then 2 for the answer), but never less than a wall floor: a healthy endpoint slowed by this
machine's CPU is not a failed one (issue 25)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace
from typing import Any

import pytest

from controller import clock
from sandbox.route53 import ANSWER_SECONDS, CONNECT_SECONDS, Checkers, Network
from tests.kit.loopback import serving
from tests.kit.polling import until

HOST = "d-1.execute-api.us-east-1.amazonaws.com"
#: What a healthy region's health route took at worst under the bench's load at k = 10.
SLOW_ANSWER = 0.65


def health_route(delay: float, answers: threading.Event) -> type[BaseHTTPRequestHandler]:
    """A health route that answers 200 after ``delay`` wall seconds, unless ``answers`` is
    cleared (then it holds the request, as a hung region does)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(delay)
            if not answers.wait(5.0):
                return
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def scaled() -> Iterator[clock.Clock]:
    found = clock.current()
    made = clock.Clock(origin=time.time(), scale=10.0)
    clock.use(made)
    yield made
    clock.use(found)


def checked_once(url: str) -> str:
    """The report of one probe of ``HOST`` through a checker whose network leads to ``url``."""
    check = SimpleNamespace(
        id="c1",
        fqdn=HOST,
        ip_address=None,
        resource_path="/health",
        request_interval=10,
        failure_threshold=3,
    )
    checkers = Checkers(lambda: [check])
    checkers.network = Network({HOST: url})
    assert checkers.tick(clock.monotonic()) == ["c1"]
    return str(
        until(
            lambda: checkers.status("c1").checked and checkers.status("c1").report,
            10,
            "the probe ended",
        )
    )


def test_a_healthy_endpoint_slowed_by_the_sandboxs_cpu_passes_at_k_10(
    scaled: clock.Clock,
) -> None:
    assert scaled.wall(ANSWER_SECONDS) < SLOW_ANSWER  # 2 AWS s alone would fail it
    answers = threading.Event()
    answers.set()
    with serving(health_route(SLOW_ANSWER, answers)) as url:
        assert checked_once(url).startswith("Success")


def test_a_hung_endpoint_still_fails_its_probe(scaled: clock.Clock) -> None:
    answers = threading.Event()  # never set: the request is held
    with serving(health_route(0.0, answers)) as url:
        try:
            report = checked_once(url)
        finally:
            answers.set()  # let the held request end before the server stops
    assert report.startswith("Failure"), report
    assert "Timeout" in report


def test_on_the_real_clock_an_answer_later_than_two_seconds_after_connecting_fails() -> None:
    """Route 53 waits 2 s for the answer once connected (4 s is the connect's alone): an
    endpoint that accepts at once and answers 4 s later fails the probe, as on AWS (given 6 s
    for both, the sandbox's checker had called it healthy)."""
    assert clock.current().scale == 1.0
    assert ANSWER_SECONDS < 4.0 < CONNECT_SECONDS + ANSWER_SECONDS
    answers = threading.Event()
    answers.set()
    with serving(health_route(4.0, answers)) as url:
        report = checked_once(url)
    assert report.startswith("Failure") and "Timeout" in report, report
