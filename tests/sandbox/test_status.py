"""``failover status`` and ``controller.health`` against the emulator, with regions failing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from controller import health
from controller.actions.mode import read_region_mode, set_region_mode
from controller.actions.registry import action_for
from controller.contract import GLOBAL, DegradedMode
from controller.controltable import suspects
from controller.controltable.table import ControlTable
from controller.interfaces.views import read_status
from sandbox import Sandbox
from tests.kit.cli import CliResult
from tests.kit.emulator import HANG_BOUND, SLACK, status_json

pytestmark = pytest.mark.sandbox

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orders" / "topology.yaml"
PRIMARY, STANDBY, OTHER = "us-east-1", "us-west-2", "eu-west-1"
ORDER = ControlTable.order


def test_status_json_on_a_fresh_sandbox_every_region_healthy_primary_active(
    fresh_sandbox: Sandbox, cli: Callable[..., CliResult]
) -> None:
    data = status_json(cli, fresh_sandbox)
    assert data["app"] == "orders"
    assert data["active_region"] == PRIMARY
    assert list(data["regions"]) == [PRIMARY, STANDBY, OTHER]
    components = set(fresh_sandbox.topology.components)
    for name, region in data["regions"].items():
        assert region["reachable"] is True
        assert region["health"] == "healthy", name
        assert set(region["components"]) == components
        want = "active" if name == PRIMARY else "standby"
        assert {c["state"] for c in region["components"].values()} == {want}
        assert {c["health"] for c in region["components"].values()} == {"healthy"}


def test_status_with_a_hung_region_answers_fast_and_reports_the_others(
    fresh_sandbox: Sandbox, cli: Callable[..., CliResult]
) -> None:
    box = fresh_sandbox
    box.fail(PRIMARY, "hang")
    try:
        started = time.monotonic()
        data = status_json(cli, box, timeout=8)
        elapsed = time.monotonic() - started
    finally:
        box.heal(PRIMARY)
    assert elapsed < HANG_BOUND  # the hung region cost one short read, not botocore's 60 s
    hung = data["regions"][PRIMARY]
    assert (hung["reachable"], hung["health"]) == (False, "unreachable")
    for name in (STANDBY, OTHER):
        region = data["regions"][name]
        assert (region["reachable"], region["health"]) == (True, "healthy")
        assert {c["state"] for c in region["components"].values()} == {"standby"}
    # The primary's mode cannot be read; the PRIMARY record still names it.
    assert data["active_region"] == PRIMARY


def test_the_control_table_skips_a_region_the_status_probes_found_hung(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The probes give up on a hung region after 3/8 of the deadline; the control table's one
    read (both its items in one request) runs beside them with the same timeouts, so the hung
    region costs the status one timeout, not two; every read after it puts the region last."""
    box = fresh_sandbox
    monkeypatch.setattr(suspects, "_SUSPECT", {})  # a new process's view
    monkeypatch.setenv("FAILOVER_CACHE_DIR", str(tmp_path))
    assert ControlTable(box.clients, box.manifest).order()[0] == PRIMARY
    tried: list[list[str]] = []

    def recording(self: ControlTable) -> list[str]:
        order = ORDER(self)
        tried.append(order)
        return order

    box.fail(PRIMARY, "hang")
    try:
        monkeypatch.setattr(ControlTable, "order", recording)
        view = read_status(box.topology, box.manifest, box.clients, deadline=SLACK)
    finally:
        box.heal(PRIMARY)
    assert view.report.regions[PRIMARY].health == health.Health.UNREACHABLE
    assert view.control["active"] == PRIMARY  # read through us-west-2
    assert len(tried) == 1  # one request for the lease item and the run in progress
    assert view.report.elapsed < SLACK  # within the deadline, the hung region tried first
    ControlTable(box.clients, box.manifest).order()  # the next read of this process ...
    assert len(tried) == 2 and tried[1][-1] == PRIMARY  # ... asks the hung region last


