"""A control-table write whose answer is lost is reported unknown, never failed.

Three kinds of control region, each a loopback socket this module opens and closes: one that
takes the request and never answers (a hung server: the kernel queues the connection, the
request waits in its socket), one that answers ``500 InternalServerError`` at once (a region
without a majority: DynamoDB says it could not process the request), and a closed port (the
connection is refused: nothing is sent).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from controller.aws import AwsSettings, Clients
from controller.controltable.table import ControlTable
from controller.errors import NoMajorityError, OutcomeUnknownError
from controller.topology.manifest import ControlManifest, Manifest
from tests.kit.loopback import serving

REGIONS = ["us-east-1", "us-west-2"]
PUT = {"Item": {"pk": {"S": "automation"}, "sk": {"S": "automation"}}}


@contextmanager
def silent() -> Iterator[str]:
    """A port that takes connections and never answers (a stopped server's listen queue)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def closed() -> Iterator[str]:
    """A port nothing listens on: the connection is refused, the request never sent."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


@contextmanager
def answering(status: int, kind: str, seen: list[str] | None = None) -> Iterator[str]:
    """A server answering every request with ``status`` and the DynamoDB error ``kind``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if seen is not None:
                seen.append(str(self.headers.get("X-Amz-Target")))
            body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{kind}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as served:
        yield served


def control(first: str, second: str, name: str) -> ControlTable:
    """The control table served by ``first`` (us-east-1, tried first) and ``second``."""
    endpoints = {"us-east-1": first, "us-west-2": second, "global": second}
    manifest = Manifest.model_construct(
        app="a",
        primary="us-east-1",
        spec="s",
        regions={},
        control=ControlManifest(table=name, regions=REGIONS),
        endpoints=endpoints,
    )
    # A hung region costs the read timeout; the answering servers run in this process, so on a
    # loaded machine their answer may be a second late (0.5 s once failed this way): 2 s.
    settings = AwsSettings(connect_timeout=0.5, read_timeout=2.0)
    return ControlTable(Clients(endpoints=endpoints, home="us-east-1", settings=settings), manifest)


@pytest.fixture(autouse=True)
def own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No region remembered as failed by another test: us-east-1 is tried first."""
    from controller.controltable import suspects

    monkeypatch.setattr(suspects, "_SUSPECT", {})
    monkeypatch.setenv("FAILOVER_CACHE_DIR", str(tmp_path))


def test_a_write_sent_to_a_hung_region_then_refused_elsewhere_is_unknown_not_failed() -> None:
    with (
        silent() as hung,
        answering(500, "InternalServerError") as no_majority,
        pytest.raises(OutcomeUnknownError) as caught,
    ):
        control(hung, no_majority, "t-hung").call("put_item", **PUT)
    message = str(caught.value)
    assert caught.value.exit_code == 4
    assert "us-east-1 sent, no answer (ReadTimeoutError)" in message
    assert "us-west-2 answered InternalServerError" in message
    assert "may still be applied" in message and len(message.splitlines()) == 1


def test_a_write_refused_before_it_was_sent_everywhere_is_known_not_applied() -> None:
    with (
        closed() as refused,
        answering(500, "InternalServerError") as no_majority,
        pytest.raises(NoMajorityError) as caught,
    ):
        control(refused, no_majority, "t-refused").call("put_item", **PUT)
    assert caught.value.exit_code == 1
    assert str(caught.value).endswith("nothing was written")
    assert "us-east-1 unreachable" in str(caught.value)


def test_a_read_whose_answer_is_lost_changes_nothing_so_it_is_no_majority() -> None:
    with (
        silent() as hung,
        answering(500, "InternalServerError") as no_majority,
        pytest.raises(NoMajorityError) as caught,
    ):
        control(hung, no_majority, "t-read").get("automation", "automation")
    assert "nothing was written" not in str(caught.value)


def test_a_condition_false_after_a_lost_attempt_may_be_the_lost_attempt_itself() -> None:
    """A timeout then ``ConditionalCheckFailed`` in the next region: the first attempt may have
    landed and made the condition false, so neither "stale" nor "held" can be said."""
    seen: list[str] = []
    with (
        silent() as hung,
        answering(400, "ConditionalCheckFailedException", seen) as cond,
        pytest.raises(OutcomeUnknownError, match="found its condition false"),
    ):
        control(hung, cond, "t-cond").call("put_item", **PUT)
    assert seen == ["DynamoDB_20120810.PutItem"]
