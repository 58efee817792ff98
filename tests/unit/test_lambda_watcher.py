"""The deployed watcher's handler: how long it watches, what it carries across invocations, what
it logs, and that a watcher cut off from the control table does nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller import contract, lambda_watcher
from controller.aws import Clients
from controller.errors import FailoverError
from controller.spec import load
from controller.watcher import Decision, Watcher
from controller.watchstate import WatchState
from tests.unit.test_bad_input import EXAMPLE, fake_manifest


class Context:
    """Lambda's context with a clock the test moves."""

    aws_request_id = "req-1234"

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.left * 1000)


class Memory:
    """An in-memory stand-in for the control table's watcher items."""

    def __init__(self, state: WatchState | None = None, *, reachable: bool = True) -> None:
        self.state = state
        self.reachable = reachable
        self.written: list[WatchState] = []

    def __call__(self, table: Any) -> Memory:
        return self

    def read(self, region: str) -> WatchState:
        if not self.reachable:
            raise FailoverError("control table x unreachable in every region (global)")
        return self.state or WatchState(region)

    def write(self, state: WatchState) -> None:
        self.written.append(state)


@pytest.fixture
def deployment() -> lambda_watcher.Deployment:
    topology = load(EXAMPLE)
    manifest = fake_manifest(topology)
    return lambda_watcher.Deployment(topology, manifest, Clients(endpoints=manifest.endpoints))


def run(
    deployment: lambda_watcher.Deployment,
    memory: Memory,
    seconds: float,
    monkeypatch: pytest.MonkeyPatch,
    bad: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """One invocation of us-west-2's watcher whose every evaluation finds the primary bad."""
    monkeypatch.setattr(lambda_watcher, "WatchStates", memory)
    seen: list[Watcher] = []

    def step(self: Watcher) -> Decision:
        seen.append(self)
        self.consecutive_bad += 1 if bad else 0
        self._history.append(bad)
        return Decision(1.0, "watch", "primary bad", "us-east-1", {}, self.consecutive_bad)

    monkeypatch.setattr(Watcher, "step", step)
    context = Context(seconds)
    lines: list[str] = []

    def sleep(s: float) -> None:
        context.left -= s

    summary = lambda_watcher.watch(
        "us-west-2", context, deployment=deployment, sleep=sleep, emit=lines.append
    )
    assert len({id(w) for w in seen}) <= 1  # one Watcher per invocation
    return summary, lines


def test_it_evaluates_at_the_interval_until_one_more_would_outlive_the_invocation(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    interval = deployment.topology.policy.watch_interval_seconds  # 10 s
    memory = Memory()
    summary, lines = run(deployment, memory, 60.0, monkeypatch)
    # evaluations at 0, 10, 20, 30, 40 s; one at 50 s would leave 10 s < interval + margin
    assert summary["evaluations"] == 5, summary
    assert interval == 10.0
    assert len(lines) == 10  # one log line and one metric record per evaluation
    assert [s.consecutive_bad for s in memory.written] == [1, 2, 3, 4, 5]


def test_an_invocation_ends_inside_its_minute_whatever_its_timeout(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployed timeout is a minute plus a failover's budget: the evaluations stop inside
    the minute all the same, or the next minute's invocation meets a busy function."""
    monkeypatch.delenv(contract.ENV_WATCHER_PERIOD, raising=False)
    summary, _ = run(deployment, Memory(), 600.0, monkeypatch)
    # at 0, 10, ..., 50 s; one at 60 s would end in the next invocation's minute
    assert summary["evaluations"] == 6, summary
    monkeypatch.setenv(contract.ENV_WATCHER_PERIOD, "30")  # a schedule the deployment tells
    summary, _ = run(deployment, Memory(), 600.0, monkeypatch)
    assert summary["evaluations"] == 3, summary  # 0, 10, 20 s: each ends before 30 s


def test_hysteresis_carries_across_invocations(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = WatchState(
        "us-west-2",
        consecutive_bad=2,
        history=(False, True, True),
        last_action=123.0,
        good_primary=1,
        evaluations=7,
    )
    memory = Memory(before)
    run(deployment, memory, 15.0, monkeypatch)
    after = memory.written[-1]
    assert after.consecutive_bad == 3
    assert after.history == (False, True, True, True)
    assert after.last_action == 123.0 and after.good_primary == 1
    assert after.evaluations == 8
    assert after.owner == "watcher@us-west-2/req-1234"  # names its region


def test_every_evaluation_is_one_json_line_and_one_embedded_metric(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, lines = run(deployment, Memory(), 15.0, monkeypatch)
    log, metric = (json.loads(line) for line in lines)
    assert log["watcher_region"] == "us-west-2" and log["action"] == "watch"
    assert log["consecutive_bad"] == 1
    spec = metric["_aws"]["CloudWatchMetrics"][0]
    assert spec["Namespace"] == contract.WATCHER_NAMESPACE
    assert ["App"] in spec["Dimensions"] and ["App", "Region"] in spec["Dimensions"]
    assert contract.WATCHER_METRIC in {m["Name"] for m in spec["Metrics"]}
    assert metric[contract.WATCHER_METRIC] == 1 and metric["Region"] == "us-west-2"
    assert metric["App"] == deployment.topology.prefix


def test_a_watcher_that_cannot_reach_the_control_table_never_evaluates(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = Memory(reachable=False)
    summary, lines = run(deployment, memory, 60.0, monkeypatch)
    assert summary["evaluations"] == 0 and "unreachable" in summary["error"]
    log, metric = (json.loads(line) for line in lines)
    assert log["action"] == "unreachable"
    assert metric[contract.WATCHER_METRIC] == 0  # the dead-man alarm counts it as silence
    assert memory.written == []


def test_the_deployment_comes_from_the_bundle_and_the_manifest_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topology = load(EXAMPLE)
    manifest = fake_manifest(topology)
    manifest.save(tmp_path / "manifest.json")
    (tmp_path / contract.WATCHER_SPEC_FILE).write_text(EXAMPLE.read_text())
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    monkeypatch.delenv(contract.ENV_WATCHER_SPEC, raising=False)
    monkeypatch.delenv(contract.ENV_WATCHER_CONTROL_TABLE, raising=False)
    monkeypatch.setenv(contract.ENV_WATCHER_MANIFEST, str(tmp_path / "manifest.json"))
    got = lambda_watcher.load_deployment("us-west-2")
    assert got.topology.app == topology.app and got.manifest == manifest
    monkeypatch.delenv(contract.ENV_WATCHER_MANIFEST)
    with pytest.raises(FailoverError, match=contract.ENV_WATCHER_CONTROL_TABLE):
        lambda_watcher.load_deployment("us-west-2")
