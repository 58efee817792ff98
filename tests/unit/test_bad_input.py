"""Bad input changes nothing and reaches no one: issue 14's reproductions that need no emulator.

A manifest that disagrees with its topology is refused before anything acts; a sandbox
manifest's calls never leave loopback; an AWS error, deep nesting or Ctrl-C reaches the operator
as one line; ``failover runs`` never cuts a run id.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from controller.aws import AwsSettings, Clients, decode, error_code, explain, is_not_found
from controller.errors import AwsError, SpecError
from controller.topology import Topology, load, loads
from controller.topology.manifest import (
    Manifest,
    check_deployment,
    check_steps,
    load_manifest,
)
from tests.kit.manifests import DEEP, Trap, fake_manifest, write_manifest
from tests.kit.paths import EXAMPLE


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load(EXAMPLE)


def check(manifest: Manifest, topology: Topology) -> None:
    check_deployment(manifest, topology)


# -- 1. a manifest is checked against its topology ---------------------------------------------


def test_a_manifest_of_the_topology_passes(topology: Topology) -> None:
    check(fake_manifest(topology), topology)


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (lambda m: m.regions.pop("eu-west-1"), "regions.eu-west-1"),
        (
            lambda m: m.regions.__setitem__("ap-south-1", m.regions["us-west-2"]),
            "regions.ap-south-1",
        ),
        (lambda m: setattr(m, "app", "billing"), "app"),
        (lambda m: setattr(m, "primary", "us-west-2"), "primary"),
        (
            lambda m: m.regions["eu-west-1"].components.pop("worker"),
            "regions.eu-west-1.components.worker",
        ),
        (lambda m: m.endpoints.pop("us-west-2"), "endpoints.us-west-2"),
        (lambda m: m.endpoints.pop("global"), "endpoints.global"),
        (
            lambda m: m.endpoints.__setitem__(
                "us-west-2", "https://lambda.us-west-2.amazonaws.com"
            ),
            "endpoints.us-west-2",
        ),
    ],
    ids=[
        "missing_region",
        "extra_region",
        "wrong_app",
        "wrong_primary",
        "missing_component",
        "missing_endpoint",
        "missing_global_endpoint",
        "endpoint_off_loopback",
    ],
)
def test_a_manifest_that_disagrees_is_refused_naming_the_field(
    topology: Topology, breakage: Any, field: str
) -> None:
    manifest = fake_manifest(topology)
    breakage(manifest)
    with pytest.raises(SpecError) as caught:
        check(manifest, topology)
    assert caught.value.field == field
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value)


def test_a_plan_step_the_manifest_cannot_place_is_refused(topology: Topology) -> None:
    manifest = fake_manifest(topology)
    manifest.regions["eu-west-1"].components.pop("worker")
    with pytest.raises(SpecError) as caught:
        check_steps(manifest, [("api", "us-east-1"), ("worker", "eu-west-1")])
    assert caught.value.field == "regions.eu-west-1.components.worker"


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry_run", "real_run"])
def test_execute_with_a_region_missing_from_the_manifest_is_refused_the_same_way(
    cli, tmp_path: Path, topology: Topology, dry_run: bool
) -> None:
    """The reproduction: the real run fenced the primary while the dry run said ``ok``."""
    manifest = fake_manifest(topology)
    manifest.regions.pop("eu-west-1")
    path = write_manifest(tmp_path, manifest)
    result = cli(
        "execute",
        "--to",
        "eu-west-1",
        "--from",
        "us-east-1",
        "--manifest",
        path,
        *(["--dry-run"] if dry_run else ["--yes"]),
    )
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: {path}: regions.eu-west-1: the topology's region 'eu-west-1' is missing"
    ]


def test_a_spec_naming_a_region_the_manifest_lacks_is_refused(
    cli, tmp_path: Path, topology: Topology
) -> None:
    text = EXAMPLE.read_text().replace(
        "standby: [us-west-2, eu-west-1]", "standby: [us-west-2, eu-west-1, eu-central-1]"
    )
    # the copy's code folders are relative to the example's folder, not the copy's
    text = text.replace("code: functions", f"code: {EXAMPLE.parent / 'functions'}")
    spec = tmp_path / "topology.yaml"
    spec.write_text(text)
    path = write_manifest(tmp_path, fake_manifest(topology))
    result = cli("status", "--manifest", path, "--spec", spec)
    assert result.code == 2
    assert "regions.eu-central-1" in result.err and len(result.err.strip().splitlines()) == 1


# -- 2. a sandbox manifest never leaves loopback -------------------------------------------------


def test_an_emulated_region_without_an_endpoint_is_refused() -> None:
    clients = Clients(endpoints={"us-east-1": "http://127.0.0.1:1", "global": "http://127.0.0.1:2"})
    with pytest.raises(SpecError) as caught:
        clients.client("sqs", "us-west-2")
    assert caught.value.field == "endpoints.us-west-2"
    with pytest.raises(SpecError):
        Clients(endpoints={"us-east-1": "http://10.0.0.1:1"}).client("sqs", "us-east-1")
    assert Clients().endpoint("sqs", "us-west-2") is None  # real AWS: botocore's own endpoint


@pytest.fixture
def proxy_trap(monkeypatch: pytest.MonkeyPatch) -> Iterator[Trap]:
    """Every proxy variable points at a trap: a request meant for AWS lands there instead."""
    trap = Trap()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, trap.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    try:
        yield trap
    finally:
        trap.close()


def test_emulated_calls_ignore_proxy_variables_and_stay_on_loopback(proxy_trap: Trap) -> None:
    emulator = Trap()
    try:
        clients = Clients(endpoints={"us-east-1": emulator.url, "global": emulator.url})
        with pytest.raises(botocore.exceptions.BotoCoreError):
            clients.client("sqs", "us-east-1").list_queues()
        assert emulator.hits >= 1
        assert proxy_trap.hits == 0
    finally:
        emulator.close()


def test_a_manifest_missing_an_endpoint_attempts_no_request_outside_loopback(
    cli, tmp_path: Path, topology: Topology, proxy_trap: Trap
) -> None:
    """The reproduction: without ``endpoints.us-west-2`` its calls went to AWS."""
    manifest = fake_manifest(topology)
    manifest.endpoints.pop("us-west-2")
    path = write_manifest(tmp_path, manifest)
    for verb in (
        ["status"],
        ["execute", "--to", "us-west-2", "--from", "us-east-1", "--yes"],
        ["runs"],
        ["watch", "--once"],
    ):
        result = cli(*verb, "--manifest", path)
        assert result.code == 2, result.err
        assert "endpoints.us-west-2" in result.err
    assert proxy_trap.hits == 0


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.2:1", True),
        ("http://[::1]:1", True),
        ("http://localhost:1", True),
        ("http://0.0.0.0:1", False),
        ("http://10.0.0.1:1", False),
        ("https://sqs.us-east-1.amazonaws.com", False),
    ],
)
def test_the_manifest_check_and_the_clients_draw_the_loopback_line_in_one_place(
    topology: Topology, url: str, loopback: bool
) -> None:
    """One rule: a manifest endpoint the check accepts is one the clients call, and the other
    way round (the check once refused 127.0.0.2, which the clients called)."""
    manifest = fake_manifest(topology)
    manifest.endpoints["us-west-2"] = url
    try:
        check_deployment(manifest, topology)
        checked = True
    except SpecError:
        checked = False
    try:
        Clients(endpoints=manifest.endpoints).endpoint("sqs", "us-west-2")
        called = True
    except SpecError:
        called = False
    assert (checked, called) == (loopback, loopback)


def test_the_trap_does_catch_a_call_to_aws(proxy_trap: Trap) -> None:
    """The check above can fail: a real-AWS client does go through the proxy variables."""
    client = Clients(settings=AwsSettings(connect_timeout=1.5)).client("sqs", "us-west-2")
    with pytest.raises(botocore.exceptions.BotoCoreError):
        client.list_queues()
    assert proxy_trap.hits >= 1


# -- 5. one decoder, one line --------------------------------------------------------------------


def client_error(code: str, status: int = 400, op: str = "Query") -> Exception:
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": "Requested resource not found"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        op,
    )


def test_one_decoder_reads_codes_flags_and_missing_resources() -> None:
    missing = client_error("ResourceNotFoundException")
    decoded = decode(missing)
    assert decoded is not None and decoded.missing and not decoded.transient
    assert error_code(missing) == "ResourceNotFoundException"
    assert is_not_found(missing) and is_not_found(client_error("NoSuchHostedZone"))
    assert error_code(ValueError("x")) == "" and decode(ValueError("x")) is None
    throttled = decode(client_error("ThrottlingException"))
    assert throttled is not None and throttled.transient


def test_a_missing_control_table_is_explained_in_one_line_with_flags() -> None:
    err = explain(
        client_error("ResourceNotFoundException"), what="the control table t", where="us-east-1"
    )
    assert isinstance(err, AwsError)
    assert err.missing and not err.unreachable and err.exit_code == 2
    assert str(err).startswith(
        "the control table t does not exist in us-east-1: is the manifest right?"
    )


def test_no_other_module_reads_botocore_errors_itself() -> None:
    """The one decoder: nothing but controller/aws/errors.py reads a botocore error's response."""
    root = Path(__file__).resolve().parents[2] / "controller"
    readers = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p != root / "aws" / "errors.py"
        and ('"Error"' in p.read_text() or "botocore.exceptions" in p.read_text())
    ]
    assert readers == []


