"""A reset gives the next test a fresh world: no request sent before it lands after it.

A hung region's server holds what was sent to it in its socket, and applies it when it resumes
(as AWS may apply a request whose answer was lost: the controller copes, and ``heal`` keeps it
so). But :meth:`Sandbox.reset` resumes the hung servers and restores every server's snapshot:
a request held across it used to land in the next test's world, after the restore (CI: the lease
of an earlier test's controller, taken on the fresh control table by its acquire through the
hung us-east-1, failed ``test_no_two_writers_at_any_instant`` with ``LeaseHeldError``).

Whether the resumed server applies a held request before or after the restore is a race; each
test here holds the request's last byte back until the reset has returned, so that a server
that reads it applies it after the restore, every time.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from controller.aws import Clients
from controller.contract import HOME_AGENT
from controller.controltable.lease import Leases
from controller.controltable.table import LEASE_PK, LEASE_SK, ControlTable
from sandbox import Sandbox, mrsc
from tests.kit.emulator import plain

pytestmark = pytest.mark.sandbox

EAST = "us-east-1"
#: How long a resumed server is given to answer or drop what it held (a deadline, not a wait).
DRAINED = 60.0


def held(url: str, region: str, target: str, payload: dict[str, Any]) -> socket.socket:
    """A connection to ``url`` carrying a JSON request signed now (SigV4, as botocore signs it)
    for ``region``, all of it sent but its last byte: see the module's docstring."""
    service, version = ("dynamodb", "1.0") if target.startswith("DynamoDB_") else ("ssm", "1.1")
    body = json.dumps(payload).encode()
    request = AWSRequest(
        method="POST",
        url=f"{url}/",
        data=body,
        headers={
            "Content-Type": f"application/x-amz-json-{version}",
            "X-Amz-Target": target,
            "User-Agent": f"ghost-test {HOME_AGENT}/{region}",
        },
    )
    credentials = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    SigV4Auth(credentials, service, region).add_auth(request)
    assert "X-Amz-Date" in request.headers
    address = urlsplit(url)
    head = ["POST / HTTP/1.1", f"Host: {address.netloc}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in request.headers.items()]
    sock = socket.create_connection((address.hostname or "", address.port or 80), timeout=10)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[:-1])
    return sock


def release(sock: socket.socket, last: bytes) -> bytes:
    """Send the held request's last byte; what the server answers (b"": it closed the
    connection without an answer)."""
    answer = b""
    with sock:
        sock.settimeout(DRAINED)
        try:
            sock.sendall(last)
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, BrokenPipeError):
            pass  # dropped: as a lost answer
    return answer


def lease_write(owner: str) -> dict[str, Any]:
    """The lease's first acquire, as :meth:`Leases.acquire` sends it on a fresh table."""
    return {
        "Key": {"pk": {"S": LEASE_PK}, "sk": {"S": LEASE_SK}},
        "UpdateExpression": "SET #o = :o, #t = :t, expires_at = :e",
        "ConditionExpression": "attribute_not_exists(pk)",
        "ExpressionAttributeNames": {"#t": "token", "#o": "owner"},
        "ExpressionAttributeValues": {":o": {"S": owner}, ":t": {"N": "1"}, ":e": {"N": "1e12"}},
    }


def leases(box: Sandbox) -> Leases:
    return Leases(ControlTable(Clients(endpoints=box.manifest.endpoints), box.manifest))


@pytest.mark.parametrize("at", ["hung replica", "store"])
def test_a_lease_write_held_by_a_hung_region_never_lands_after_a_reset(
    fresh_sandbox: Sandbox, at: str
) -> None:
    """``hung replica``: the acquire sent into us-east-1 while it hangs (the CI failure);
    ``store``: the same write as the hung replica forwards it to the control store, stopped
    half-way through sending it."""
    box = fresh_sandbox
    assert leases(box).holder() is None  # a fresh world: nobody ever took the lease
    box.fail(EAST, "hang")
    url = box.state.servers[mrsc.STORE].url if at == "store" else box.manifest.endpoints[EAST]
    payload = {"TableName": box.manifest.control.table, **lease_write("ghost-of-an-earlier-test")}
    sock = held(url, EAST, "DynamoDB_20120810.UpdateItem", payload)
    box.reset()
    answer = release(sock, json.dumps(payload).encode()[-1:])
    assert leases(box).holder() is None, answer[:200]
    assert answer == b""  # dropped without an answer, as a lost answer is
    # A write signed right after the reset is not taken for one from before it.
    taken = leases(box).acquire("after-the-reset", 30)
    assert leases(box).holder() == taken


def test_a_fence_write_held_by_the_hung_primary_never_lands_after_a_reset(
    fresh_sandbox: Sandbox,
) -> None:
    """The hung region's own data: a fence step's mode write, held in its socket, must not
    fence the next test's primary."""
    box = fresh_sandbox
    name = box.topology.mode_parameter(EAST)
    ssm = plain(box, "ssm", EAST)
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "active"
    box.fail(EAST, "hang")
    payload = {"Name": name, "Value": "fenced", "Type": "String", "Overwrite": True}
    sock = held(box.manifest.endpoints[EAST], EAST, "AmazonSSM.PutParameter", payload)
    box.reset()
    answer = release(sock, json.dumps(payload).encode()[-1:])
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "active", answer[:200]
    assert answer == b""
