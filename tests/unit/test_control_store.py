"""The control store's gate serves the control table's requests one at a time, and only those.

moto answers each request on a thread of its own and checks a write's condition apart from
applying it, so the store (:data:`sandbox.mrsc.STORE`) must not let two of the control table's
requests into moto at once; the regions' servers, and every other request, must not wait.
Here moto is a stand-in that meets a second request at a barrier: it gets past only when two
requests are inside at the same time.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sandbox import mrsc

TABLE = "orders-control"
REPLICAS = ("us-east-1", "us-west-2")


def gate(name: str, meet: threading.Barrier) -> mrsc.ControlGate:
    """A configured gate of server ``name`` in front of a moto that waits to meet another
    request and answers whether it met one."""

    def moto(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            meet.wait()
            met = b"met"
        except threading.BrokenBarrierError:
            met = b"alone"
        start_response("200 OK", [])
        return [met]

    served = mrsc.ControlGate(moto)
    served.config = mrsc.Config(
        name=name, table=TABLE, replicas=REPLICAS, members=(*REPLICAS, "us-east-2")
    )
    return served


def request(table: str, operation: str = "UpdateItem") -> dict[str, Any]:
    body = json.dumps({"TableName": table, "Key": {"pk": {"S": "lease"}}}).encode()
    return {
        "PATH_INFO": "/",
        "REQUEST_METHOD": "POST",
        "HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{operation}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }


def race(served: mrsc.ControlGate, environs: list[dict[str, Any]]) -> list[bytes]:
    """Send ``environs`` through ``served`` at once; what each got."""

    def send(environ: dict[str, Any]) -> bytes:
        return b"".join(served(environ, lambda status, headers: None))

    with ThreadPoolExecutor(len(environs)) as pool:
        return list(pool.map(send, environs))


@pytest.mark.parametrize("operation", ["UpdateItem", "GetItem"])
def test_racing_requests_on_the_control_table_never_meet_inside_the_store(operation: str) -> None:
    # Serialized, the first inside waits out the barrier alone and breaks it (the timeout is
    # the longest this test can take); let through together, they meet at once.
    served = gate(mrsc.STORE, threading.Barrier(2, timeout=0.5))
    answers = race(served, [request(TABLE, operation), request(TABLE, "PutItem")])
    assert answers == [b"alone", b"alone"]


@pytest.mark.parametrize(
    ("name", "table"),
    [
        (mrsc.STORE, "orders-scratch"),  # the store: another table's requests
        ("us-east-1", "orders-orders"),  # a region's server: the application's own table
        ("eu-west-1", TABLE),  # a server that is no control replica passes it to moto as is
    ],
)
def test_every_other_request_runs_alongside_the_others(name: str, table: str) -> None:
    served = gate(name, threading.Barrier(2, timeout=30))  # a deadline, met at once if concurrent
    assert race(served, [request(table), request(table)]) == [b"met", b"met"]
