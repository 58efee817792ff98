"""controller.aws: client caching, endpoint resolution, and which errors are worth a retry."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import botocore.awsrequest
import botocore.exceptions
import pytest

from controller import clock
from controller.aws import AwsSettings, Clients, classify, is_unreachable
from controller.aws.clients import SOCKET_WALL_FLOOR
from controller.contract import GLOBAL
from controller.errors import PermanentStepError, TransientStepError

ENDPOINTS = {
    "us-east-1": "http://127.0.0.1:1",
    "us-west-2": "http://127.0.0.1:2",
    GLOBAL: "http://127.0.0.1:3",
}


def client_error(code: str, status: int = 400) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


def test_one_cached_client_per_service_and_region() -> None:
    clients = Clients(endpoints=ENDPOINTS)
    first = clients.client("sqs", "us-east-1")
    assert clients.client("sqs", "us-east-1") is first
    assert clients.client("sqs", "us-west-2") is not first
    assert clients.client("lambda", "us-east-1") is not first


def test_clients_made_from_many_threads_are_one_per_key() -> None:
    clients = Clients(endpoints=ENDPOINTS)
    got: list[Any] = []
    threads = [
        threading.Thread(target=lambda: got.append(clients.client("ssm", "us-east-1")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in got}) == 1


def test_regional_services_go_to_their_region_and_global_ones_to_global() -> None:
    clients = Clients(endpoints=ENDPOINTS)
    assert clients.client("sqs", "us-west-2").meta.endpoint_url == ENDPOINTS["us-west-2"]
    assert clients.endpoint("route53", "us-west-2") == ENDPOINTS[GLOBAL]
    assert clients.endpoint("iam", "us-east-1") == ENDPOINTS[GLOBAL]
    assert clients.endpoint("dynamodb", GLOBAL) == ENDPOINTS[GLOBAL]
    assert clients.client("route53", GLOBAL).meta.region_name == "us-east-1"


def test_no_endpoint_map_means_aws_itself() -> None:
    clients = Clients()
    assert clients.endpoint("sqs", "us-east-1") is None
    url = "https://abc.execute-api.us-east-1.amazonaws.com/health"
    assert clients.http_url(url) == url  # a health route on AWS is probed where it is


def test_a_sandboxs_http_probe_stays_on_this_machine() -> None:
    """The controller's HTTP probe of an AWS host goes through the sandbox's relay, never out."""
    url = Clients(endpoints=ENDPOINTS).http_url("https://abc.execute-api.eu-west-1.amazonaws.com/h")
    assert url == f"{ENDPOINTS[GLOBAL]}/_relay/abc.execute-api.eu-west-1.amazonaws.com/h"


def test_settings_reach_the_botocore_config() -> None:
    settings = AwsSettings(
        connect_timeout=0.5, read_timeout=1.5, max_attempts=1, retry_mode="adaptive"
    )
    config = Clients(endpoints=ENDPOINTS, settings=settings).client("sqs", "us-east-1").meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.5, 1.5)
    # max_attempts counts the first try: 1 means no retry at all (a fail-fast probe).
    assert config.retries == {"total_max_attempts": 1, "mode": "adaptive"}


def test_on_a_scaled_clock_socket_timeouts_are_aws_seconds_with_a_wall_floor() -> None:
    """At k = 10 AWS's 4 s read timeout takes 0.4 s on the wall; never less than the floor the
    emulator's own answer needs (a 0.5 s connect timeout would be 0.05 s)."""
    previous = clock.current()
    clock.use(clock.Clock(origin=0.0, scale=10.0))
    try:
        settings = AwsSettings(connect_timeout=0.5, read_timeout=40.0)
        config = Clients(endpoints=ENDPOINTS, settings=settings).client("sqs", "us-east-1")
    finally:
        clock.use(previous)
    assert config.meta.config.read_timeout == pytest.approx(4.0)
    assert config.meta.config.connect_timeout == pytest.approx(SOCKET_WALL_FLOOR)


def test_hooks_are_registered_on_every_client() -> None:
    seen: list[str] = []

    def hook(**kwargs: Any) -> None:
        seen.append(kwargs["event_name"])

    clients = Clients(endpoints=ENDPOINTS, hooks=[("test-fault", hook)])
    for service in ("sqs", "ssm"):
        clients.client(service, "us-east-1").meta.events.emit(f"test-fault.{service}")
    assert len(seen) == 2


