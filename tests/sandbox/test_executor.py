"""Ordered failover against the emulator: hung primary, no two writers, degraded, faults, leases."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from controller import health
from controller.actions import mode as modes
from controller.aws import AwsSettings, Clients
from controller.controltable.journal import Journal, RunStatus, StepState
from controller.engine.executor import Executor, StepEvent
from controller.errors import LeaseHeldError, PlanError, StaleTokenError
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from sandbox import Sandbox
from tests.kit.emulator import (
    SLACK,
    fault,
    mapping_enabled,
    plain,
    primary_record,
    region_host,
    rules_enabled,
)

SOURCE, TARGET, OTHER = "us-east-1", "us-west-2", "eu-west-1"


def plan_to(box: Sandbox, target: str = TARGET, source: str = SOURCE):
    t = box.topology
    return build_plan(t, graphs.build(t), target=target, source=source)


def executor(box: Sandbox, **kwargs: Any) -> Executor:
    kwargs.setdefault("accept_unknown_lag", True)  # no replicator runs: no lag is measured
    return Executor(box.topology, box.manifest, kwargs.pop("clients", box.clients), **kwargs)


def test_failover_with_the_primary_hung_completes(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    box.fail(SOURCE, "hang")
    result = executor(box).execute(plan_to(box))
    run = result.run
    assert run.status == RunStatus.COMPLETED
    fences = {s.id: run.steps[s.id].state for s in run.plan.steps if s.phase == "fence"}
    assert fences["fence:dns@us-east-1"] == StepState.DONE  # Route 53 is global: still fenced
    assert all(st in (StepState.DONE, StepState.UNVERIFIED) for st in fences.values())
    assert StepState.UNVERIFIED in fences.values()
    assert all(
        run.steps[s.id].state == StepState.DONE for s in run.plan.steps if s.phase == "activate"
    )
    # Read back with plain boto3: mappings and schedules on in the target only.
    assert all(mapping_enabled(box, TARGET).values())
    assert not any(mapping_enabled(box, OTHER).values())
    assert all(rules_enabled(box, TARGET).values())
    assert not any(rules_enabled(box, OTHER).values())
    assert primary_record(box).rstrip(".") == region_host(box, TARGET)
    ssm = plain(box, "ssm", TARGET)
    assert (
        ssm.get_parameter(Name=box.topology.mode_parameter(TARGET))["Parameter"]["Value"]
        == "active"
    )
    report = health.status(box.topology, box.manifest, box.clients, deadline=SLACK)
    assert report.active_region == TARGET
    assert report.regions[SOURCE].health == health.Health.UNREACHABLE
    assert {c.state for c in report.regions[TARGET].components.values()} == {"active"}


class SourceCalls:
    """A ``before-send`` hook counting the requests sent to the source's endpoint once it hangs
    (each of them then gets no answer: it costs the run one timeout, whatever the machine's load).

    ``hang_at``: the source is made to hang just before its n-th request (1: it hangs before the
    run asks it anything; None: the test hangs it itself, and every request counts).
    """

    def __init__(self, box: Sandbox, hang_at: int | None = None) -> None:
        self.box, self.hang_at = box, hang_at
        self.url = box.manifest.endpoints[SOURCE]
        self.sent = 0
        self.unanswered: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: Any, **kwargs: Any) -> None:
        if not request.url.startswith(self.url):
            return
        with self.lock:
            self.sent += 1
            if self.sent == self.hang_at:
                self.box.fail(SOURCE, "hang")
            if self.hang_at is None or self.sent >= self.hang_at:
                self.unanswered.append(str(kwargs.get("event_name", "")))


def _fence_records(run: Any) -> dict[str, Any]:
    return {s.id: run.steps[s.id] for s in run.plan.steps if s.phase == "fence"}


@pytest.fixture(params=["real clock", "scaled clock"])
def either_clock(request: pytest.FixtureRequest) -> Sandbox:
    """The session's sandbox (k = 1) or the scaled one (k = 4, this process on its clock, where a
    timeout is AWS seconds and 1/k of them on the wall): what a hung source costs the run is
    counted in requests it leaves unanswered, each one timeout, the same on either clock."""
    fixture = "fresh_sandbox" if request.param == "real clock" else "fresh_scaled_sandbox"
    box: Sandbox = request.getfixturevalue(fixture)
    return box


def test_a_hung_source_costs_one_timeout_before_activation_not_one_per_level(
    either_clock: Sandbox,
) -> None:
    """The source hangs before the run: the prechecks' replication-lag read is the one request
    it gets; no fence level sends it another (each would cost a timeout before activation), the
    DNS is fenced in the global endpoint all the same, and the run records why the rest is not.

    Counted requests, not durations: on a loaded machine a timeout is still one request."""
    box = either_clock
    box.fail(SOURCE, "hang")
    calls = SourceCalls(box)
    clients = box.clients.derive(hook=("before-send", calls))
    journal = Journal(box.clients, box.manifest)  # the control table's own calls: not counted
    run = executor(box, clients=clients, journal=journal).execute(plan_to(box)).run
    assert run.status == RunStatus.COMPLETED
    assert len(calls.unanswered) == 1, calls.unanswered  # 3 before: lag read, DNS mode, api
    assert "GetMetricStatistics" in calls.unanswered[0]
    fences = _fence_records(run)
    assert fences.pop("fence:dns@us-east-1").state == StepState.DONE  # Route 53 is global
    for record in fences.values():
        assert record.state == StepState.UNVERIFIED and record.attempts == 0, record
        assert "replication_lag read got no answer" in record.error
        assert "fenced when it answers" in record.error
    assert all(
        run.steps[s.id].state == StepState.DONE for s in run.plan.steps if s.phase == "activate"
    )
    assert primary_record(box).rstrip(".") == region_host(box, TARGET)
    (lag,) = journal.run(run.id).rpo  # what the switch could lose: not known, and why
    assert lag.table == "orders-table" and lag.lag_seconds is None
    assert f"{SOURCE} unreachable" in lag.error


def test_the_lag_read_of_a_hung_source_runs_while_the_lease_is_taken_not_after(
    fresh_sandbox: Sandbox,
) -> None:
    """Issue 27, item 4: the replication-lag precheck needs no lease, so an execute sends it
    before it takes the lease; a hung source's timeout then runs beside the lease's calls, not
    after them (an operator's execute with the primary hung spent 2 s on it after the lease).

    Ordered, not timed: the lease's write is held until the lag read has been sent; read after
    the lease, it would not have been, and the write goes on once the hold runs out."""
    box = fresh_sandbox
    box.fail(SOURCE, "hang")
    lag_read_sent = threading.Event()
    waited_for: list[bool] = []

    def lag_read(request: Any, **kwargs: Any) -> None:
        if request.url.startswith(box.manifest.endpoints[SOURCE]):
            lag_read_sent.set()

    def lease_write(**kwargs: Any) -> None:
        if not waited_for:  # the lease's first write: the acquire
            waited_for.append(lag_read_sent.wait(SLACK))

    clients = box.clients.derive(hook=("before-send.cloudwatch", lag_read))
    journal_clients = box.clients.derive(hook=("before-call.dynamodb.PutItem", lease_write))
    journal_clients = journal_clients.derive(hook=("before-call.dynamodb.UpdateItem", lease_write))
    journal = Journal(journal_clients, box.manifest)
    run = executor(box, clients=clients, journal=journal).execute(plan_to(box)).run
    assert run.status == RunStatus.COMPLETED
    assert waited_for == [True], "the lag read was not sent before the lease was written"
    (lag,) = journal.run(run.id).rpo  # the read taken ahead is the run's record
    assert lag.lag_seconds is None and f"{SOURCE} unreachable" in lag.error


def test_a_wrongly_guessed_source_has_its_lags_read_again_from_the_active_region(
    fresh_sandbox: Sandbox,
) -> None:
    """A run not told its source (``--from``) guesses it, reads its lags ahead, and learns the
    active region under the lease: when the guess was wrong, the lags read ahead are another
    region's and are read again (else a hung former primary would be the run's RPO record and
    its silent region)."""
    box = fresh_sandbox
    assert executor(box).execute(plan_to(box, TARGET)).run.status == RunStatus.COMPLETED
    box.fail(SOURCE, "hang")  # the guess below: the former primary, now hung
    result = executor(box).execute(plan_to(box, OTHER, source=SOURCE), source_given=False)
    run = result.run
    assert run.status == RunStatus.COMPLETED and run.plan.source == TARGET
    (lag,) = Journal(box.clients, box.manifest).run(run.id).rpo
    assert "unreachable" not in lag.error, lag  # read from the active region, which answers


def test_a_source_that_hangs_after_the_prechecks_costs_the_fence_levels_one_timeout(
    either_clock: Sandbox,
) -> None:
    """The source answers the prechecks, then hangs as the DNS fence asks it for its mode: that
    request is the one it leaves unanswered; the next levels send it none (before: one timeout
    per level) and end unverified, naming that request."""
    box = either_clock
    calls = SourceCalls(box, hang_at=2)  # 1: the lag read; 2: the DNS fence's mode parameter
    clients = box.clients.derive(hook=("before-send", calls))
    journal = Journal(box.clients, box.manifest)
    run = executor(box, clients=clients, journal=journal).execute(plan_to(box)).run
    assert run.status == RunStatus.COMPLETED
    assert len(calls.unanswered) == 1, calls.unanswered
    assert "ssm" in calls.unanswered[0].lower()
    fences = _fence_records(run)
    assert fences.pop("fence:dns@us-east-1").state == StepState.DONE
    for record in fences.values():
        assert record.state == StepState.UNVERIFIED and record.attempts == 0, record
        assert "fence:dns@us-east-1: its mode parameter got no answer" in record.error
    assert all(
        run.steps[s.id].state == StepState.DONE for s in run.plan.steps if s.phase == "activate"
    )


def test_a_hung_sources_fence_levels_end_in_one_journal_write_not_one_per_level(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27, item 4: once the source is silent, its remaining fence steps (four levels here)
    end ``unverified`` in one journal write (the run's next: the target's first level's start),
    none of them journalled ``running`` first. Level by
    level they cost a lease check and two writes each, one level after another, before the
    target's first activation: seconds of AWS time on the scaled clock for steps that send the
    source nothing."""
    box = fresh_sandbox
    box.fail(SOURCE, "hang")
    writes: list[list[tuple[str, StepState]]] = []
    original = Journal.record_steps

    def counted(self: Journal, lease: Any, run_id: str, records: Any) -> None:
        writes.append([(r.id, r.state) for r in records])
        original(self, lease, run_id, records)

    monkeypatch.setattr(Journal, "record_steps", counted)
    run = executor(box).execute(plan_to(box)).run
    assert run.status == RunStatus.COMPLETED
    silent = {s.id for s in run.plan.steps if s.phase == "fence" and s.id != "fence:dns@us-east-1"}
    assert len({s.level for s in run.plan.steps if s.id in silent}) > 1  # several levels
    touching = [w for w in writes if silent & {i for i, _ in w}]
    assert len(touching) == 1, touching  # before: a running write and an end write per step
    assert {i: st for i, st in touching[0] if i in silent} == dict.fromkeys(
        silent, StepState.UNVERIFIED
    )


