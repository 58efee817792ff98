"""A run whose target stops answering mid-run does not strand the application.

The reproduction of issue 11's "Why": hang the target late in a run and the run stayed
``running``, the source fenced, and every later failover was refused until the hung region came
back. Now the run ends ``failed`` and a new run moves on, as ``policy.on_target_lost`` says: to
the next healthy standby, or back to the healthy source.
"""

from __future__ import annotations

import time

import pytest

from controller.aws import AwsSettings, Clients
from controller.controltable.journal import Journal, RunStatus
from controller.engine.executor import Executor
from controller.errors import PlanError
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from controller.topology import TargetLost
from sandbox import Sandbox
from sandbox.faults import kill_after_steps
from tests.kit.emulator import plain, set_alarms

pytestmark = pytest.mark.sandbox

SOURCE, TARGET, OTHER = "us-east-1", "us-west-2", "eu-west-1"
#: Short timeouts so that a hung region costs seconds, not minutes (the behaviour is the same).
QUICK = AwsSettings(connect_timeout=1.0, read_timeout=2.0, max_attempts=1)


def mode(box: Sandbox, region: str) -> str:
    ssm = plain(box, "ssm", region)
    return str(ssm.get_parameter(Name=box.topology.mode_parameter(region))["Parameter"]["Value"])


@pytest.mark.parametrize(
    ("policy", "landing"), [(TargetLost.NEXT_STANDBY, OTHER), (TargetLost.SOURCE, SOURCE)]
)
def test_a_run_whose_target_hangs_mid_run_moves_on_and_leaves_nothing_running(
    fresh_sandbox: Sandbox, policy: TargetLost, landing: str
) -> None:
    box = fresh_sandbox
    topology = box.topology.model_copy(
        update={"policy": box.topology.policy.model_copy(update={"on_target_lost": policy})}
    )
    plan = build_plan(topology, graphs.build(topology), target=TARGET, source=SOURCE)
    activations = [level for level in plan.levels if level[0].phase == "activate"]
    fences = sum(1 for s in plan.steps if s.phase == "fence")
    mid_run = fences + len(activations[0])  # hang it once the fences and a first level ended
    clients = Clients(endpoints=box.manifest.endpoints, settings=QUICK)
    undo = kill_after_steps(mid_run, kill=lambda: box.fail(TARGET, "hang"))
    started = time.monotonic()
    try:
        result = Executor(topology, box.manifest, clients, accept_unknown_lag=True).execute(plan)
    finally:
        undo()
    took = time.monotonic() - started
    journal = Journal(box.clients, box.manifest)
    runs = {r.id: r for r in journal.runs()}
    assert len(runs) == 2, runs
    lost = next(r for r in runs.values() if r.plan.target == TARGET)
    assert lost.status == RunStatus.FAILED and "stopped answering" in lost.error
    moved = result.run
    assert moved.plan.source == TARGET and moved.plan.target == landing
    assert moved.status.ok, moved.error
    assert journal.current_run_id() is None  # nothing left running
    holder = journal.holder()
    assert holder is None or holder.expires_at <= time.time()  # the lease is released
    desired = journal.desired(SOURCE)
    assert desired.active == landing and desired.epoch == 2
    assert mode(box, landing) == "active"
    others = [r for r in box.topology.regions.all if r not in (landing, TARGET)]
    assert all(mode(box, r) != "active" for r in others)
    assert took < 120


def test_a_run_whose_target_hangs_with_nowhere_healthy_to_go_ends_failed_not_running(
    fresh_sandbox: Sandbox,
) -> None:
    """us-west-2 is down, the source's alarms fire, and the target (eu-west-1) hangs mid-run:
    nowhere to go, but the run ends ``failed`` and the lease is released (the control table
    keeps its majority: us-east-1 and the witness)."""
    box = fresh_sandbox
    box.fail(TARGET, "down")
    set_alarms(box, SOURCE, "ALARM")
    plan = build_plan(box.topology, graphs.build(box.topology), target=OTHER, source=SOURCE)
    activations = [level for level in plan.levels if level[0].phase == "activate"]
    mid_run = sum(1 for s in plan.steps if s.phase == "fence") + len(activations[0])
    clients = Clients(endpoints=box.manifest.endpoints, settings=QUICK)
    undo = kill_after_steps(mid_run, kill=lambda: box.fail(OTHER, "hang"))
    try:
        with pytest.raises(PlanError, match="no healthy region to move to"):
            Executor(box.topology, box.manifest, clients, accept_unknown_lag=True).execute(plan)
    finally:
        undo()
    journal = Journal(box.clients, box.manifest)
    (run,) = journal.runs()
    assert run.status == RunStatus.FAILED and "stopped answering" in run.error
    assert journal.current_run_id() is None
    holder = journal.holder()
    assert holder is None or holder.expires_at <= time.time()
