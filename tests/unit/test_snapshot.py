"""A server's snapshot (``sandbox.snapshot``), taken and restored in this process under moto's
in-process mock: what it puts back, what it leaves independent, and the objects pickle refuses."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import threading
import weakref
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

moto = pytest.importorskip("moto")

from moto.moto_api._internal import mock_random  # noqa: E402

from sandbox import snapshot  # noqa: E402
from tests.kit.paths import REPO  # noqa: E402

REGION = "us-east-1"


@pytest.fixture
def aws(dummy_credentials: None) -> Iterator[dict[str, Any]]:
    """moto in this process and a client per service the tests use."""
    with moto.mock_aws():
        yield {s: boto3.client(s, region_name=REGION) for s in ("sqs", "ssm", "dynamodb")}


def provision(aws: dict[str, Any]) -> None:
    """A queue (its backend holds locks), a parameter (SSM's ``defaultdict`` subclass, made by a
    local function) and a table with an item."""
    aws["sqs"].create_queue(QueueName="work")
    aws["ssm"].put_parameter(Name="/app/mode", Value="active", Type="String")
    aws["dynamodb"].create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    aws["dynamodb"].put_item(TableName="orders", Item={"id": {"S": "1"}})


def read(aws: dict[str, Any]) -> dict[str, Any]:
    """Everything :func:`provision` and :func:`scribble` touch."""
    queues = aws["sqs"].list_queues().get("QueueUrls", [])
    return {
        "queues": {
            url: aws["sqs"].get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            for url in queues
        },
        "parameters": [
            (p["Name"], p["Value"], p["Version"])
            for p in aws["ssm"].get_parameters_by_path(Path="/", Recursive=True)["Parameters"]
        ],
        "tables": aws["dynamodb"].list_tables()["TableNames"],
        "items": aws["dynamodb"].scan(TableName="orders")["Items"],
    }


def scribble(aws: dict[str, Any]) -> None:
    url = aws["sqs"].get_queue_url(QueueName="work")["QueueUrl"]
    aws["sqs"].send_message(QueueUrl=url, MessageBody="left over")
    aws["sqs"].create_queue(QueueName="another")
    aws["ssm"].put_parameter(Name="/app/mode", Value="fenced", Type="String", Overwrite=True)
    aws["ssm"].put_parameter(Name="/app/extra", Value="x", Type="String")
    aws["dynamodb"].put_item(TableName="orders", Item={"id": {"S": "2"}})


def test_a_restore_puts_back_what_was_taken_and_the_copy_stays_as_taken(
    aws: dict[str, Any],
) -> None:
    provision(aws)
    before = read(aws)
    kept = snapshot.take()
    scribble(aws)
    assert read(aws) != before
    snapshot.restore(kept)
    assert read(aws) == before
    # The restored objects are copies: changing them again leaves the snapshot as taken.
    scribble(aws)
    snapshot.restore(kept)
    assert read(aws) == before


def test_a_restore_forgets_services_first_used_after_the_snapshot(aws: dict[str, Any]) -> None:
    provision(aws)
    kept = snapshot.take()
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="made-later")
    snapshot.restore(kept)
    assert s3.list_buckets()["Buckets"] == []
    assert read(aws)["tables"] == ["orders"]


def test_moto_draws_the_same_ids_after_every_restore(aws: dict[str, Any]) -> None:
    provision(aws)
    kept = snapshot.take()
    drawn = []
    for _ in range(2):
        snapshot.restore(kept)
        drawn.append([mock_random.get_random_hex(), str(mock_random.uuid4())])
    assert drawn[0] == drawn[1]


class Keyed(defaultdict[str, Any]):
    """Like SSM's ``ParameterDict``: an ``__init__`` that takes no factory."""

    def __init__(self, account: str) -> None:
        super().__init__(list)
        self.account = account


