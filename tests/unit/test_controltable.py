"""The control table is tried in its regions, own region first, and says so when none answers."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from controller.aws import AwsSettings, Clients
from controller.controltable import suspects
from controller.controltable import table as controltable
from controller.controltable.table import ControlTable
from controller.errors import FailoverError, NoMajorityError
from controller.topology.manifest import ControlManifest, Manifest

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


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A new process's view: nothing remembered in memory, the hints file in ``tmp_path``."""
    monkeypatch.setattr(suspects, "_SUSPECT", {})
    monkeypatch.setenv("FAILOVER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "control-suspects.json"


def test_a_region_lost_by_one_command_is_tried_last_by_the_next(
    fresh_process: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = table(None, "t-next")
    first.suspect("us-east-1")  # what call() records when us-east-1 does not answer
    assert fresh_process.exists() and oct(fresh_process.parent.stat().st_mode & 0o777) == "0o700"
    monkeypatch.setattr(suspects, "_SUSPECT", {})  # the next command: a new process
    again = ControlTable(first.clients, manifest_of(first))
    assert again.order() == ["us-west-2", "us-east-1"]
    # another deployment's table of the same name (other endpoints) is not affected
    assert table(None, "t-next").order() == REGIONS


def test_an_old_failure_is_forgotten(fresh_process: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    control = table(None, "t-old")
    endpoint = control.clients.endpoints["us-east-1"]
    stale = time.time() - suspects.SUSPECT_SECONDS - 1
    fresh_process.parent.mkdir(parents=True)
    fresh_process.write_text(json.dumps([["t-old", "us-east-1", endpoint, stale]]))
    assert control.order() == REGIONS
    fresh_process.write_text(json.dumps([["t-old", "us-east-1", endpoint, time.time()]]))
    assert control.order() == ["us-west-2", "us-east-1"]
    fresh_process.write_text("{not json")  # a damaged file is no hint at all
    assert control.order() == REGIONS


def test_when_every_region_failed_lately_the_last_to_fail_is_tried_last(
    fresh_process: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blip in us-west-2, then us-east-1 lost (the controller's own region): both are
    suspects for a while, and us-east-1, still lost, must not be tried first on every call."""
    control = table("us-east-1", "t-both")
    now = [1000.0]
    monkeypatch.setattr(controltable.aws_clock, "now", lambda: now[0])
    monkeypatch.setattr(suspects.clock, "now", lambda: now[0])
    control.suspect("us-west-2")
    now[0] += 5
    control.suspect("us-east-1")
    assert control.order() == ["us-west-2", "us-east-1"]
    now[0] += 5
    control.suspect("us-west-2")  # it failed again since: now the later one
    assert control.order() == ["us-east-1", "us-west-2"]


def test_a_cache_that_cannot_be_written_still_orders_this_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(suspects, "_SUSPECT", {})
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FAILOVER_CACHE_DIR", str(blocker / "cache"))  # under a file: unwritable
    control = table(None, "t-ro")
    control.suspect("us-east-1")
    assert control.order() == ["us-west-2", "us-east-1"]


def manifest_of(control: ControlTable) -> Manifest:
    """A manifest naming ``control``'s table, regions and endpoints."""
    return Manifest.model_construct(
        app="a",
        primary="us-east-1",
        spec="s",
        regions={},
        control=ControlManifest(table=control.table, regions=control.regions),
        endpoints=dict(control.clients.endpoints),
    )


def test_regions_a_probe_found_unreachable_are_tried_last(fresh_process: Path) -> None:
    control = table(None, "t-probed")
    controltable.suspect(control.clients, manifest_of(control), ["eu-west-1", "us-east-1"])
    assert control.order() == ["us-west-2", "us-east-1"]
    # a region that serves no replica of the table is not remembered for it
    rows = json.loads(fresh_process.read_text())
    assert [(r[0], r[1]) for r in rows] == [("t-probed", "us-east-1")]
