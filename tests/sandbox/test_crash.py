"""A controller killed (SIGKILL, a real process) after any step, then resumed, ends as if never
interrupted; two controllers started together: exactly one acts."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from controller import health
from controller.controltable.journal import Journal, RunStatus, StepState
from controller.engine.executor import Executor
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from controller.topology import load
from sandbox import Sandbox
from tests.kit.emulator import controller, mapping_enabled, primary_record, rules_enabled
from tests.kit.paths import EXAMPLE

#: Its controller processes are forked from the session's zygote.
pytestmark = pytest.mark.usefixtures("forked_controllers")

TARGET = "us-west-2"
EXAMPLE_STEPS = len(build_plan(load(EXAMPLE), graphs.build(load(EXAMPLE)), target=TARGET).steps)


def snapshot(box: Sandbox) -> dict[str, Any]:
    """Everything a failover changes, read back from the emulator."""
    report = health.status(
        box.topology, box.manifest, box.clients, settings=None, deadline=60
    ).to_dict()
    return {
        "status": report,
        "mappings": {r: mapping_enabled(box, r) for r in box.topology.regions.all},
        "rules": {r: rules_enabled(box, r) for r in box.topology.regions.all},
        "record": primary_record(box),
    }


@pytest.fixture(scope="module")
def uninterrupted(sandbox: Sandbox) -> dict[str, Any]:
    sandbox.reset()
    proc = controller(sandbox, "execute", "--to", TARGET, "--yes", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out)["status"] == "completed"
    return snapshot(sandbox)


@pytest.mark.independent  # resets the sandbox; each worker computes its own uninterrupted run
@pytest.mark.parametrize("k", range(1, EXAMPLE_STEPS + 1))
def test_resume_after_kill_at_every_step(
    uninterrupted: dict[str, Any], sandbox: Sandbox, k: int
) -> None:
    sandbox.reset()
    proc = controller(sandbox, "execute", "--to", TARGET, "--yes", "--json", kill_after=k)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    journal = Journal(sandbox.clients, sandbox.manifest)
    run_id = journal.current_run_id()
    assert run_id is not None
    before = journal.run(run_id)
    finished = [r for r in before.steps.values() if r.state.finished]
    assert len(finished) >= k
    result = Executor(sandbox.topology, sandbox.manifest, sandbox.clients).resume(run_id)
    assert result.run.status == RunStatus.COMPLETED
    after = journal.run(run_id)
    assert all(r.state == StepState.DONE for r in after.steps.values())
    for step_id, record in before.steps.items():
        if record.state == StepState.DONE:  # done before the crash: not redone
            assert after.steps[step_id].attempts == record.attempts
    assert snapshot(sandbox) == uninterrupted


def test_resume_of_an_ended_run_is_refused(fresh_sandbox: Sandbox, cli) -> None:
    run = Executor(
        fresh_sandbox.topology,
        fresh_sandbox.manifest,
        fresh_sandbox.clients,
        accept_unknown_lag=True,
    ).execute(
        build_plan(fresh_sandbox.topology, graphs.build(fresh_sandbox.topology), target=TARGET)
    )
    result = cli("resume", run.run.id, "--manifest", fresh_sandbox.manifest_path)
    assert result.code == 2
    assert "has already ended: completed" in result.err
    assert cli("resume", "nope", "--manifest", fresh_sandbox.manifest_path).code == 2


def test_two_controllers_started_together_exactly_one_acts(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    procs = [
        controller(box, "execute", "--to", TARGET, "--from", "us-east-1", "--yes", "--json")
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3], results
    loser = next(err for code, _, err in results if code == 3)
    assert "another controller holds the lease:" in loser
    assert "@" in loser.split("lease:")[1]  # names the holder: user@host:pid
    runs = Journal(box.clients, box.manifest).runs()
    assert len(runs) == 1
    assert runs[0].status == RunStatus.COMPLETED


def test_cli_execute_exit_code_3_names_the_holder(fresh_sandbox: Sandbox, cli) -> None:
    journal = Journal(fresh_sandbox.clients, fresh_sandbox.manifest)
    lease = journal.acquire("oncall@laptop:42", 60)
    try:
        result = cli(
            "execute",
            "--to",
            TARGET,
            "--from",
            "us-east-1",
            "--yes",
            "--manifest",
            fresh_sandbox.manifest_path,
        )
        assert result.code == 3
        assert "oncall@laptop:42" in result.err
    finally:
        journal.release(lease)


def test_execute_without_yes_on_a_pipe_refuses(fresh_sandbox: Sandbox, cli) -> None:
    result = cli("execute", "--to", TARGET, "--manifest", fresh_sandbox.manifest_path)
    assert result.code == 2
    assert "pass --yes" in result.err
    assert Journal(fresh_sandbox.clients, fresh_sandbox.manifest).runs() == []


def test_dry_run_shows_prechecks_and_touches_nothing(fresh_sandbox: Sandbox, cli) -> None:
    result = cli(
        "execute",
        "--to",
        TARGET,
        "--dry-run",
        "--json",
        "--manifest",
        Path(fresh_sandbox.manifest_path),
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert {c["name"] for c in data["prechecks"]} >= {
        "target_reachable",
        "target_healthy",
        "replication_lag",
        "no_run_in_progress",
    }
    assert all(c["ok"] for c in data["prechecks"])
    assert mapping_enabled(fresh_sandbox, "us-east-1") == {"worker": True, "projector": True}
