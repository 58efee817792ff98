"""The control table is tried in its regions, own region first, and says so when none answers."""

from __future__ import annotations

import socket

import pytest

from controller.aws import AwsSettings, Clients
from controller.controltable import ControlTable
from controller.errors import FailoverError, NoMajorityError
from controller.manifest import ControlManifest, Manifest

REGIONS = ["us-east-1", "us-west-2"]


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def table(home: str | None, name: str) -> ControlTable:
    endpoints = {r: f"http://127.0.0.1:{closed_port()}" for r in [*REGIONS, "global"]}
    manifest = Manifest.model_construct(
        app="a",
        primary="us-east-1",
        spec="s",
        regions={},
        control=ControlManifest(table=name, regions=REGIONS),
        endpoints=endpoints,
    )
    clients = Clients(
        endpoints=endpoints, home=home, settings=AwsSettings(connect_timeout=0.5, read_timeout=0.5)
    )
    return ControlTable(clients, manifest)


def test_its_own_region_is_tried_first() -> None:
    assert table("us-west-2", "t-own").order() == ["us-west-2", "us-east-1"]
    assert table(None, "t-none").order() == REGIONS


def test_no_region_answering_is_one_failover_error_naming_each_region() -> None:
    control = table("us-west-2", "t-lost")
    with pytest.raises(NoMajorityError) as caught:
        control.get("lease", "lease")
    assert isinstance(caught.value, FailoverError)
    message = str(caught.value)
    assert message.startswith("the control table t-lost has no majority: ")
    assert "us-west-2 unreachable" in message and "us-east-1 unreachable" in message
    assert len(message.splitlines()) == 1
    # both failed in this process: the next call still tries both, own region no longer first
    assert sorted(control.order()) == sorted(REGIONS)
