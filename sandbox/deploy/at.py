"""Where one resource of the program is created, and how the provider's calls behave there.

Used by :mod:`sandbox.deploy.mapping` (each resource type's function gets an :class:`At`) and by
:mod:`sandbox.deploy.engine` (which makes one per resource and per invoke): the resource's type
and name, its provider's region and endpoints, botocore clients on the emulator, the refusal of
what the mapping does not know, and what the Terraform provider does around its calls (retries
of what eventual consistency fails, unique ids, Pulumi's auto-names).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.config
import botocore.exceptions

from controller.aws import EMULATOR_KEY, emulator_session
from controller.errors import FailoverError

ACCOUNT = "123456789012"  # moto's account: every ARN the emulator makes names it
MODULE = "sandbox/deploy/mapping.py"  # named in a refusal: where to map
#: Creating is not idempotent: one attempt; a function's code is megabytes, so a long read.
CONFIG = botocore.config.Config(
    connect_timeout=2.0,
    read_timeout=60.0,
    retries={"total_max_attempts": 1},
    parameter_validation=False,  # each function builds its requests; the emulator checks them
    max_pool_connections=32,
    proxies={},
)
#: pulumi-aws's endpoint setting of a service, where it differs from botocore's service name.
ENDPOINT_KEY = {"lambda": "lambda_", "events": "cloudwatchevents", "logs": "cloudwatchlogs"}


class RefusedError(FailoverError):
    """The program declares what the mapping cannot create: a type or an input it does not
    know. Nothing of the resource is created."""

    exit_code = 2


class InvokeFailedError(FailoverError):
    """An invoke the emulator answered as the provider answers a failed one (a zone not found, a
    table or an item absent): the program sees the provider's text, and may expect it."""


class Clients:
    """botocore clients on the emulator, one per (service, region, URL), made once."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()  # a botocore session makes one client at a time
        self._session = emulator_session()  # one: it reads each service's model once

    def get(self, service: str, region: str, url: str) -> Any:
        """The client of ``service`` signing for ``region``, sending to ``url``."""
        key = (service, region, url)
        made = self._made.get(key)  # most calls: a client made already, without waiting
        if made is not None:
            return made
        with self._lock:
            if key not in self._made:
                self._made[key] = self._session.create_client(
                    service,
                    region_name=region,
                    endpoint_url=url,
                    aws_access_key_id=EMULATOR_KEY,
                    aws_secret_access_key=EMULATOR_KEY,
                    config=CONFIG,
                )
            return self._made[key]


@dataclass(frozen=True)
class At:
    """Where one resource is created: its type and name, its provider's region and endpoints."""

    typ: str
    logical: str
    region: str
    #: The provider's endpoint setting: pulumi-aws's service key -> URL.
    endpoints: Mapping[str, str]
    #: Every region's server: where AWS's own cross-region work lands (a table's replicas).
    regions: Mapping[str, str] = field(default_factory=dict)
    clients: Clients = field(default_factory=Clients)

    def client(self, service: str, region: str | None = None) -> Any:
        """A client of ``service`` in the provider's region, or in ``region``'s server."""
        if region is not None and region != self.region:
            if region not in self.regions:
                raise self.refuse(f"no emulator server for region {region!r}")
            return self.clients.get(service, region, self.regions[region])
        key = ENDPOINT_KEY.get(service, service)
        url = self.endpoints.get(key)
        if not url:
            raise self.refuse(
                f"its provider names no endpoint for {key!r}: the sandbox never calls AWS"
            )
        return self.clients.get(service, self.region, url)

    def arn(self, service: str, resource: str, region: str | None = None) -> str:
        """``arn:aws:<service>:<region>:<account>:<resource>``, as AWS builds it."""
        return f"arn:aws:{service}:{self.region if region is None else region}:{ACCOUNT}:{resource}"

    def refuse(self, why: str) -> RefusedError:
        """One line naming the resource and what is refused."""
        return RefusedError(f"{self.typ} {self.logical}: {why} ({MODULE})")

    def check(self, value: Any, where: str, *known: str, ignored: Sequence[str] = ()) -> Any:
        """``value`` (a nested input) when it has no key but ``known`` and ``ignored`` ones."""
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, Mapping):
                for key in item:
                    if key not in known and key not in ignored:
                        raise self.refuse(
                            f"input {where}.{key} is not mapped to the emulator; map it or "
                            "list it as ignored"
                        )
        return value


_COUNTER = itertools.count()


def unique(prefix: str = "terraform-") -> str:
    """The Terraform provider's unique id: ``prefix``, a timestamp and a counter (26 digits)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + f"{time.time_ns() % 10**4:04d}"
    return f"{prefix}{stamp}{next(_COUNTER):08x}"


def autoname(at: At) -> str:
    """Pulumi's auto-name of a resource that names none: its logical name and 7 random hex."""
    return f"{at.logical}-{secrets.token_hex(4)[:7]}"


#: How long the provider retries a call that fails while what it names is still being made
#: (its Lambda propagation timeout is minutes; in the emulator the other call is seconds away).
PROPAGATION_SECONDS = 60.0
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def retrying(call: Callable[[], Any], codes: Sequence[str]) -> Any:
    """``call()``, again while it fails with one of ``codes`` (as the provider retries what
    eventual consistency fails, e.g. a permission on an alias created at the same time)."""
    deadline = time.monotonic() + PROPAGATION_SECONDS
    while True:
        try:
            return call()
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in codes or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def function_lock(region: str, function: str) -> threading.Lock:
    """The provider's per-function mutex around AddPermission."""
    with _LOCKS_LOCK:
        return _LOCKS.setdefault((region, function), threading.Lock())


def pairs(values: Mapping[str, Any] | None, key: str = "Name", value: str = "Value") -> Any:
    return [{key: k, value: v} for k, v in (values or {}).items()]
