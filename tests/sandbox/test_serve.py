"""``failover serve`` against the emulator: the API's shapes, its refusals, its address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.controltable.journal import Journal
from controller.interfaces.serve import Api, StatusServer, deployment_sources
from sandbox import Sandbox
from tests.kit.cli import CliResult
from tests.kit.emulator import SLACK

pytestmark = pytest.mark.sandbox

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orders" / "topology.yaml"
STANDBY = "us-west-2"
TOKEN = "a-test-token-of-some-length"


def shape(value: Any) -> Any:
    """The keys of every mapping, recursively, and the type of every leaf."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__ if value is not None else "null"


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=SLACK) as response:  # noqa: S310 - loopback
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")


def post(url: str, **headers: str) -> int:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=b"{}",
        method="POST",
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=SLACK) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def server(fresh_sandbox: Sandbox) -> Iterator[StatusServer]:
    box = fresh_sandbox
    sources = deployment_sources(box.topology, box.manifest, box.clients, deadline=SLACK)
    with StatusServer(Api(sources, token=TOKEN)) as running:
        yield running


def test_api_status_and_runs_have_the_shape_of_the_cli_json(
    server: StatusServer, fresh_sandbox: Sandbox, cli: Callable[..., CliResult]
) -> None:
    where = ("--manifest", str(fresh_sandbox.manifest_path), "--spec", str(EXAMPLE))
    done = cli("execute", "--to", STANDBY, "--yes", *where)
    assert done.code == 0, done.err
    status = cli("status", "--json", "--timeout", str(SLACK), *where)
    runs = cli("runs", "--json", *where)
    assert status.code == 0 and runs.code == 0, status.err + runs.err
    code, api_status = get(server.url + "api/status")
    assert code == 200
    assert shape(api_status) == shape(json.loads(status.out))
    assert api_status["active_region"] == STANDBY
    code, api_runs = get(server.url + "api/runs")
    assert code == 200
    assert api_runs == json.loads(runs.out)  # the journal did not move in between: equal
    assert len(api_runs["runs"]) == 1
    code, run = get(server.url + "api/run")
    assert code == 200 and run["id"] == api_runs["runs"][0]["id"]
    assert {s["phase"] for s in run["steps"]} == {"fence", "activate"}
    assert all(s["state"] == "done" for s in run["steps"] if s["phase"] == "activate")
    code, watchers = get(server.url + "api/watchers")
    assert code == 200 and set(watchers["regions"]) == set(fresh_sandbox.topology.regions.all)
    assert watchers["automation"]["paused"] is False


def test_bad_requests_get_404_401_403_and_change_nothing(
    server: StatusServer, fresh_sandbox: Sandbox
) -> None:
    journal = Journal(fresh_sandbox.clients, fresh_sandbox.manifest)
    before = journal.automation()
    assert before["paused"] is False
    pause = server.url + "api/automation/pause"
    assert post(server.url + "api/nothing-here") == 404
    assert get(server.url + "api/nothing-here")[0] == 404
    assert post(pause) == 401
    assert post(pause, Authorization="Bearer not-the-token") == 403
    assert post(pause, Authorization="Bearer") == 403
    assert post(pause, Authorization=f"Token {TOKEN}") == 403
    assert journal.automation() == before  # read back: nothing changed
    assert post(pause, Authorization=f"Bearer {TOKEN}") == 200
    assert journal.automation()["paused"] is True
    assert post(server.url + "api/automation/resume", Authorization=f"Bearer {TOKEN}") == 200
    assert journal.automation()["paused"] is False


def test_failover_serve_refuses_a_wrong_control_table_before_listening(
    sandbox: Sandbox, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    data = json.loads(Path(sandbox.manifest_path).read_text())
    data["control"]["table"] = "orders-controI"
    wrong = tmp_path / "manifest.json"
    wrong.write_text(json.dumps(data))
    result = cli("serve", "--port", "0", "--manifest", wrong, "--spec", EXAMPLE)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "orders-controI" in result.err
    assert "status page" not in result.out


def test_failover_serve_prints_a_loopback_address_and_serves(fresh_sandbox: Sandbox) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "serve",
            "--port",
            "0",
            "--manifest",
            str(fresh_sandbox.manifest_path),
            "--spec",
            str(EXAMPLE),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("status page: http://127.0.0.1:"), line
        url = line.split()[2]
        deadline = time.monotonic() + SLACK
        code, data = get(url + "api/status")
        while code == 503 and time.monotonic() < deadline:  # the first read still running
            time.sleep(0.2)
            code, data = get(url + "api/status")
        assert code == 200 and data["active_region"] == fresh_sandbox.topology.regions.primary
        assert get(url + "api/automation/pause")[0] == 404  # read-only: no such route
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
