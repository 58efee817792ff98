"""The deployed watcher's handler: how long it watches, what it carries across invocations, what
it logs, and that a watcher cut off from the control table does nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller import contract
from controller.aws import Clients
from controller.errors import FailoverError
from controller.topology import load
from controller.watchers import lambda_entry as lambda_watcher
from controller.watchers.decisions import Decision, WatchAction
from controller.watchers.watcher import Watcher
from tests.kit.manifests import fake_manifest
from tests.kit.paths import EXAMPLE
from tests.kit.watcher import Context, Memory


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
        return Decision(
            1.0, WatchAction.WATCH, "primary bad", "us-east-1", {}, self.consecutive_bad
        )

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


def test_a_region_bad_across_two_invocations_fails_over_at_the_threshold(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hysteresis crosses invocations: each is a new Watcher, and only the control table's
    item carries what the last one saw. The example's threshold is 3: two bad evaluations in
    one invocation and a third in the next fail over, in the next one only.

    Only the I/O is replaced: the regions' read (the primary does not answer), the control
    table's desired state and switch, the reconciler and the executor (which records the run).
    """
    from controller.controltable.desired import Desired
    from controller.controltable.glance import Glance
    from controller.controltable.journal import Journal, Run, RunStatus
    from controller.health import Health
    from controller.watchers.decisions import Evaluation

    primary, standby, other = deployment.topology.regions.all
    assert deployment.topology.policy.failure_threshold == 3

    def read(self: Watcher) -> Evaluation:
        health = {primary: Health.UNREACHABLE, standby: Health.HEALTHY, other: Health.HEALTHY}
        votes = {r: {"control_plane": h == Health.UNREACHABLE} for r, h in health.items()}
        return Evaluation(self.clock(), primary, health, votes, quorum=2)

    started: list[str] = []

    class Executor:
        def __init__(self, *_: Any, **__: Any) -> None:
            pass

        def execute(self, plan: Any, **_: Any) -> Any:
            started.append(plan.target)
            run = Run("run-1", plan, RunStatus.COMPLETED, "watcher", 0.0, 0.0)
            return type("Result", (), {"run": run})()

    monkeypatch.setattr(Watcher, "read", read)
    monkeypatch.setattr(Watcher, "_reconcile", lambda self, decision, returning: decision)
    calm = Glance(Desired(primary, 0), None, {"paused": False}, None)
    monkeypatch.setattr(Journal, "glance", lambda self, default: calm)
    monkeypatch.setattr(lambda_watcher, "Executor", Executor)
    memory = Memory()
    monkeypatch.setattr(lambda_watcher, "WatchStates", memory)

    def invocation(seconds: float) -> list[str]:
        context = Context(seconds)

        def sleep(s: float) -> None:
            context.left -= s

        lines: list[str] = []
        lambda_watcher.watch(
            standby, context, deployment=deployment, sleep=sleep, emit=lines.append
        )
        memory.state = memory.written[-1]  # what the next invocation reads back
        return [json.loads(line)["action"] for line in lines if '"message"' in line]

    assert invocation(25.0) == ["watch", "watch"]  # 1/3, 2/3
    assert started == []
    assert invocation(15.0) == ["failover"]  # 3/3, carried over
    assert started == [standby]
    assert memory.state.consecutive_bad == 0 and memory.state.evaluations == 3


def test_every_evaluation_is_one_json_line_and_one_embedded_metric(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, lines = run(deployment, Memory(), 15.0, monkeypatch)
    log, metric = (json.loads(line) for line in lines)
    assert log["watcher_region"] == "us-west-2" and log["action"] == "watch"
    assert log["consecutive_bad"] == 1
    spec = metric["_aws"]["CloudWatchMetrics"][0]
    assert spec["Namespace"] == contract.WATCHER_NAMESPACE
    # one custom metric per region ($0.30 a month each): the one the dead-man alarm watches
    assert spec["Dimensions"] == [["App", "Region"]]
    assert [m["Name"] for m in spec["Metrics"]] == [contract.WATCHER_METRIC]
    assert metric["Acted"] == 0 and metric["ConsecutiveBad"] == 1  # fields, for Logs Insights
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
