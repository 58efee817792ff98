"""The watcher: hysteresis, flapping, pause, cooldown, and two watchers producing one run."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from controller import clock
from controller.actions.registry import action_for
from controller.controltable.journal import Journal, RunStatus, new_run_id
from controller.controltable.table import LEASE_PK, LEASE_SK, ControlTable
from controller.controltable.watchstate import WatchStates
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from controller.topology import Topology
from controller.watchers.decisions import Evaluation, answering
from controller.watchers.watcher import DEEP_EVERY, Watcher
from sandbox import Sandbox
from tests.kit.emulator import mapping_enabled
from tests.kit.polling import until

PRIMARY, STANDBY = "us-east-1", "us-west-2"
HEALTHY = {"us-east-1": "healthy", "us-west-2": "healthy", "eu-west-1": "healthy"}


def evaluations(pattern: str, active: str = PRIMARY, *, now: bool = False) -> Iterator[Evaluation]:
    """Synthetic evaluations: ``b`` = the active region bad (its control plane and HTTP probe
    fail), ``g`` = good. Times are one second apart (``now``: the time each is taken, for a
    watcher that acts after the journal's runs)."""
    for i, mark in enumerate(pattern):
        bad = mark == "b"
        health = {**HEALTHY, active: "unreachable" if bad else "healthy"}
        votes = {r: {"control_plane": False, "alarms": False, "http": False} for r in HEALTHY}
        votes[active] = {"control_plane": bad, "http": bad} if bad else votes[active]
        yield Evaluation(time.time() if now else 1_000.0 + i, active, health, votes, quorum=2)


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
    # The run says when it was decided, whatever becomes of the watcher's log line.
    (run,) = runs(box)
    assert run.decided == failover.time <= run.created
    assert run.to_dict()["decided"] == failover.time


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
    from controller.engine.executor import Executor
    from controller.plan import graph as graphs
    from controller.plan.build import build_plan
    from tests.kit.emulator import mapping_enabled

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
    # converged: nothing more to do (the operator's run just now started the cooldown)
    assert Watcher(box.topology, box.manifest, box.clients).step().action == "cooldown"


def with_policy(topology: Topology, **policy: Any) -> Topology:
    """``topology`` with some of its policy changed (the sandbox's resources are the same)."""
    return topology.model_copy(update={"policy": topology.policy.model_copy(update=policy)})


def caught_up(box: Sandbox, source: str) -> None:
    """Replicate a fresh write from ``source`` with the replicator (no lag), until CloudWatch
    holds the ``ReplicationLatency`` it measured, as a global table's would."""
    from controller.actions.table import read_replication_lag
    from sandbox.replicator import Replicator

    replicator = Replicator(box.topology, box.manifest, box.clients, lag=0.0)
    replicator.start()
    try:
        box.clients.client("dynamodb", source).put_item(
            TableName=box.manifest.ref("orders-table", source).name,
            Item={"order_id": {"S": uuid.uuid4().hex}, "body": {"S": "{}"}},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lag = read_replication_lag(box.clients, box.manifest, "orders-table", source, PRIMARY)[
                0
            ]
            if lag is not None:
                return
            replicator.sync(source)
            time.sleep(0.5)
        raise AssertionError(f"no ReplicationLatency from {source} after 60 s")
    finally:
        replicator.stop()


def test_two_watchers_share_one_cooldown_the_old_primarys_watcher_does_not_fail_back_at_once(
    fresh_sandbox: Sandbox,
) -> None:
    """Issue 26, item 12: auto_failback with a 20 s cooldown; one watcher fails over, the old
    primary's own watcher (which never acted) must not fail back within the cooldown."""
    box = fresh_sandbox
    topology = with_policy(box.topology, auto_failback=True, cooldown_seconds=20)
    threshold = topology.policy.failure_threshold
    outside = Watcher(topology, box.manifest, box.clients)
    feed = evaluations("b" * threshold)
    outside.evaluate = lambda: next(feed)
    assert [outside.step().action for _ in range(threshold)][-1] == "failover"
    [run] = runs(box)
    assert run.status is RunStatus.COMPLETED and run.plan.target == STANDBY
    # The old primary's watcher: healthy again, it sees the primary good at every evaluation.
    own = Watcher(topology, box.manifest, box.clients)
    back = evaluations("g" * 20, active=STANDBY, now=True)
    own.evaluate = lambda: next(back)
    decisions = [own.step() for _ in range(2 * threshold)]
    assert {d.action for d in decisions} == {"cooldown"}, [d.to_dict() for d in decisions]
    assert f"run {run.id}" in decisions[0].reason
    assert len(runs(box)) == 1
    # 21 s later by its clock the cooldown is over: the failback waits only for the data now
    # (no replication lag is measured in this sandbox) or, if one was, goes.
    own.clock = lambda: time.time() + 21
    after = [own.step().action for _ in range(threshold)]
    assert "cooldown" not in after and after[-1] in ("waiting", "failback"), after


def test_automated_failback_waits_for_a_lag_it_can_read_then_goes(fresh_sandbox: Sandbox) -> None:
    """Issue 26, item 11: automation never fails back on an unknown replication lag; once the
    returning region is known to have caught up, it does."""
    box = fresh_sandbox
    topology = with_policy(box.topology, auto_failback=True, cooldown_seconds=0)
    threshold = topology.policy.failure_threshold
    from controller.engine.executor import Executor
    from controller.plan import graph as graphs
    from controller.plan.build import build_plan

    plan = build_plan(topology, graphs.build(topology), target=STANDBY)
    Executor(topology, box.manifest, box.clients, accept_unknown_lag=True).execute(plan)
    w = Watcher(topology, box.manifest, box.clients)
    feed = evaluations("g" * 20, active=STANDBY, now=True)
    w.evaluate = lambda: next(feed)
    waited = [w.step() for _ in range(threshold + 1)]
    assert [d.action for d in waited[-2:]] == ["waiting", "waiting"], [d.to_dict() for d in waited]
    assert "lag unknown" in waited[-1].reason and "orders-table" in waited[-1].reason
    assert len(runs(box)) == 1  # no failback run was even started
    caught_up(box, STANDBY)
    decision = w.step()
    assert decision.action == "failback" and decision.status == "completed", decision.to_dict()
    assert Journal(box.clients, box.manifest).desired(PRIMARY).active == PRIMARY


def alarm_as_fenced(box: Sandbox, region: str, function: str) -> list[str]:
    """Put ``function``'s alarms as the program deploys them in the states AWS computes once it
    is fenced: throttled (Route 53's checkers call its health route every 10 s) and no
    invocations (missing data breaching in the deploy-time primary); their names. Set here, on
    the deployed alarms, with the evaluator off (its own tests are in test_lambda.py): this
    test's subject is the controller's reading of those states, not how CloudWatch gets there."""
    from controller.contract import FunctionAlarm

    ref = box.manifest.ref(function, region)
    kinds = {FunctionAlarm.of(a): a for a in ref.alarms}
    fenced = [kinds[FunctionAlarm.THROTTLES_HIGH], kinds[FunctionAlarm.INVOCATIONS_LOW]]
    cloudwatch = box.clients.client("cloudwatch", region)
    for alarm in fenced:
        cloudwatch.set_alarm_state(
            AlarmName=alarm, StateValue="ALARM", StateReason="fenced: what AWS computes"
        )
    return fenced


def test_a_fenced_primary_throttled_by_its_health_checks_is_still_failed_back_to(
    fresh_sandbox: Sandbox,
) -> None:
    """Issue 26, item 1: fenced, the primary's api-handler is throttled by Route 53's checkers
    and gets no invocations; its alarms say so. That is what fencing does, not a fault: the
    failback precheck and the watcher still accept the region, and it is failed back to."""
    from controller.engine.executor import Executor
    from controller.health import region_health
    from controller.plan import graph as graphs
    from controller.plan.build import build_plan

    box = fresh_sandbox
    topology = with_policy(box.topology, auto_failback=True, cooldown_seconds=0)
    graph = graphs.build(topology)
    plan = build_plan(topology, graph, target=STANDBY)
    Executor(topology, box.manifest, box.clients, accept_unknown_lag=True).execute(plan)
    manifest = box.manifest  # its alarms are the program's: the throttles alarm among them
    assert len(alarm_as_fenced(box, PRIMARY, "api-handler")) == 2
    seen = region_health(topology, manifest, box.clients, PRIMARY)
    assert seen.mode == "fenced" and seen.health.value == "healthy", seen
    assert len(seen.signals.alarms_expected) == 2 and seen.signals.alarms_firing == ()
    back = build_plan(topology, graph, source=STANDBY, target=PRIMARY)
    checks = {c.name: c for c in Executor(topology, manifest, box.clients).prechecks(back)}
    assert checks["target_healthy"].ok, checks["target_healthy"].detail
    caught_up(box, STANDBY)
    w = Watcher(topology, manifest, box.clients)  # real reads of every region
    decisions = [w.step() for _ in range(topology.policy.failure_threshold)]
    assert decisions[-1].action == "failback", [d.to_dict() for d in decisions]
    assert decisions[-1].status == "completed"
    assert Journal(box.clients, box.manifest).desired(PRIMARY).active == PRIMARY


def test_a_run_whose_controller_died_before_it_moved_the_desired_state_is_ended_and_decided_again(
    fresh_sandbox: Sandbox,
) -> None:
    """A controller that journalled a run and died before writing the desired state (a Lambda
    timeout, a crash) leaves a run in progress that no step touched, and every later failover
    is refused on ``no_run_in_progress``. A watcher already past its threshold decides to fail
    over at every evaluation: its refused evaluation ends with the reconciler, which ends that
    run once its lease has expired, and the watcher decides again."""
    box = fresh_sandbox
    w = Watcher(box.topology, box.manifest, box.clients)
    feed = evaluations("bbbbbb", now=True)
    w.evaluate = lambda: next(feed)
    threshold = box.topology.policy.failure_threshold
    assert [w.step().action for _ in range(threshold - 1)] == ["watch"] * (threshold - 1)
    journal = Journal(box.clients, box.manifest)
    desired = journal.desired(PRIMARY)
    lease = journal.acquire("watcher@eu-west-1/an-invocation-since-killed", 1.0)
    plan = build_plan(box.topology, graphs.build(box.topology), source=PRIMARY, target=STANDBY)
    orphan = journal.create_run(lease, new_run_id(), plan, epoch=desired.epoch + 1)
    until(lambda: lease.expires_at < clock.now(), 30, "the dead controller's lease expires")
    decisions = [w.step() for _ in range(3)]
    actions = [d.action for d in decisions]
    assert "failover" in actions, [(d.action, d.reason[:120]) for d in decisions]
    done = decisions[actions.index("failover")]
    assert done.target == STANDBY and done.status == "completed"
    ended = journal.run(orphan.id)
    assert ended.status is RunStatus.FAILED and "stopped before" in ended.error


def test_drift_in_the_active_region_is_undone_by_invocations_of_one_evaluation_each(
    fresh_sandbox: Sandbox,
) -> None:
    """A deployed watcher lives one invocation, often of one evaluation (a chain's link, a calm
    region's minute): its full read every DEEP_EVERY evaluations counts its item's evaluations,
    or it never comes and drift that leaves the modes alone stays."""
    box = fresh_sandbox
    states = WatchStates(ControlTable(box.clients, box.manifest))

    def invocation(evaluations: int) -> Any:
        watcher = Watcher(box.topology, box.manifest, box.clients)
        watcher.restore(states.read(STANDBY))
        decision = watcher.step()
        states.write(watcher.remember(STANDBY, decision, evaluations=evaluations))
        return decision

    first = DEEP_EVERY - 4  # as if the item had counted that many evaluations
    invocation(first)  # a watcher's first evaluation reads every component
    stale = action_for(box.topology, box.manifest, box.clients, "worker", PRIMARY)
    stale.deactivate()  # a controller that lost its lease; the region's mode still says active
    decisions = []
    for evaluations in range(first + 1, first + 1 + DEEP_EVERY):
        decisions.append(invocation(evaluations))
        if mapping_enabled(box, PRIMARY)["worker"]:
            break
    seen = [(d.action, sorted(answering(d.health))) for d in decisions]
    assert mapping_enabled(box, PRIMARY)["worker"] is True, seen
    assert decisions[-1].action == "reconcile", seen
    if all(len(regions) == len(box.topology.regions.all) for _, regions in seen):
        # nothing owed (on a loaded machine a read may time out, and the region is owed one):
        # the full read came at the item's DEEP_EVERY-th evaluation, not before
        assert len(decisions) == 4, seen


def test_a_calm_evaluation_reads_the_control_table_in_one_request(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The desired state and the lease (one item), the automation switch and the run in
    progress: an evaluation that reads the modes only reads them in one request, not once for
    its decision, again for the switch and twice more for the reconciler's first look (each
    read a strongly consistent read of a multi-Region table, waited for)."""
    box = fresh_sandbox
    watcher = Watcher(box.topology, box.manifest, box.clients)
    decision = watcher.step()  # the first evaluation reads every component
    sent: list[tuple[str, Any]] = []
    call = ControlTable.call

    def counted(table: ControlTable, op: str, **kwargs: Any) -> Any:
        sent.append((op, kwargs.get("RequestItems") or kwargs.get("Key")))
        return call(table, op, **kwargs)

    monkeypatch.setattr(ControlTable, "call", counted)
    calm = None
    for _ in range(5):  # on a loaded machine a read may time out: its region is then owed one
        owed = watcher.remember(STANDBY, decision).unsettled
        sent.clear()
        decision = watcher.step()
        if (
            not owed
            and decision.action == "none"
            and set(answering(decision.health)) == set(decision.health)
        ):
            calm = decision
            break
    assert calm is not None, decision
    assert [op for op, _ in sent] == ["batch_get_item"], sent
    (request,) = sent[0][1].values()
    read = {(k["pk"]["S"], k["sk"]["S"]) for k in request["Keys"]}
    assert read == {(LEASE_PK, LEASE_SK), ("automation", "automation"), ("current", "run")}
    assert request["ConsistentRead"] is True
