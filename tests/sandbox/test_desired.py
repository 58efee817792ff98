"""One source of truth for the active region: the control table's desired state and its epoch.

The reproductions of issue 11's "Why": two executes to two targets started close together, a
``--from`` that the control table contradicts, and a controller that lost its lease while it was
stopped and then went on acting.
"""

from __future__ import annotations

import json
import os
import time
from functools import partial

import pytest

from controller import health
from controller.actions.registry import action_for
from controller.controltable.journal import Journal, RunStatus, StepState
from controller.engine.executor import Executor as _Executor
from controller.engine.executor import StepEvent
from controller.errors import ConflictError, NoMajorityError, StaleTokenError
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from sandbox import Sandbox
from tests.kit.emulator import controller, mapping_enabled, plain

#: Its controller processes are forked from the session's zygote.
pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("forked_controllers")]
#: The emulator publishes no replication-lag metric: these tests are not about the lag check.
Executor = partial(_Executor, accept_unknown_lag=True)

SOURCE, TARGET, OTHER = "us-east-1", "us-west-2", "eu-west-1"
#: Seconds between the two executes: the whole 0-5 s sweep in 0.25 s steps with
#: FAILOVER_FULL_SWEEP=1, else a sample of it (each pair costs two failovers).
DELAYS = (
    [i / 4 for i in range(21)]
    if os.environ.get("FAILOVER_FULL_SWEEP")
    else [0.0, 0.5, 1.5, 2.5, 4.0]
)


def plan_to(box: Sandbox, target: str, source: str = SOURCE):
    return build_plan(box.topology, graphs.build(box.topology), target=target, source=source)


def active_regions(box: Sandbox) -> list[str]:
    """The regions whose mode parameter says ``active``, read from the emulator."""
    report = health.status(
        box.topology, box.manifest, box.clients, components=False, settings=None, deadline=60
    )
    return sorted(name for name, region in report.regions.items() if region.mode == "active")


def desired(box: Sandbox):
    return Journal(box.clients, box.manifest).desired(box.topology.regions.primary)


