"""A KMS key gets moto's private key only when something uses it (``sandbox.moto_patches``):
a symmetric key costs no RSA key, and keys behave as moto's did, in a snapshot too."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

moto = pytest.importorskip("moto")

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from moto.kms import models  # noqa: E402

from sandbox import moto_patches, snapshot  # noqa: E402

REGION = "us-east-1"


@pytest.fixture
def kms(
    dummy_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, list[int]]]:
    """moto in this process with the patch applied (undone after), a KMS client, and the RSA
    key sizes generated meanwhile."""
    monkeypatch.setattr(models, "generate_private_key", models.generate_private_key)
    made: list[int] = []
    generate = rsa.generate_private_key

    def counted(public_exponent: int, key_size: int, *args: Any, **kwargs: Any) -> Any:
        made.append(key_size)
        return generate(public_exponent, key_size, *args, **kwargs)

    monkeypatch.setattr(rsa, "generate_private_key", counted)
    moto_patches.private_keys_when_used()
    with moto.mock_aws():
        yield boto3.client("kms", region_name=REGION), made


def test_symmetric_keys_make_no_rsa_key_and_still_encrypt(kms: tuple[Any, list[int]]) -> None:
    client, made = kms
    key = client.create_key(Description="orders")["KeyMetadata"]["KeyId"]
    client.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    sealed = client.encrypt(KeyId=key, Plaintext=b"order 1")["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"order 1"
    assert made == []  # moto made two RSA-2048 keys here


def test_an_asymmetric_key_is_made_and_checked_when_created_and_signs(
    kms: tuple[Any, list[int]],
) -> None:
    client, made = kms
    key = client.create_key(KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    assert made == [3072]
    signed = client.sign(
        KeyId=key, Message=b"m", MessageType="RAW", SigningAlgorithm="RSASSA_PSS_SHA_256"
    )["Signature"]
    assert client.verify(
        KeyId=key,
        Message=b"m",
        MessageType="RAW",
        Signature=signed,
        SigningAlgorithm="RSASSA_PSS_SHA_256",
    )["SignatureValid"]
    assert base64.b64encode(client.get_public_key(KeyId=key)["PublicKey"])


def test_a_deferred_key_survives_a_snapshot_made_or_not(kms: tuple[Any, list[int]]) -> None:
    """A server's snapshot pickles its backends: a key not made yet is put back not made, and
    one made is put back as the same key (its public key unchanged)."""
    client, made = kms
    idle = client.create_key()["KeyMetadata"]["KeyId"]
    used = client.create_key()["KeyMetadata"]["KeyId"]
    public = client.get_public_key(KeyId=used)["PublicKey"]  # moto answers it: makes the key
    assert made == [2048]
    taken = snapshot.take()
    client.schedule_key_deletion(KeyId=used, PendingWindowInDays=7)
    snapshot.restore(taken)
    assert client.get_public_key(KeyId=used)["PublicKey"] == public
    assert made == [2048]  # restored, not made again
    client.get_public_key(KeyId=idle)
    assert made == [2048, 2048]  # made on first use, after the restore