def test_an_aws_error_reaching_the_cli_is_one_line(
    cli, tmp_path: Path, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.controltable import journal

    def fail(*_: Any, **__: Any) -> None:
        raise client_error("AccessDeniedException", op="Query")

    monkeypatch.setattr(journal.Journal, "runs", fail)
    result = cli("runs", "--manifest", write_manifest(tmp_path, fake_manifest(topology)))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err
    assert "AWS call Query was refused (AccessDeniedException)" in lines[0]


# -- 5. deep nesting -------------------------------------------------------------------------------


def test_deep_json_nesting_in_a_topology_is_refused_like_yaml() -> None:
    with pytest.raises(SpecError, match="exceeded maximum nesting depth"):
        loads('{"app": ' + "[" * DEEP + "]" * DEEP + "}")
    with pytest.raises(SpecError, match="exceeded maximum nesting depth"):
        loads("app: " + "[" * DEEP + "]" * DEEP)


def test_deep_json_nesting_in_a_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text('{"app": ' + "[" * DEEP + "]" * DEEP + "}")
    with pytest.raises(SpecError, match="exceeded maximum nesting depth"):
        load_manifest(path)


def test_deep_topology_through_the_cli_is_one_line(cli, tmp_path: Path) -> None:
    path = tmp_path / "topology.json"
    path.write_text('{"app": ' + "[" * DEEP + "]" * DEEP + "}")
    result = cli("validate", "--spec", path)
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: {path}: not valid JSON: exceeded maximum nesting depth"
    ]


