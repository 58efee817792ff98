"""Bad input changes nothing, on the emulator: issue 14's acceptance and its sandbox reproductions.

Every verb that reads a manifest is run against a set of broken ones (a missing region, a missing
endpoint, a wrong app, a missing component, a wrong control table, deep nesting): each must exit
2 with one line on stderr, no traceback, no request off loopback, and the emulator exactly as
before. These share the session's sandbox and change nothing in it. The tests of the sandbox's own
safety (file modes, the secret, ``global``, a corrupt state file) run on a sandbox of their own,
started under ``umask 000``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.contract import GLOBAL
from sandbox import Sandbox, controls, launcher
from sandbox import down as sandbox_down
from sandbox import servers as sandbox_servers
from tests.kit.emulator import mapping_enabled, plain, primary_record, rules_enabled
from tests.kit.manifests import DEEP, Trap
from tests.kit.paths import EXAMPLE

pytestmark = pytest.mark.sandbox

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
RUN_ID = "20261127-130000-beef"


def snapshot(box: Sandbox) -> dict[str, Any]:
    """What a failover would change, read with plain clients: modes, mappings, schedules,
    function concurrency, the DNS record and every item of the control table."""
    out: dict[str, Any] = {"dns": primary_record(box)}
    for region in REGIONS:
        ssm = plain(box, "ssm", region)
        params = ssm.get_parameters_by_path(Path="/", Recursive=True)["Parameters"]
        lam = plain(box, "lambda", region)
        out[region] = {
            "params": sorted((p["Name"], p["Value"]) for p in params),
            "mappings": mapping_enabled(box, region),
            "rules": rules_enabled(box, region),
            "concurrency": sorted(
                (
                    f["FunctionName"],
                    lam.get_function_concurrency(FunctionName=f["FunctionName"]).get(
                        "ReservedConcurrentExecutions"
                    ),
                )
                for f in lam.list_functions()["Functions"]
            ),
        }
    table = plain(box, "dynamodb", box.manifest.control.regions[0])
    out["control"] = sorted(
        json.dumps(i, sort_keys=True)
        for i in table.scan(TableName=box.manifest.control.table)["Items"]
    )
    return out


def broken_manifests(box: Sandbox, folder: Path) -> dict[str, Path]:
    """The manifest of ``box``, broken in each of the ways the issue names."""
    good = json.loads(box.manifest_path.read_text())

    def write(name: str, change: Callable[[dict[str, Any]], None]) -> Path:
        data = json.loads(json.dumps(good))
        change(data)
        path = folder / f"{name}.json"
        path.write_text(json.dumps(data))
        return path

    cases = {
        "missing_region": write("missing_region", lambda d: d["regions"].pop("eu-west-1")),
        "missing_endpoint": write("missing_endpoint", lambda d: d["endpoints"].pop("us-west-2")),
        "wrong_app": write("wrong_app", lambda d: d.__setitem__("app", "billing")),
        "missing_component": write(
            "missing_component", lambda d: d["regions"]["eu-west-1"]["components"].pop("worker")
        ),
        "wrong_control_table": write(
            "wrong_control_table", lambda d: d["control"].__setitem__("table", "orders-controI")
        ),
    }
    deep = folder / "deep_nesting.json"
    deep.write_text('{"app": ' + "[" * DEEP + "]" * DEEP + "}")
    cases["deep_nesting"] = deep
    return cases


#: Every verb that reads a manifest, as an operator would type it.
VERBS: list[list[str]] = [
    ["status"],
    ["status", "--json"],
    ["execute", "--to", "eu-west-1", "--dry-run"],
    ["execute", "--to", "eu-west-1", "--yes"],
    ["execute", "--to", "us-west-2", "--from", "us-east-1", "--yes", "--json"],
    ["failback", "--yes"],
    ["resume", RUN_ID],
    ["runs"],
    ["runs", "--json"],
    ["watch", "--once"],
    ["automation", "show"],
    ["automation", "pause", "--reason", "x"],
    ["automation", "resume"],
    ["drill", "--manifest"],  # the manifest is appended: drill's option is the same
]


@contextlib.contextmanager
def proxy_trap() -> Iterator[Trap]:
    """Every proxy variable points at a trap: a request meant for AWS lands there instead."""
    trap = Trap()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            patch.setenv(name, trap.url)
        for name in ("NO_PROXY", "no_proxy"):
            patch.delenv(name, raising=False)
        try:
            yield trap
        finally:
            trap.close()


def test_every_verb_refuses_every_broken_manifest_and_changes_nothing(
    fresh_sandbox: Sandbox, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """The acceptance test: exit 2, one line, no traceback, nothing changed, nothing sent.

    On a sandbox reset first: a test before it on this worker may have left a region down, and
    the snapshot reads every region (it once ran first on its worker, and only so passed)."""
    sandbox = fresh_sandbox
    before = snapshot(sandbox)  # plain clients, read before the proxy variables are set
    failures = []
    with proxy_trap() as trap:
        for case, path in broken_manifests(sandbox, tmp_path).items():
            for verb in VERBS:
                args = [*verb, path] if verb[-1] == "--manifest" else [*verb, "--manifest", path]
                result = cli(*args)
                lines = result.err.strip().splitlines()
                if result.code != 2 or len(lines) != 1 or "Traceback" in result.err:
                    failures.append(
                        f"{case} {' '.join(verb)}: exit {result.code}, "
                        f"stderr {result.err!r}, stdout {result.out[:200]!r}"
                    )
    assert failures == []
    assert trap.hits == 0
    assert snapshot(sandbox) == before


def test_a_wrong_control_table_is_one_line_saying_what_to_check(
    fresh_sandbox: Sandbox, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """The reproduction: a misspelled control.table gave a 46-105 line traceback."""
    sandbox = fresh_sandbox
    path = broken_manifests(sandbox, tmp_path)["wrong_control_table"]
    result = cli("runs", "--manifest", path)
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "error: the control table orders-controI does not exist in us-east-1: is the manifest "
        "right? (ResourceNotFoundException)"
    ]


def test_a_lease_whose_holder_died_on_this_machine_is_reported_as_such(
    fresh_sandbox: Sandbox, cli: Callable[..., Any]
) -> None:
    """The reproduction: a dead holder's lease was reported as held by a live one."""
    sandbox = fresh_sandbox
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    owner = f"ops@{socket.gethostname()}:{child.pid}/dead"
    table = plain(sandbox, "dynamodb", sandbox.manifest.control.regions[0])
    name = sandbox.manifest.control.table
    before = table.get_item(TableName=name, Key={"pk": {"S": "lease"}, "sk": {"S": "lease"}})
    table.put_item(
        TableName=name,
        Item={
            "pk": {"S": "lease"},
            "sk": {"S": "lease"},
            "owner": {"S": owner},
            "token": {"N": "999"},
            "expires_at": {"N": "9999999999"},
        },
    )
    try:
        result = cli(
            "execute", "--to", "us-west-2", "--dry-run", "--manifest", sandbox.manifest_path
        )
        line = next(x for x in result.out.splitlines() if "lease_free" in x)
        assert line.split()[0] == "ok", line
        assert f"held by {owner}, a process of this machine that has ended" in line
    finally:
        if "Item" in before:
            table.put_item(TableName=name, Item=before["Item"])
        else:
            table.delete_item(TableName=name, Key={"pk": {"S": "lease"}, "sk": {"S": "lease"}})


