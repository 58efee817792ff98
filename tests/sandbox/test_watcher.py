"""The watcher: hysteresis, flapping, pause, cooldown, and two watchers producing one run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

from controller.journal import Journal, RunStatus
from controller.watcher import Evaluation, Watcher
from sandbox import Sandbox

PRIMARY, STANDBY = "us-east-1", "us-west-2"
HEALTHY = {"us-east-1": "healthy", "us-west-2": "healthy", "eu-west-1": "healthy"}


def evaluations(pattern: str, active: str = PRIMARY) -> Iterator[Evaluation]:
    """Synthetic evaluations: ``b`` = the active region bad (its control plane and HTTP probe
    fail), ``g`` = good. Times are one second apart."""
    for i, mark in enumerate(pattern):
        bad = mark == "b"
        health = {**HEALTHY, active: "unreachable" if bad else "healthy"}
        votes = {r: {"control_plane": False, "alarms": False, "http": False} for r in HEALTHY}
        votes[active] = {"control_plane": bad, "http": bad} if bad else votes[active]
        yield Evaluation(1_000.0 + i, active, health, votes, quorum=2)


def watcher(box: Sandbox, pattern: str) -> Watcher:
    feed = evaluations(pattern)
    return Watcher(box.topology, box.manifest, box.clients, evaluate=lambda: next(feed))


def runs(box: Sandbox) -> list:
    return Journal(box.clients, box.manifest).runs()


def test_a_single_bad_evaluation_triggers_nothing(fresh_sandbox: Sandbox) -> None:
    w = watcher(fresh_sandbox, "gbggggg")
    actions = [w.step().action for _ in range(7)]
    assert actions == ["none", "watch", "none", "none", "none", "none", "none"]
    assert runs(fresh_sandbox) == []


def test_a_flapping_region_triggers_nothing(fresh_sandbox: Sandbox) -> None:
    w = watcher(fresh_sandbox, "bbgbbgbbgbbgbbg")
    actions = [w.step().action for _ in range(15)]
    assert "failover" not in actions
    assert w.threshold() > fresh_sandbox.topology.policy.failure_threshold  # damped
    assert runs(fresh_sandbox) == []


def test_a_sustained_outage_triggers_exactly_one_failover(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    box.fail(PRIMARY, "hang")
    w = Watcher(box.topology, box.manifest, box.clients)  # real health reads
    decisions = list(w.run(0.0, iterations=6))
    actions = [d.action for d in decisions]
    assert actions[:3] == ["watch", "watch", "failover"], [d.to_dict() for d in decisions]
    assert actions[3:] == ["cooldown"] * 3
    failover = decisions[2]
    assert failover.target == STANDBY and failover.status == "completed"
    json.dumps(failover.to_dict())  # one JSON line per decision
    assert failover.to_dict()["region_health"][PRIMARY] == "unreachable"
    assert [r.status for r in runs(box)] == [RunStatus.COMPLETED]


def test_paused_automation_triggers_nothing(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    Journal(box.clients, box.manifest).set_automation(True, "oncall", "game day")
    w = watcher(box, "bbbbbb")
    decisions = [w.step() for _ in range(6)]
    assert {d.action for d in decisions} == {"paused"}
    assert "oncall: game day" in decisions[0].reason
    assert runs(box) == []


def test_two_watchers_produce_one_run(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    box.fail(PRIMARY, "down")
    barrier = threading.Barrier(2)
    decided: list[str] = []

    def watch() -> None:
        w = Watcher(box.topology, box.manifest, box.clients)
        for _ in range(box.topology.policy.failure_threshold - 1):
            assert w.step().action == "watch"
        barrier.wait()
        d = w.step()  # both decide at the same moment
        decided.append(d.action)

    threads = [threading.Thread(target=watch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(decided) in (["failover", "lease_held"], ["failover", "refused"]), decided
    assert len(runs(box)) == 1


def test_no_failback_unless_the_policy_says_so(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    w = watcher(box, "gggggg")
    feed = evaluations("gggggg", active=STANDBY)
    w.evaluate = lambda: next(feed)
    assert {w.step().action for _ in range(6)} == {"none"}
    assert runs(box) == []


def test_watch_once_cli_prints_one_json_decision(fresh_sandbox: Sandbox, cli) -> None:
    result = cli("watch", "--once", "--manifest", fresh_sandbox.manifest_path)
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert len(lines) == 1
    decision = json.loads(lines[0])
    assert decision["action"] == "none"
    assert decision["active_region"] == PRIMARY
    assert set(decision["region_health"]) == set(HEALTHY)


def test_automation_cli_round_trip(fresh_sandbox: Sandbox, cli) -> None:
    m = fresh_sandbox.manifest_path
    assert cli("automation", "pause", "--reason", "drill", "--manifest", m).code == 0
    shown = json.loads(cli("automation", "show", "--json", "--manifest", m).out)
    assert shown["paused"] is True and shown["reason"] == "drill"
    assert cli("automation", "resume", "--manifest", m).code == 0
    assert json.loads(cli("automation", "show", "--json", "--manifest", m).out)["paused"] is False


def test_a_region_back_from_an_outage_is_fenced_again(fresh_sandbox: Sandbox) -> None:
    from controller import graph as graphs
    from controller.executor import Executor
    from controller.plan import build_plan
    from tests.sandbox.helpers import mapping_enabled

    box = fresh_sandbox
    box.fail(PRIMARY, "hang")
    plan = build_plan(box.topology, graphs.build(box.topology), target=STANDBY)
    Executor(box.topology, box.manifest, box.clients, accept_unknown_lag=True).execute(plan)
    box.heal(PRIMARY)
    assert mapping_enabled(box, PRIMARY) == {"worker": True, "projector": True}  # stale
    decision = Watcher(box.topology, box.manifest, box.clients).step()
    assert decision.action == "reconcile" and decision.target == PRIMARY, decision
    assert decision.status == "completed"
    assert mapping_enabled(box, PRIMARY) == {"worker": False, "projector": False}
    assert mapping_enabled(box, STANDBY) == {"worker": True, "projector": True}
    assert Watcher(box.topology, box.manifest, box.clients).step().action == "none"
