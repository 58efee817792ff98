"""What a run tells while it runs and when it ends: a step's progress (:class:`StepEvent`, for
the CLI's live display and the tests) and the run's result (:class:`RunResult`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.controltable.journal import Run, StepState
from controller.engine.prechecks import Precheck
from controller.plan.steps import Step


@dataclass(frozen=True)
class StepEvent:
    """Progress of one step, for the CLI's live display and for tests."""

    run_id: str
    step: Step
    state: StepState
    attempt: int = 0
    error: str = ""


Progress = Callable[[StepEvent], None]


@dataclass
class RunResult:
    """How a run ended, with its prechecks."""

    run: Run
    prechecks: list[Precheck] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when the target serves (also degraded), 1 when failed or rolled back."""
        return 0 if self.run.status.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """The result as ``failover execute --json`` prints it."""
        return {
            **self.run.to_dict(),
            "prechecks": [p.to_dict() for p in self.prechecks],
        }