class Refused(Exception):
    """What the tests' guards raise."""


class RawBody:
    """An HTTP body as botocore reads it from urllib3 (``stream``)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, *_: Any, **__: Any) -> Any:
        return iter([self.body])


def test_a_guard_runs_before_every_request_and_stops_it_before_it_is_sent() -> None:
    sent: list[str] = []
    allowed = [True]

    def guard() -> None:
        if not allowed[0]:
            raise Refused("no lease")

    def answer(**kwargs: Any) -> Any:  # before-send: the request is not sent, this answers
        sent.append(kwargs["event_name"])
        return botocore.awsrequest.AWSResponse(kwargs["request"].url, 200, {}, RawBody(b"{}"))

    clients = Clients(endpoints=ENDPOINTS, hooks=[("before-send", answer)]).derive(guard=guard)
    ssm = clients.client("ssm", "us-east-1")
    ssm.get_parameters(Names=["a"])
    assert sent == ["before-send.ssm.GetParameters"]
    allowed[0] = False
    with pytest.raises(Refused):
        ssm.get_parameters(Names=["a"])
    assert len(sent) == 1  # the refused request never reached the wire
    assert ssm.meta.region_name == "us-east-1"  # what is not a request is the client's


def test_clients_guarded_by_two_runs_share_one_botocore_client_each_with_its_own_guard() -> None:
    # A run's lease check used to be a hook of clients made for that run: every failover made
    # its clients again. Two runs' guards now wrap the same shared client.
    calls: list[str] = []
    base = Clients(endpoints=ENDPOINTS)

    def guard_of(run: str) -> Callable[[], None]:
        def guard() -> None:
            calls.append(run)
            raise Refused(run)

        return guard

    first = base.derive(guard=guard_of("first")).client("sqs", "us-east-1")
    second = base.derive(guard=guard_of("second")).client("sqs", "us-east-1")
    assert first._client is second._client is base.client("sqs", "us-east-1")
    for client in (first, second):
        with pytest.raises(Refused):
            client.list_queues()
    assert calls == ["first", "second"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("TooManyRequestsException", 429),
        ("ProvisionedThroughputExceededException", 400),
        ("InternalError", 500),
        ("ServiceUnavailable", 503),
        ("Anything", 502),
        ("ResourceConflictException", 409),
        ("ReplicatedWriteConflictException", 400),
    ],
)
def test_throttling_and_server_errors_are_transient(code: str, status: int) -> None:
    err = classify(client_error(code, status), component="worker", region="us-east-1")
    assert isinstance(err, TransientStepError)
    assert "worker/us-east-1" in str(err)


def test_a_replicated_write_conflict_is_an_error_dynamodbs_model_knows() -> None:
    """The code the control table's MRSC writes raise when two regions write one item."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("dynamodb")
    assert "ReplicatedWriteConflictException" in {s.name for s in model.error_shapes}
    put = model.operation_model("PutItem")
    assert "ReplicatedWriteConflictException" in {e.name for e in put.error_shapes}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ResourceNotFoundException", 404),
        ("AccessDeniedException", 403),
        ("ValidationException", 400),
        ("ParameterNotFound", 400),
    ],
)
def test_client_mistakes_and_missing_resources_are_permanent(code: str, status: int) -> None:
    err = classify(client_error(code, status), component="worker", region="eu-west-1")
    assert isinstance(err, PermanentStepError)
    assert (err.component, err.region) == ("worker", "eu-west-1")
    assert code in str(err)


@pytest.mark.parametrize(
    "exc",
    [
        botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"),
        botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"),
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"),
    ],
)
def test_timeouts_and_refused_connections_are_transient_and_unreachable(exc: Exception) -> None:
    assert isinstance(classify(exc), TransientStepError)
    assert is_unreachable(exc)


def test_step_errors_pass_through_and_unknown_errors_are_permanent() -> None:
    done = TransientStepError("x")
    assert classify(done) is done
    assert isinstance(classify(ValueError("bad")), PermanentStepError)
    assert not is_unreachable(client_error("Throttling"))