# -- 6. Ctrl-C, and run ids ------------------------------------------------------------------------


def test_ctrl_c_during_execute_names_the_run_and_the_resume_command(
    cli, tmp_path: Path, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the executor raises once it journalled a run interrupted reaches the operator as
    one line naming the run and the command that continues it, with the manifest given."""
    from controller.engine import executor as executors
    from controller.errors import RunInterruptedError

    def interrupted(self: Any, plan: Any, **_: Any) -> None:
        raise RunInterruptedError("20261127-130000-beef")

    monkeypatch.setattr(executors.Executor, "execute", interrupted)
    path = write_manifest(tmp_path, fake_manifest(topology))
    result = cli("execute", "--to", "us-west-2", "--from", "us-east-1", "--yes", "--manifest", path)
    assert result.code == 130
    assert result.err.strip().splitlines()[-1] == (
        "error: run 20261127-130000-beef interrupted: the journal says interrupted and the "
        "lease is released; continue it with: failover resume 20261127-130000-beef "
        f"--manifest {path}"
    )


@pytest.mark.parametrize("signal_text", ["", "terminated (SIGTERM)"], ids=["INT", "TERM"])
def test_ctrl_c_in_a_verb_that_runs_nothing_says_so_and_exits_130(
    cli, tmp_path: Path, topology: Topology, monkeypatch: pytest.MonkeyPatch, signal_text: str
) -> None:
    """The same path as a run's interruption: typer once turned it into a silent exit 130."""
    from controller.interfaces import views

    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt(signal_text)

    monkeypatch.setattr(views, "read_status", interrupted)
    path = write_manifest(tmp_path, fake_manifest(topology))
    result = cli("status", "--manifest", path)
    assert result.code == 130
    assert result.err.strip().splitlines()[-1] == (signal_text or "interrupted")
    assert "Traceback" not in result.err


def test_runs_never_cuts_a_run_id_in_a_narrow_pipe(
    cli, tmp_path: Path, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproduction: ids were cut to ``2026112…`` in an 80-column or piped terminal."""
    from controller.controltable import journal
    from controller.interfaces.cli.app import console
    from controller.plan import graph
    from controller.plan.build import build_plan

    plan = build_plan(topology, graph.build(topology), target="us-west-2")
    ids = [f"20261127-1300{n:02d}-beef" for n in range(3)]
    found = [
        journal.Run(
            i,
            plan,
            journal.RunStatus.COMPLETED_DEGRADED,
            "someone-with-a-long-name@a-rather-long-host-name:4242/abcd",
            1.8e9,
            1.8e9,
            kind="failback",
        )
        for i in ids
    ]
    monkeypatch.setattr(journal.Journal, "runs", lambda self, limit=50: found)
    monkeypatch.setattr(console, "width", 80)
    result = cli("runs", "--manifest", write_manifest(tmp_path, fake_manifest(topology)))
    assert result.code == 0, result.err
    for run_id in ids:
        assert run_id in result.out, result.out


def test_runs_json_lists_whole_ids(
    cli, tmp_path: Path, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.controltable import journal

    monkeypatch.setattr(journal.Journal, "runs", lambda self, limit=50: [])
    result = cli("runs", "--json", "--manifest", write_manifest(tmp_path, fake_manifest(topology)))
    assert json.loads(result.out) == {"runs": []}


def test_a_lease_holder_dead_on_this_machine_is_known_dead() -> None:
    from controller.controltable.journal import Lease

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = Lease(f"ops@{socket.gethostname()}:{child.pid}/beef", 1, 0.0)
    assert dead.holder_dead
    assert not Lease(f"ops@{socket.gethostname()}:{os.getpid()}/beef", 1, 0.0).holder_dead
    assert not Lease(f"ops@another-host:{child.pid}/beef", 1, 0.0).holder_dead