@pytest.mark.parametrize(("lease_seconds", "renewals"), [(3600.0, "none"), (20.0, "every level")])
def test_a_run_renews_its_lease_before_a_level_only_when_the_level_could_outlast_it(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, lease_seconds: float, renewals: str
) -> None:
    """Issue 27, item 4: one control-table write a level saved. A lease held for longer than a
    level can take (its steps' timeout plus one action's budget) is not renewed before the
    level; one that may run out during it still is, before the level acts."""
    from controller.controltable.lease import Leases

    box = fresh_sandbox
    topology = box.topology.model_copy(
        update={"policy": box.topology.policy.model_copy(update={"lease_seconds": lease_seconds})}
    )
    renewed: list[float] = []
    original = Leases.renew

    def counted(self: Leases, lease: Any, seconds: float) -> Any:
        renewed.append(seconds)
        return original(self, lease, seconds)

    monkeypatch.setattr(Leases, "renew", counted)
    plan = build_plan(topology, graphs.build(topology), target=TARGET, source=SOURCE)
    run = Executor(topology, box.manifest, box.clients, accept_unknown_lag=True).execute(plan).run
    assert run.status == RunStatus.COMPLETED
    if renewals == "none":
        assert renewed == []  # 10 before: one a level
    else:
        assert len(renewed) >= len(plan.levels)


