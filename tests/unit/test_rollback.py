"""A rollback is best effort step by step: one step that cannot be undone, even one whose action
cannot be made, leaves the others undone and the source activated again."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from controller.controltable.desired import Desired
from controller.controltable.journal import Run, RunStatus, StepRecord, StepState
from controller.engine import levels
from controller.errors import PermanentStepError
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from controller.plan.steps import Phase
from controller.topology import load
from tests.kit.paths import EXAMPLE

SOURCE, TARGET = "us-east-1", "us-west-2"


class Journal:
    """The journal calls a rollback makes: the desired state read, the run's end written."""

    def __init__(self) -> None:
        self.ended: tuple[RunStatus, str] | None = None

    def desired(self, primary: str) -> Desired:
        return Desired(active=SOURCE, epoch=1)

    def finish_run(self, lease: Any, run: Run, status: RunStatus, error: str = "") -> None:
        self.ended = (status, error)


def test_a_step_whose_action_cannot_be_made_does_not_stop_the_rollback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topology = load(EXAMPLE)
    graph = graphs.build(topology)
    plan = build_plan(topology, graph, target=TARGET, source=SOURCE)
    activated = [s for s in plan.steps if s.phase == Phase.ACTIVATE]
    broken = activated[0].component  # its action cannot be made, in either region
    acted: list[tuple[str, str, str]] = []

    def action_for(topology: Any, manifest: Any, clients: Any, name: str, region: str) -> Any:
        if name == broken:
            raise PermanentStepError("not in the manifest", component=name, region=region)
        return SimpleNamespace(
            activate=lambda: acted.append(("activate", name, region)),
            deactivate=lambda: acted.append(("deactivate", name, region)),
        )

    monkeypatch.setattr(levels, "action_for", action_for)
    journal = Journal()
    driver = levels.Driver(
        topology=topology,
        manifest=None,  # type: ignore[arg-type]
        clients=None,  # type: ignore[arg-type]
        fence_clients=None,  # type: ignore[arg-type]
        journal=journal,  # type: ignore[arg-type]
        keeper=SimpleNamespace(check=lambda: None),  # type: ignore[arg-type]
        graph=graph,
        progress=lambda event: None,
        max_workers=1,
    )
    run = Run(
        id="r-1",
        plan=plan,
        status=RunStatus.RUNNING,
        owner="test",
        created=0.0,
        updated=0.0,
        steps={s.id: StepRecord(s.id, StepState.DONE) for s in activated},
    )
    driver._rollback(run, activated[-1])
    others = [s.component for s in activated if s.component != broken]
    assert others
    assert [a for a in acted if a[0] == "deactivate"] == [
        ("deactivate", name, TARGET) for name in reversed(others)
    ]
    assert [a for a in acted if a[0] == "activate"] == [
        ("activate", name, SOURCE) for name in others
    ]
    assert journal.ended is not None and journal.ended[0] == RunStatus.ROLLED_BACK
