"""The reconciler against the emulator: a region back from an outage is fenced by one
``failover reconcile``, even with automation paused; drift in the active region is undone; a
run whose controller died is taken over."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from controller import health
from controller.actions.registry import action_for
from controller.controltable.journal import Journal, RunStatus, StepState
from controller.engine.executor import Executor as _Executor
from controller.engine.executor import StepEvent
from controller.engine.reconcile import reconcile
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from sandbox import Sandbox
from tests.kit.emulator import (
    fenced_everywhere,
    mapping_enabled,
    plain,
    primary_record,
    region_host,
    rules_enabled,
)

pytestmark = pytest.mark.sandbox
#: The emulator publishes no replication-lag metric: these tests are not about the lag check.
Executor = partial(_Executor, accept_unknown_lag=True)

PRIMARY, STANDBY = "us-east-1", "us-west-2"


def test_one_reconcile_fences_every_component_of_a_returning_primary_even_when_paused(
    fresh_sandbox: Sandbox, cli
) -> None:
    box = fresh_sandbox
    m = box.manifest_path
    box.fail(PRIMARY, "hang")
    assert cli("automation", "pause", "--reason", "test", "--manifest", m).code == 0
    assert cli("execute", "--to", STANDBY, "--yes", "--manifest", m).code == 0
    box.heal(PRIMARY)
    assert fenced_everywhere(box, PRIMARY)  # stale: the hung primary was never fenced
    dry = cli("reconcile", "--dry-run", "--json", "--manifest", m)
    assert dry.code == 0, dry.err
    planned = json.loads(dry.out)
    fences = {(f["component"], f["region"]) for f in planned["fixes"] if f["action"] == "fence"}
    assert {r for _, r in fences} == {PRIMARY}
    assert fenced_everywhere(box, PRIMARY)  # the dry run touched nothing
    done = cli("reconcile", "--json", "--manifest", m)
    assert done.code == 0, done.err
    applied = json.loads(done.out)
    assert [(f["action"], f["component"], f["region"]) for f in applied["fixes"]] == [
        (f["action"], f["component"], f["region"]) for f in planned["fixes"]
    ]
    assert fenced_everywhere(box, PRIMARY) == {}
    assert not any(mapping_enabled(box, PRIMARY).values())
    assert not any(rules_enabled(box, PRIMARY).values())
    assert all(mapping_enabled(box, STANDBY).values())
    assert primary_record(box).rstrip(".") == region_host(box, STANDBY)
    again = json.loads(cli("reconcile", "--json", "--manifest", m).out)
    assert [f for f in again["fixes"] if f["action"] != "report"] == []


def test_reconcile_activates_again_what_a_stale_controller_fenced_in_the_active_region(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    plan = build_plan(box.topology, graphs.build(box.topology), target=STANDBY)
    Executor(box.topology, box.manifest, box.clients).execute(plan)
    stale = action_for(box.topology, box.manifest, box.clients, "worker", STANDBY)
    stale.deactivate()  # what a controller that lost its lease would have done
    assert mapping_enabled(box, STANDBY)["worker"] is False
    result = reconcile(box.topology, box.manifest, box.clients)
    assert [(f.action, f.component) for f in result.fixes if f.action != "report"] == [
        ("activate", "worker")
    ]
    assert result.acted and not result.failed
    assert mapping_enabled(box, STANDBY)["worker"] is True


def test_a_fix_decided_on_a_stale_read_that_finds_nothing_to_do_is_no_action(
    fresh_sandbox: Sandbox,
) -> None:
    """Between the read and the fix, another controller fenced the worker: the fix is done
    (nothing failed) but changed nothing, and the reconciliation says it did not act."""
    box = fresh_sandbox
    plan = build_plan(box.topology, graphs.build(box.topology), target=STANDBY)
    Executor(box.topology, box.manifest, box.clients).execute(plan)
    stale = action_for(box.topology, box.manifest, box.clients, "worker", PRIMARY)
    stale.activate()  # a stale controller switched the old primary's worker on again
    read = health.status(box.topology, box.manifest, box.clients)
    stale.deactivate()  # ... and another fenced it again before this reconciler acts
    result = reconcile(box.topology, box.manifest, box.clients, report=read)
    assert [(f.action, f.component) for f in result.fixes if f.action != "report"] == [
        ("fence", "worker")
    ]
    assert [o.text for o in result.outcomes.values()] == ["done"] and not result.failed
    assert not result.acted


def test_a_run_whose_controller_died_is_taken_over_by_the_next_reconcile(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    journal = Journal(box.clients, box.manifest, clock=lambda: 4e9)  # every lease has expired

    class Died(BaseException):
        pass

    def die(event: StepEvent) -> None:
        if event.state == StepState.DONE:
            raise Died

    plan = build_plan(box.topology, graphs.build(box.topology), target=STANDBY)
    with pytest.raises(Died):
        Executor(box.topology, box.manifest, box.clients, progress=die, max_workers=1).execute(plan)
    run_id = journal.current_run_id()
    assert run_id is not None and journal.run(run_id).status == RunStatus.RUNNING
    result = reconcile(box.topology, box.manifest, box.clients, journal=journal)
    assert [f.action for f in result.fixes] == ["resume"]
    assert result.acted  # a run taken over is an action (its outcome once said "done: run ...")
    assert journal.run(run_id).status == RunStatus.COMPLETED
    assert journal.current_run_id() is None
    assert all(mapping_enabled(box, STANDBY).values())


def test_a_paused_watcher_fences_a_returning_region_whatever_its_mode_says_but_starts_no_run(
    fresh_sandbox: Sandbox,
) -> None:
    """A fence write that timed out in the outage can land when the region resumes: its mode
    then says fenced while its components still serve. The watcher, which saw the region not
    answer at its last evaluation, reads it in full (paused: it fences, it starts no run)."""
    from controller.actions.mode import parameter_of
    from controller.watchers.watcher import Watcher

    box = fresh_sandbox
    box.fail(PRIMARY, "hang")
    journal = Journal(box.clients, box.manifest)
    journal.set_automation(True, "test", "game day")
    plan = build_plan(box.topology, graphs.build(box.topology), target=STANDBY)
    Executor(box.topology, box.manifest, box.clients).execute(plan)
    watcher = Watcher(box.topology, box.manifest, box.clients)
    first = watcher.step()
    assert first.health[PRIMARY] == "unreachable", first
    box.heal(PRIMARY)
    late = parameter_of(box.topology, box.manifest, PRIMARY)
    plain(box, "ssm", PRIMARY).put_parameter(Name=late, Value="fenced", Overwrite=True)
    assert fenced_everywhere(box, PRIMARY)  # the mode says fenced; the components serve

    decision = watcher.step()
    assert decision.action == "reconcile" and decision.target == PRIMARY, decision
    assert "automation paused" in decision.reason
    assert fenced_everywhere(box, PRIMARY) == {}
    assert len(journal.runs()) == 1  # the fence is not a run


def test_a_returning_region_whose_full_read_fails_is_read_in_full_by_the_next_invocation(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full read owed to a region back from an outage can fail (it hangs again for a moment,
    or another watcher holds the lease): the debt outlives the evaluation that could not pay
    it, in the watcher's item, until a full read covers the region and fences it."""
    from controller.actions.mode import parameter_of
    from controller.controltable.table import ControlTable
    from controller.controltable.watchstate import WatchStates
    from controller.watchers import watcher as watchers

    box = fresh_sandbox
    box.fail(PRIMARY, "hang")
    plan = build_plan(box.topology, graphs.build(box.topology), target=STANDBY)
    Executor(box.topology, box.manifest, box.clients).execute(plan)
    states = WatchStates(ControlTable(box.clients, box.manifest))
    watcher = watchers.Watcher(box.topology, box.manifest, box.clients)
    first = watcher.step()
    assert first.health[PRIMARY] == "unreachable", first
    box.heal(PRIMARY)
    late = parameter_of(box.topology, box.manifest, PRIMARY)
    plain(box, "ssm", PRIMARY).put_parameter(Name=late, Value="fenced", Overwrite=True)

    read = health.status

    def hung_again(*args: Any, components: bool = True, **kwargs: Any) -> Any:
        if not components:  # the evaluation's own read, which it answers
            return read(*args, components=False, **kwargs)
        box.fail(PRIMARY, "hang")  # ... and not the full one
        try:
            return read(*args, **kwargs)
        finally:
            box.heal(PRIMARY)

    monkeypatch.setattr(health, "status", hung_again)
    for _ in range(3):  # until the evaluation's own read reaches it (a loaded machine's may not)
        second = watcher.step()
        if second.health[PRIMARY] != "unreachable":
            break
    monkeypatch.undo()
    assert second.health[PRIMARY] != "unreachable", second
    assert fenced_everywhere(box, PRIMARY)  # the mode says fenced; the components serve
    states.write(watcher.remember(STANDBY, second, evaluations=2))
    assert states.read(STANDBY).unsettled == (PRIMARY,)

    following = watchers.Watcher(box.topology, box.manifest, box.clients)
    following.restore(states.read(STANDBY))
    third = following.step()
    assert third.action == "reconcile" and third.target == PRIMARY, third
    assert fenced_everywhere(box, PRIMARY) == {}
    states.write(following.remember(STANDBY, third, evaluations=3))
    assert states.read(STANDBY).unsettled == ()  # paid: the next evaluation reads the modes only