def test_no_two_writers_at_any_instant(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    lock = threading.Lock()
    seen: list[dict[str, list[str]]] = []

    def writers() -> dict[str, list[str]]:
        """Per event-sourced function: the regions where it consumes (mapping on, not fenced)."""
        out: dict[str, list[str]] = {}
        for region in box.topology.regions.all:
            lam = plain(box, "lambda", region)
            for name, on in mapping_enabled(box, region).items():
                ref = box.manifest.ref(name, region)
                conc = lam.get_function_concurrency(FunctionName=ref.name).get(
                    "ReservedConcurrentExecutions"
                )
                if on and conc != 0:
                    out.setdefault(name, []).append(region)
        return out

    def observe(event: StepEvent) -> None:
        if event.state == StepState.RUNNING:
            return
        with lock:
            seen.append(writers())

    seen.append(writers())
    executor(box, progress=observe).execute(plan_to(box))
    assert len(seen) == len(plan_to(box).steps) + 1
    for snapshot in seen:
        for name, regions in snapshot.items():
            assert len(regions) <= 1, (name, regions)
    assert seen[0] == {"worker": [SOURCE], "projector": [SOURCE]}
    assert seen[-1] == {"worker": [TARGET], "projector": [TARGET]}


def test_unactivatable_dependency_degrades_its_dependents(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    table = box.manifest.ref("orders-table", TARGET).name
    plain(box, "dynamodb", TARGET).delete_table(TableName=table)
    run = executor(box).execute(plan_to(box)).run
    assert run.status == RunStatus.COMPLETED_DEGRADED
    assert run.steps["activate:orders-table@us-west-2"].state == StepState.FAILED
    assert "orders-table/us-west-2" in run.steps["activate:orders-table@us-west-2"].error
    expected = {
        "api-handler": "read_only",
        "worker": "queue_writes",
        "projector": "queue_writes",
        "nightly-report": "unavailable",
        "api": "read_only",
        "dns": "read_only",
    }
    assert run.degraded == expected
    ssm = plain(box, "ssm", TARGET)
    for name, mode in expected.items():
        param = box.topology.component_mode_parameter(name, TARGET)
        assert ssm.get_parameter(Name=param)["Parameter"]["Value"] == mode
    report = health.status(box.topology, box.manifest, box.clients, deadline=SLACK)
    states = {n: c.state for n, c in report.regions[TARGET].components.items()}
    assert states["api-handler"] == "degraded"
    assert states["worker"] == "degraded"
    assert states["config"] == "active"


def test_injected_throttling_and_500s_do_not_stop_the_run(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    rng = random.Random(3)
    hits = [0]

    def flaky(request: Any, **kwargs: Any) -> Any:
        if (
            "dynamodb" in request.url.split("/")[2]
            and "X-Amz-Target" in request.headers
            and b"TransactWriteItems" in request.headers["X-Amz-Target"].encode()
        ):
            return None  # journal writes stay clean: this test is about the actions
        if rng.random() < 0.1:
            hits[0] += 1
            return (throttle if rng.random() < 0.5 else server_error)(request, **kwargs)
        return None

    throttle, _ = fault(400, "ThrottlingException")
    server_error, _ = fault(500, "ServiceException")
    clients = Clients(
        endpoints=box.manifest.endpoints,
        settings=AwsSettings(connect_timeout=1, read_timeout=3, max_attempts=3),
        hooks=[("before-send", flaky)],
    )
    run = (
        executor(box, clients=clients, journal=Journal(box.clients, box.manifest))
        .execute(plan_to(box))
        .run
    )
    assert hits[0] > 10
    failed = {k: r.error for k, r in run.steps.items() if r.state != StepState.DONE}
    assert run.status == RunStatus.COMPLETED, failed
    assert all(mapping_enabled(box, TARGET).values())


def test_a_step_throttled_past_its_timeout_gives_up_before_its_retries_run_out(
    fresh_sandbox: Sandbox,
) -> None:
    """policy.step_timeout_seconds bounds a step: with every SQS call throttled, the queue's
    activation stops retrying once its time is up (ten retries would take 17 s or more), and
    what needs the queue runs degraded."""
    box = fresh_sandbox
    policy = box.topology.policy.model_copy(
        update={"step_timeout_seconds": 1.0, "step_retries": 10}
    )
    topology = box.topology.model_copy(update={"policy": policy})
    throttle, calls = fault(400, "ThrottlingException")

    def sqs_throttled(request: Any, **kwargs: Any) -> Any:
        if str(kwargs.get("event_name", "")).split(".")[1:2] == ["sqs"]:
            return throttle(request, **kwargs)
        return None

    clients = Clients(
        endpoints=box.manifest.endpoints,
        settings=AwsSettings(max_attempts=1),  # botocore's own retries would hide the loop's
        hooks=[("before-send", sqs_throttled)],
    )
    plan = build_plan(topology, graphs.build(topology), target=TARGET, source=SOURCE)
    run = Executor(topology, box.manifest, clients, accept_unknown_lag=True).execute(plan).run
    queue = run.steps["activate:orders-queue@us-west-2"]
    assert queue.state == StepState.FAILED, queue
    assert 1 <= queue.attempts < 11 and "step_timeout_seconds" in queue.error, queue
    assert calls[1] > 0
    assert run.status == RunStatus.COMPLETED_DEGRADED and run.degraded.get("worker")


def test_a_second_controller_is_refused_while_the_first_holds_the_lease(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    journal = Journal(box.clients, box.manifest)
    held = journal.acquire("someone@elsewhere:1", 60)
    try:
        with pytest.raises(LeaseHeldError, match="someone@elsewhere:1"):
            executor(box).execute(plan_to(box))
        assert mapping_enabled(box, SOURCE) == {"worker": True, "projector": True}
    finally:
        journal.release(held)


def test_a_controller_that_lost_its_lease_stops_writing(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    usurper = Journal(box.clients, box.manifest, clock=lambda: 4e9)  # sees every lease expired
    taken: list[int] = []

    def take_over(event: StepEvent) -> None:
        if event.state == StepState.DONE and not taken:
            taken.append(usurper.acquire("usurper@elsewhere:2", 60).token)

    with pytest.raises(StaleTokenError):
        executor(box, progress=take_over).execute(plan_to(box))
    run_id = usurper.current_run_id()
    assert run_id is not None
    run = usurper.run(run_id)
    done = [r for r in run.steps.values() if r.state == StepState.DONE]
    assert len(done) == 1  # nothing the old controller did after losing the lease was written
    assert not any(mapping_enabled(box, TARGET).values())


def test_prechecks_refuse_an_unreachable_target_and_touch_nothing(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    box.fail(TARGET, "down")
    with pytest.raises(PlanError, match="target_reachable"):
        executor(box).execute(plan_to(box))
    assert mapping_enabled(box, SOURCE) == {"worker": True, "projector": True}
    assert modes.read_region_mode(box.clients, box.topology, box.manifest, SOURCE) == "active"
    assert Journal(box.clients, box.manifest).current_run_id() is None


def test_failback_returns_to_the_primary(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    assert executor(box).execute(plan_to(box)).run.status == RunStatus.COMPLETED
    back = executor(box).execute(plan_to(box, target=SOURCE, source=TARGET), kind="failback")
    assert back.run.status == RunStatus.COMPLETED
    assert mapping_enabled(box, SOURCE) == {"worker": True, "projector": True}
    assert not any(mapping_enabled(box, TARGET).values())
    assert primary_record(box).rstrip(".") == region_host(box, SOURCE)
    assert [r.kind for r in Journal(box.clients, box.manifest).runs()] == ["failback", "failover"]