def test_a_run_writes_its_target_as_the_desired_state_with_a_new_epoch(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    assert desired(box).active == SOURCE and desired(box).epoch == 0
    run = Executor(box.topology, box.manifest, box.clients).execute(plan_to(box, TARGET)).run
    now = desired(box)
    assert (now.active, now.epoch, now.run_id) == (TARGET, 1, run.id)
    assert run.epoch == 1
    back = (
        Executor(box.topology, box.manifest, box.clients)
        .execute(plan_to(box, SOURCE, source=TARGET), kind="failback")
        .run
    )
    assert back.status == RunStatus.COMPLETED
    assert desired(box).epoch == 2 and desired(box).active == SOURCE
    lease = Journal(box.clients, box.manifest).holder()
    assert lease is not None and lease.token == 2  # one per holder, never reset


def test_from_that_the_control_table_contradicts_is_refused_and_nothing_changes(
    fresh_sandbox: Sandbox, cli
) -> None:
    box = fresh_sandbox
    m = box.manifest_path
    assert cli("execute", "--to", TARGET, "--yes", "--manifest", m).code == 0
    result = cli("execute", "--to", OTHER, "--from", SOURCE, "--yes", "--manifest", m)
    assert result.code == 2, result.err
    assert f"--from {SOURCE} disagrees with the control table" in result.err
    assert f"names {TARGET} active" in result.err
    assert len(Journal(box.clients, box.manifest).runs()) == 1
    assert desired(box).active == TARGET
    assert active_regions(box) == [TARGET]
    assert not any(mapping_enabled(box, OTHER).values())
    dry = cli("execute", "--to", OTHER, "--from", SOURCE, "--dry-run", "--manifest", m)
    assert dry.code == 2 and "disagrees" in dry.err


def test_execute_without_from_fails_over_from_the_active_region_the_table_names(
    fresh_sandbox: Sandbox, cli
) -> None:
    box = fresh_sandbox
    m = box.manifest_path
    assert cli("execute", "--to", TARGET, "--yes", "--manifest", m).code == 0
    result = cli("execute", "--to", OTHER, "--yes", "--json", "--manifest", m)
    assert result.code == 0, result.err
    assert json.loads(result.out)["from"] == TARGET
    assert active_regions(box) == [OTHER]
    again = cli("execute", "--to", OTHER, "--yes", "--manifest", m)
    assert again.code == 2 and "nothing to fail over" in again.err


@pytest.mark.parametrize("delay", DELAYS)
def test_two_executes_to_two_targets_never_leave_two_regions_active(
    sandbox: Sandbox, delay: float
) -> None:
    box = sandbox
    box.reset()
    first = controller(box, "execute", "--to", TARGET, "--yes", "--json")
    time.sleep(delay)  # the gap under test, not a wait for an outcome
    second = controller(box, "execute", "--to", OTHER, "--yes", "--json")
    results = [(p.wait(timeout=180), *p.communicate()) for p in (first, second)]
    codes = [code for code, _, _ in results]
    assert all(code in (0, 3) for code in codes), results
    assert 0 in codes, results
    for code, _, err in results:
        if code == 3:  # the loser says why
            assert (
                "another controller holds the lease" in err or "the active region changed" in err
            ), err
    now = desired(box)
    assert active_regions(box) == [now.active], (results, now)
    ran = [json.loads(out) for code, out, _ in results if code == 0]
    if len(ran) == 2:  # one after the other: the second started from where the first ended
        assert ran[1]["from"] == ran[0]["to"] or ran[0]["from"] == ran[1]["to"]


def test_a_controller_that_lost_its_lease_stops_acting_before_its_next_action(
    fresh_sandbox: Sandbox,
) -> None:
    """A is stopped just before an activation until its lease expires; B resumes A's run and
    C fails over again; A then continues: it must not act in the region C fenced."""
    box = fresh_sandbox
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    paused: list[StepEvent] = []

    def stopped_then_others_act(event: StepEvent) -> None:
        if event.state != StepState.RUNNING or event.step.phase != "activate" or paused:
            return
        paused.append(event)
        offset[0] += box.topology.policy.lease_seconds + 1  # A "sleeps" past its lease
        later = Journal(box.clients, box.manifest, clock=clock)
        resumed = Executor(
            box.topology, box.manifest, box.clients, journal=later, owner="b@elsewhere:2"
        ).resume(event.run_id)
        assert resumed.run.status == RunStatus.COMPLETED
        again = Executor(
            box.topology, box.manifest, box.clients, journal=later, owner="c@elsewhere:3"
        ).execute(plan_to(box, OTHER, source=TARGET))
        assert again.run.status == RunStatus.COMPLETED

    a = Executor(
        box.topology,
        box.manifest,
        box.clients,
        owner="a@elsewhere:1",
        journal=Journal(box.clients, box.manifest, clock=clock),
        progress=stopped_then_others_act,
        max_workers=1,
    )
    with pytest.raises(StaleTokenError, match="could not renew"):
        a.execute(plan_to(box, TARGET))
    assert paused
    step = paused[0].step
    parameter = action_for(
        box.topology, box.manifest, box.clients, step.component, TARGET
    ).mode_parameter
    seen = plain(box, "ssm", TARGET).get_parameter(Name=parameter)["Parameter"]["Value"]
    assert seen == "fenced", f"{step.id}: A acted after losing its lease ({seen})"
    assert active_regions(box) == [OTHER]
    assert not any(mapping_enabled(box, TARGET).values())
    assert desired(box).active == OTHER


def test_a_run_uses_only_what_a_strongly_consistent_global_table_serves(
    fresh_sandbox: Sandbox,
) -> None:
    """MRSC tables take no transactions: the journal, the lease and the desired state write
    single items conditionally, and read strongly consistent."""
    from controller.aws import Clients

    box = fresh_sandbox
    calls: list[tuple[str, dict]] = []

    def record(model, params, **_: object) -> None:
        if model.service_model.service_name == "dynamodb":
            calls.append((model.name, params))

    clients = Clients(
        endpoints=box.manifest.endpoints, hooks=(("provide-client-params.dynamodb", record),)
    )
    run = Executor(box.topology, box.manifest, clients).execute(plan_to(box, TARGET)).run
    assert run.status == RunStatus.COMPLETED
    control = [
        (op, p)
        for op, p in calls
        if p.get("TableName") == box.manifest.control.table or op.startswith("Transact")
    ]
    assert control
    assert not [op for op, _ in control if op.startswith("Transact")]
    reads = [p for op, p in control if op in ("GetItem", "Query")]
    assert reads and all(p.get("ConsistentRead") for p in reads)
    writes = [p for op, p in control if op in ("PutItem", "UpdateItem", "DeleteItem")]
    assert writes and all(p.get("ConditionExpression") for p in writes)


class Died(BaseException):
    """A controller that stops dead at this point (not an error it could handle)."""


def test_a_run_whose_controller_died_before_the_desired_state_ends_and_blocks_nothing(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Journalled, but stopped before it named its target: no step acted. It used to stay
    ``running`` forever: every later run refused by ``no_run_in_progress``, its resume refused
    as superseded. Resuming it now ends it, and the next failover runs."""
    box = fresh_sandbox

    def die(*args: object, **kwargs: object) -> None:
        raise Died

    with monkeypatch.context() as patch:
        patch.setattr(Journal, "set_desired", die)
        with pytest.raises(Died):
            Executor(box.topology, box.manifest, box.clients).execute(plan_to(box, TARGET))
    journal = Journal(box.clients, box.manifest)
    stuck = journal.runs()[0]
    assert stuck.status == RunStatus.RUNNING and stuck.epoch == 1
    assert (desired(box).active, desired(box).epoch) == (SOURCE, 0)
    assert all(step.state == StepState.PENDING for step in stuck.steps.values())
    with pytest.raises(ConflictError, match="no step acted"):
        Executor(box.topology, box.manifest, box.clients).resume(stuck.id)
    assert journal.run(stuck.id).status == RunStatus.FAILED
    assert active_regions(box) == [SOURCE]  # ending it touched nothing
    run = Executor(box.topology, box.manifest, box.clients).execute(plan_to(box, TARGET)).run
    assert run.status == RunStatus.COMPLETED
    assert (desired(box).active, desired(box).epoch) == (TARGET, 1)


def test_a_desired_state_that_cannot_be_written_ends_the_run_at_once(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = fresh_sandbox

    def no_majority(*args: object, **kwargs: object) -> None:
        raise NoMajorityError("the control table has no majority: us-east-1 unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(Journal, "set_desired", no_majority)
        with pytest.raises(NoMajorityError):
            Executor(box.topology, box.manifest, box.clients).execute(plan_to(box, TARGET))
    ended = Journal(box.clients, box.manifest).runs()[0]
    assert ended.status == RunStatus.FAILED and "no step acted" in ended.error
    assert active_regions(box) == [SOURCE]
    run = Executor(box.topology, box.manifest, box.clients).execute(plan_to(box, TARGET)).run
    assert run.status == RunStatus.COMPLETED
