"""The sandbox's fault injection: the crash tests' and the runbook's controller that dies after
N journalled step endings, with no hook in the control plane."""

from __future__ import annotations

from typing import Any

from controller.controltable.journal import Journal, StepRecord
from sandbox import faults


def test_kill_comes_after_the_nth_step_is_journalled_and_undo_restores() -> None:
    journal = Journal.__new__(Journal)  # no control table: record_steps is stubbed below
    written: list[str] = []
    kills: list[int] = []

    def record_steps(lease: Any, run_id: str, records: list[StepRecord]) -> None:
        written.extend(r.id for r in records)

    journal.record_steps = record_steps  # type: ignore[method-assign]
    original = Journal.record_step
    undo = faults.kill_after_steps(3, kill=lambda: kills.append(len(written)))
    try:
        for step in ("a", "b", "c"):
            journal.record_step(None, "run", StepRecord(step))  # type: ignore[arg-type]
        assert kills == [3]  # killed once the third step was written, not before
    finally:
        undo()
    assert Journal.record_step is original