# -- the sandbox's own safety, on a sandbox of its own -----------------------------------------


@pytest.fixture(scope="module")
def own(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox started under ``umask 000``: only its owner may read or use it all the same."""
    state_dir = tmp_path_factory.mktemp("own") / ".failover"
    old = os.umask(0)
    try:
        box = Sandbox.up(EXAMPLE, state_dir)
    finally:
        os.umask(old)
    try:
        yield box
    finally:
        try:
            sandbox_down(state_dir)
        finally:  # whatever happened, no process outlives the module
            sandbox_servers.stop_pids(sandbox_servers.find_processes(state_dir / "logs"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sandbox_files_are_its_owners_only_whatever_the_umask(own: Sandbox) -> None:
    """The reproduction: under umask 000 any local user could use the launcher's socket."""
    folder = own.state_dir
    assert mode(folder) == 0o700
    assert mode(folder / "logs") == 0o700
    for path in (
        folder / "sandbox.json",
        folder / "manifest.json",
        *(folder / "logs").glob("*.log"),
    ):
        assert mode(path) == 0o600, path
    assert own.state.zygote is not None
    assert mode(Path(own.state.zygote.socket)) == 0o600
    assert own.state.secret and len(own.state.secret) >= 24


def post(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, method="POST", headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_reset_and_round_trip_need_the_sandbox_secret(own: Sandbox) -> None:
    """The reproduction: anyone could wipe the journal and DNS, or make every call a 500."""
    url = own.state.servers[GLOBAL].url
    assert post(f"{url}/moto-api/reset") == 403
    assert post(f"{url}/moto-api/reset", {controls.SECRET_HEADER: "guess"}) == 403
    assert post(f"{url}{launcher.ROUND_TRIP_PATH}?seconds=inf") == 403
    secret = {controls.SECRET_HEADER: own.state.secret}
    assert post(f"{url}{launcher.ROUND_TRIP_PATH}?seconds=inf", secret) == 400
    assert post(f"{url}{launcher.ROUND_TRIP_PATH}?seconds=0", secret) == 204
    # nothing was wiped, every call is answered
    assert plain(own, "route53", GLOBAL).list_hosted_zones()["HostedZones"]
    table = plain(own, "dynamodb", own.manifest.control.regions[0])
    assert table.describe_table(TableName=own.manifest.control.table)["Table"]


def test_the_zygote_forks_only_the_servers_it_started(own: Sandbox) -> None:
    """The reproduction: it started a server on any port with a log at any path."""
    assert own.state.zygote is not None
    for line in ("us-east-1 1 /tmp/evil.log", "ap-south-1", "../etc"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(own.state.zygote.socket)
            conn.sendall(f"{line}\n".encode())
            answer = conn.makefile("r").readline()
        assert answer.startswith("error:"), (line, answer)
    assert not Path("/tmp/evil.log").exists()


def test_global_can_be_failed_and_healed(
    own: Sandbox, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproduction: ``sandbox fail global`` said ``unknown region 'global'``."""
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(own.state_dir))
    assert cli("sandbox", "fail", "global", "--mode", "hang").code == 0
    assert cli("sandbox", "heal", "global").code == 0
    result = cli("sandbox", "fail", "global")
    assert result.code == 0, result.err
    assert not sandbox_servers.is_ours(Sandbox.attach(own.state_dir).state.servers[GLOBAL])
    result = cli("sandbox", "heal", "global")
    assert result.code == 0, result.err
    box = Sandbox.attach(own.state_dir)
    # the control table is not in global: it survives, and answers through its regions
    described = plain(box, "dynamodb", "us-east-1").describe_table(
        TableName=box.manifest.control.table
    )
    assert described["Table"]["TableStatus"] == "ACTIVE"
    assert primary_record(box)  # the failover records are back
    status = cli("status", "--json", "--manifest", box.manifest_path)
    assert status.code == 0, status.err
    assert json.loads(status.out)["active_region"] == "us-east-1"


def test_a_corrupt_state_file_leaves_no_orphan(
    own: Sandbox, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproduction: a corrupt sandbox.json made every verb refuse, and after removing it
    ``sandbox up`` started a second set while the first ran on, orphaned."""
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(own.state_dir))
    first = sandbox_servers.find_processes(own.state_dir / "logs")
    assert len(first) >= 5  # four servers and the zygote
    (own.state_dir / "sandbox.json").write_text("{not json")
    shown = cli("sandbox", "show")
    assert shown.code == 2 and len(shown.err.strip().splitlines()) == 1
    assert "sandbox down" in shown.err
    up = cli("sandbox", "up", "--spec", EXAMPLE, "--json")
    assert up.code == 0, up.err
    assert not any(sandbox_servers.alive(pid) for pid in first)  # the first set was stopped
    second = sandbox_servers.find_processes(own.state_dir / "logs")
    assert second and not set(second) & set(first)
    (own.state_dir / "sandbox.json").unlink()  # removed, as the old message told
    down = cli("sandbox", "down")
    assert down.code == 0, down.err
    assert sandbox_servers.find_processes(own.state_dir / "logs") == []
