"""The reconciler against the emulator: a region back from an outage is fenced by one
``failover reconcile``, even with automation paused; drift in the active region is undone; a
run whose controller died is taken over."""

from __future__ import annotations

import json
from functools import partial

import pytest

from controller import graph as graphs
from controller.actions.registry import action_class, action_for
from controller.aws import Clients
from controller.executor import Executor as _Executor
from controller.executor import StepEvent
from controller.journal import Journal, RunStatus, StepState
from controller.plan import build_plan
from controller.reconcile import reconcile
from sandbox import Sandbox
from tests.sandbox.helpers import mapping_enabled, plain, primary_record, region_host, rules_enabled

pytestmark = pytest.mark.sandbox
#: The emulator publishes no replication-lag metric: these tests are not about the lag check.
Executor = partial(_Executor, accept_unknown_lag=True)

PRIMARY, STANDBY = "us-east-1", "us-west-2"


def fenced_everywhere(box: Sandbox, region: str, *, inside: bool = False) -> dict[str, str]:
    """Each component of ``region`` that is not fenced, with what it says (read back fresh).

    ``inside``: read as a caller of ``region`` itself (its home region), which a partition
    lets through; the global components (DNS), out of its reach then, are left out.
    """
    # not the controller's: no cache, no hook
    clients = Clients(endpoints=box.manifest.endpoints, home=region if inside else None)
    ssm = clients.client("ssm", region) if inside else plain(box, "ssm", region)
    region_mode = ssm.get_parameter(Name=box.manifest.regions[region].mode_parameter)
    wrong = {}
    for name, spec in box.topology.components.items():
        action = action_for(box.topology, box.manifest, clients, name, region)
        if inside and action.global_resource:
            continue
        seen = action.read()
        mode = ssm.get_parameter(Name=action.mode_parameter)["Parameter"]["Value"]
        if mode == "normal":  # as deployed: the region's mode holds
            mode = region_mode["Parameter"]["Value"]
        fenced = action_class(str(spec.kind)).fenced_state
        if seen.state not in (fenced, "missing") or mode != "fenced":
            wrong[name] = f"{seen.state} (mode {mode})"
    return wrong


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
    from controller.watcher import Watcher

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