def test_the_objects_pickle_refuses_are_copied_or_made_again() -> None:
    def empty() -> dict[str, int]:
        return {}

    held = Keyed("123")
    held["a"].append(1)
    values = weakref.WeakValueDictionary({"held": held})
    state = {"lock": threading.Lock(), "rlock": threading.RLock(), "held": held, "f": empty}
    state["weak"] = values
    out = io.BytesIO()
    snapshot._Pickler(out, []).dump(([], state))
    _, copy = snapshot._Unpickler(io.BytesIO(out.getvalue())).load()
    assert type(copy["held"]) is Keyed and copy["held"] is not held
    assert copy["held"] == {"a": [1]} and copy["held"].account == "123"
    assert copy["held"].default_factory is list
    # a local factory of an empty container: a copy of what it makes, on every call
    made = copy["f"]()
    assert made == {} and made is not copy["f"]()
    assert isinstance(copy["weak"], weakref.WeakValueDictionary)
    assert copy["weak"]["held"] is copy["held"]  # shared objects stay shared
    assert copy["lock"] is not state["lock"] and copy["lock"].acquire(blocking=False)
    assert copy["rlock"] is not state["rlock"]


def test_a_local_function_that_keeps_state_is_refused_not_copied_wrong() -> None:
    def counter() -> list[int]:
        return [1]

    with pytest.raises(pickle.PicklingError, match="not an empty container"):
        snapshot._Pickler(io.BytesIO(), []).dump(([], {"f": counter}))


def test_large_bytes_and_keys_are_shared_by_an_in_memory_copy_not_copied() -> None:
    """Restoring a region copied its functions' code (megabytes) and parsed ACM's keys again
    on every reset: immutable, they are kept by reference in memory."""
    code = bytes(snapshot.LARGE)
    small = b"tiny"
    out = io.BytesIO()
    pickler = snapshot._Pickler(out, [])
    pickler.dump(([], {"code": code, "small": small}))
    assert pickler.kept == [code]
    _, copy = snapshot._Unpickler(io.BytesIO(out.getvalue()), tuple(pickler.kept)).load()
    assert copy["code"] is code and copy["small"] == small


def test_acm_certificates_keys_survive_a_snapshot(aws: dict[str, Any]) -> None:
    acm = boto3.client("acm", region_name=REGION)
    arn = acm.request_certificate(DomainName="api.example.com", ValidationMethod="DNS")[
        "CertificateArn"
    ]
    pem = acm.get_certificate(CertificateArn=arn)["Certificate"]
    for whole in (False, True):  # kept by reference, and written out as PEM
        kept = snapshot.take(whole=whole)
        acm.delete_certificate(CertificateArn=arn)
        snapshot.restore(kept)
        assert acm.get_certificate(CertificateArn=arn)["Certificate"] == pem


RESTORE_ELSEWHERE = """
import sys, boto3, moto
from sandbox import snapshot
with moto.mock_aws():
    snapshot.restore(snapshot.read(sys.argv[1]))
    ssm = boto3.client("ssm", region_name="us-east-1")
    print(ssm.get_parameter(Name="/app/mode")["Parameter"]["Value"])
    print(boto3.client("dynamodb", region_name="us-east-1").scan(TableName="orders")["Count"])
"""


def test_a_copy_written_to_a_file_is_restored_by_another_process(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    """What a region killed and healed does: its new process reads what the old one wrote."""
    provision(aws)
    with pytest.raises(ValueError, match="by reference"):  # a function's code, kept in memory
        snapshot.write(snapshot.Snapshot(b"", (b"x" * snapshot.LARGE,)), str(tmp_path / "no"))
    snapshot.write(snapshot.take(whole=True), str(tmp_path / "region.down"))
    assert (tmp_path / "region.down").stat().st_mode & 0o777 == 0o600
    done = subprocess.run(
        [sys.executable, "-c", RESTORE_ELSEWHERE, str(tmp_path / "region.down")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["active", "1"]
