"""Route 53's checker in the sandbox gives a probe Route 53's times (4 AWS seconds to connect,
then 2 for the answer), but never less than a wall floor: a healthy endpoint slowed by this
machine's CPU is not a failed one (issue 25). Past Route 53's deadline the probe counts as failed
until its answer settles it, so a hung endpoint is seen at the same AWS second at any scale."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace
from typing import Any

import pytest

from controller import clock
from sandbox import route53
from sandbox.route53 import ANSWER_SECONDS, CONNECT_SECONDS, LATE_REPORT, Checkers, Network
from tests.kit.loopback import serving
from tests.kit.polling import until

HOST = "d-1.execute-api.us-east-1.amazonaws.com"
#: What a healthy region's health route took at worst under the bench's load at k = 10.
SLOW_ANSWER = 0.65


def health_route(
    delay: float, answers: threading.Event, hold: float = 5.0
) -> type[BaseHTTPRequestHandler]:
    """A health route that answers 200 after ``delay`` wall seconds, unless ``answers`` is
    cleared (then it holds the request, as a hung region does, ``hold`` wall seconds at most)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(delay)
            if not answers.wait(hold):
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


def probing(url: str, threshold: int = 3) -> Checkers:
    """A checker whose network leads ``HOST`` to ``url``, its one check's probe sent (the
    scheduler is not started: the test sends each probe)."""
    check = SimpleNamespace(
        id="c1",
        fqdn=HOST,
        ip_address=None,
        resource_path="/health",
        request_interval=10,
        failure_threshold=threshold,
    )
    checkers = Checkers(lambda: [check])
    checkers.network = Network({HOST: url})
    assert checkers.tick(clock.monotonic()) == ["c1"]
    return checkers


def checked_once(url: str) -> str:
    """The report of one probe of ``HOST`` through a checker whose network leads to ``url``,
    once the probe has ended (its answer, or the floor's timeout)."""
    checkers = probing(url)
    settled = checkers.findings
    return str(
        until(
            lambda: "c1" in settled and settled["c1"].checked and settled["c1"].report,
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


def probes_under_way() -> list[threading.Thread]:
    """The checker's probe threads still running (one per probe sent)."""
    return [t for t in threading.enumerate() if t.name == "r53-c1"]


@pytest.fixture
def floor_of_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wall floor no probe of these tests reaches: what they see is Route 53's deadline."""
    monkeypatch.setattr(route53, "PROBE_WALL_FLOOR", 60.0)


def test_a_hung_endpoint_counts_failed_at_route53s_deadline_not_at_the_sandboxs_floor(
    scaled: clock.Clock, floor_of_a_minute: None
) -> None:
    """The failure is seen once Route 53 would count it, 2 AWS s after connecting, while the
    sandbox still waits for the answer: with the floor's wait alone (60 wall s here, 3 in the
    sandbox: 30 AWS s at k = 10, 15 at k = 5) a hung region was seen later the faster the clock."""
    answers = threading.Event()  # never set: the request is held
    with serving(health_route(0.0, answers, hold=60.0)) as url:
        try:
            checkers = probing(url, threshold=1)
            sent = clock.monotonic()
            until(lambda: not checkers.status("c1").healthy, 20, "the probe never counted")
            seen = checkers.status("c1")
            assert seen.report == LATE_REPORT  # the probe is still under way
            assert clock.monotonic() - sent >= ANSWER_SECONDS  # and not before its deadline
            assert "c1" not in checkers.findings or checkers.findings["c1"].healthy
        finally:
            answers.set()  # let the held request end before the server stops


def test_one_late_probe_does_not_flip_a_check_before_its_threshold(
    scaled: clock.Clock, floor_of_a_minute: None
) -> None:
    answers = threading.Event()
    with serving(health_route(0.0, answers, hold=60.0)) as url:
        try:
            checkers = probing(url, threshold=3)
            until(lambda: checkers.status("c1").report == LATE_REPORT, 20, "never late")
            assert checkers.status("c1").healthy  # one failure of the three in a row
        finally:
            answers.set()


def test_an_answer_before_the_floor_takes_a_late_probes_failure_back(
    scaled: clock.Clock, floor_of_a_minute: None
) -> None:
    """Late by Route 53's clock, in time by the sandbox's floor: the delay was this machine's
    CPU, not AWS's latency, and the check is healthy again once the answer is in."""
    answers = threading.Event()
    with serving(health_route(0.0, answers, hold=60.0)) as url:
        try:
            checkers = probing(url, threshold=1)
            until(lambda: not checkers.status("c1").healthy, 20, "the probe never counted")
        finally:
            answers.set()
        settled = checkers.findings
        until(lambda: "c1" in settled and settled["c1"].checked, 20, "the probe never ended")
        assert checkers.status("c1").healthy
        assert checkers.status("c1").report.startswith("Success: HTTP Status Code 200")


def test_a_probe_sent_before_a_reset_does_not_count_after_it(
    scaled: clock.Clock, floor_of_a_minute: None
) -> None:
    """The first request is held, then dropped unanswered (its probe fails as it ends); the
    check was reset meanwhile and its next probe is answered: the check stays healthy."""
    requests: list[int] = []

    class FirstDropped(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            requests.append(1)
            if len(requests) == 1:
                time.sleep(1.5)
                return
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(FirstDropped) as url:
        checkers = probing(url, threshold=1)
        until(lambda: not checkers.status("c1").healthy, 20, "the probe never counted")
        checkers.forget()
        assert checkers.status("c1").healthy  # the reset forgot the probe under way
        later = clock.monotonic() + 10.0  # the check's interval
        assert checkers.tick(later) == ["c1"]  # its next probe, answered
        until(lambda: not probes_under_way(), 20, "the probes never ended")
        assert len(requests) == 2
        assert checkers.status("c1").healthy  # the first, ending in failure, did not count
        assert checkers.status("c1").report.startswith("Success")
