"""``failover validate``, ``graph`` and ``plan`` through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit.paths import EXAMPLE, REPO


def test_plan_json_has_exactly_the_documented_shape(cli) -> None:
    result = cli("plan", "--spec", EXAMPLE, "--to", "eu-west-1", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) == {"app", "from", "to", "steps", "degraded"}
    assert (data["app"], data["from"], data["to"]) == ("orders", "us-east-1", "eu-west-1")
    for step in data["steps"]:
        assert set(step) == {"id", "component", "region", "phase", "action", "level", "needs"}
        assert step["phase"] in ("fence", "activate")
    assert data["degraded"] == {}


def test_plan_unavailable_fills_degraded_map(cli) -> None:
    result = cli("plan", "--spec", EXAMPLE, "--to", "us-west-2", "-u", "receipts-bucket", "--json")
    data = json.loads(result.out)
    assert data["degraded"] == {"projector": "queue_writes"}
    assert "activate:receipts-bucket@us-west-2" not in {s["id"] for s in data["steps"]}


def test_plan_text_is_grouped_by_level(cli) -> None:
    result = cli("plan", "--spec", EXAMPLE, "--to", "us-west-2", "-u", "orders-table")
    assert result.code == 0
    assert "fail over us-east-1 -> us-west-2" in result.out
    assert "degraded in the target:" in result.out
    assert "api-handler -> read_only" in result.out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--to", "us-west-3"], "--to 'us-west-3' is not a region of orders"),
        (["--to", "us-west-2", "--from", "ap-south-1"], "--from 'ap-south-1' is not a region"),
        (["--to", "us-east-1"], "nothing to fail over"),
        (["--to", "us-west-2", "-u", "ghost"], "--unavailable 'ghost' is not a component"),
        ([], "Missing option '--to'"),
    ],
)
def test_plan_bad_request_exits_2_with_one_line(cli, args: list[str], fragment: str) -> None:
    result = cli("plan", "--spec", EXAMPLE, *args)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert fragment in result.err


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        ("json", '"activation_levels"'),
        ("mermaid", "flowchart TD"),
        ("dot", "digraph topology"),
        ("text", "activation levels"),
    ],
)
def test_graph_formats(cli, fmt: str, marker: str) -> None:
    result = cli("graph", "--spec", EXAMPLE, "--format", fmt)
    assert result.code == 0
    assert marker in result.out


def test_plan_renders_as_mermaid_and_dot(cli) -> None:
    mermaid = cli("plan", "--spec", EXAMPLE, "--to", "us-west-2", "--format", "mermaid").out
    dot = cli("plan", "--spec", EXAMPLE, "--to", "us-west-2", "--format", "dot").out
    assert "subgraph L0" in mermaid
    assert '"fence:dns@us-east-1" -> "fence:api@us-east-1";' in dot


def test_validate_reads_failover_spec_env(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAILOVER_SPEC", str(EXAMPLE))
    result = cli("validate")
    assert result.code == 0
    assert "orders: 12 components, 3 regions" in result.out


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("app: [")
    proc = subprocess.run(
        [sys.executable, "-m", "controller", "plan", "--to", "us-west-2", "--spec", str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "t.yaml" in proc.stderr