def test_status_with_a_killed_region_reports_it_unreachable(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    box.fail(OTHER, "down")
    try:
        report = health.status(box.topology, box.manifest, box.clients, deadline=SLACK)
    finally:
        box.heal(OTHER)
    assert report.regions[OTHER].health == health.Health.UNREACHABLE
    assert report.regions[OTHER].error
    assert report.regions[PRIMARY].health == health.Health.HEALTHY


def test_fenced_degraded_and_alarmed_components_show_in_status(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    action_for(box.topology, box.manifest, box.clients, "worker", STANDBY).deactivate()
    action_for(box.topology, box.manifest, box.clients, "api-handler", OTHER).activate(
        DegradedMode.READ_ONLY
    )
    alarm = box.manifest.ref("projector", PRIMARY).alarms[0]
    boto3.client(
        "cloudwatch", region_name=PRIMARY, endpoint_url=box.manifest.endpoints[PRIMARY]
    ).set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")

    report = health.status(box.topology, box.manifest, box.clients, deadline=SLACK)
    assert report.regions[STANDBY].components["worker"].state == "fenced"
    assert report.regions[STANDBY].health == health.Health.HEALTHY
    degraded = report.regions[OTHER].components["api-handler"]
    assert (degraded.state, degraded.health) == ("degraded", health.Health.DEGRADED)
    assert report.regions[OTHER].health == health.Health.DEGRADED
    projector = report.regions[PRIMARY].components["projector"]
    assert projector.health == health.Health.UNHEALTHY and alarm in projector.detail
    assert report.regions[PRIMARY].health == health.Health.UNHEALTHY
    assert report.regions[PRIMARY].signals.alarms_firing == (alarm,)


def test_signals_for_the_watcher_and_the_http_probe_hook(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    probed: list[tuple[str, str]] = []

    def probe(region: str, url: str) -> bool:
        probed.append((region, url))
        return region != OTHER

    report = health.status(
        box.topology, box.manifest, box.clients, http_probe=probe, deadline=SLACK
    )
    assert sorted(r for r, _ in probed) == sorted([PRIMARY, STANDBY, OTHER])
    assert all(url.endswith("/health") for _, url in probed)
    assert report.regions[PRIMARY].signals.route53_healthy is True  # moto: always healthy
    assert report.regions[PRIMARY].signals.http_ok is True
    assert report.regions[OTHER].signals.http_ok is False
    assert report.regions[OTHER].health == health.Health.UNHEALTHY


def test_active_region_follows_the_region_mode(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    set_region_mode(box.clients, box.topology, box.manifest, PRIMARY, "fenced")
    set_region_mode(box.clients, box.topology, box.manifest, STANDBY, "active")
    assert read_region_mode(box.clients, box.topology, box.manifest, STANDBY) == "active"
    ssm = boto3.client("ssm", region_name=PRIMARY, endpoint_url=box.manifest.endpoints[PRIMARY])
    assert (
        ssm.get_parameter(Name=box.topology.mode_parameter(PRIMARY))["Parameter"]["Value"]
        == "fenced"
    )
    assert (
        health.status(box.topology, box.manifest, box.clients, deadline=SLACK).active_region
        == STANDBY
    )
    assert GLOBAL in box.manifest.endpoints


def test_status_text_is_a_table_with_regions_as_columns(
    fresh_sandbox: Sandbox, cli: Callable[..., CliResult]
) -> None:
    result = cli("status", "--manifest", fresh_sandbox.manifest_path, "--spec", EXAMPLE)
    assert result.code == 0, result.err
    header = next(line for line in result.out.splitlines() if "component" in line)
    assert STANDBY in header and OTHER in header
    assert "worker" in result.out


def test_status_without_a_manifest_is_one_line_and_exit_2(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("status", "--manifest", tmp_path / "none.json", "--spec", EXAMPLE)
    assert result.code == 2
    assert "no manifest" in result.err


def test_an_operators_missing_aws_profile_does_not_stop_the_sandbox(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    """AWS_PROFILE names a profile of the operator's; the emulator needs none."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "AWS_PROFILE": "not-on-this-machine",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller",
            "status",
            "--json",
            "--timeout",
            str(SLACK),
            "--manifest",
            str(fresh_sandbox.manifest_path),
            "--spec",
            str(EXAMPLE),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["active_region"] == PRIMARY


def test_two_regions_that_say_active_are_a_warning_naming_the_one_to_fence(
    fresh_sandbox: Sandbox, cli: Callable[..., CliResult]
) -> None:
    box = fresh_sandbox
    assert status_json(cli, box)["warnings"] == []
    set_region_mode(box.clients, box.topology, box.manifest, STANDBY, "active")
    data = status_json(cli, box)
    assert data["active_region"] == PRIMARY  # the traffic record still names it
    (warning,) = data["warnings"]
    assert f"{PRIMARY} and {STANDBY} both say active" in warning
    assert f"--to {PRIMARY} --from {STANDBY}" in warning
    text = cli(
        "status", "--manifest", box.manifest_path, "--spec", EXAMPLE, "--timeout", str(SLACK)
    )
    assert "warning" in text.out and "both say active" in text.out
