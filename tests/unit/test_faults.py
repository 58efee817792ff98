"""The sandbox's fault injection: the crash tests' and the runbook's controller that dies after
N journalled step endings, with no hook in the control plane."""

from __future__ import annotations

from typing import Any

from controller.controltable.journal import Journal, StepRecord, StepState
from sandbox import faults


def test_kill_comes_after_the_write_that_journals_the_nth_ending_and_undo_restores() -> None:
    journal = Journal.__new__(Journal)  # no control table: its writes are stubbed below
    written: list[str] = []
    kills: list[int] = []

    def write(lease: Any, puts: list[dict[str, Any]], *_: Any) -> None:
        written.extend(p["sk"]["S"] for p in puts)

    journal._write = write  # type: ignore[method-assign]
    original = Journal.record_steps
    undo = faults.kill_after_steps(3, kill=lambda: kills.append(len(written)))
    running, done = StepState.RUNNING, StepState.DONE
    try:
        journal.record_steps(None, "run", [StepRecord("a", running), StepRecord("b", running)])  # type: ignore[arg-type]
        assert kills == []  # starts are not endings
        journal.record_steps(
            None,  # type: ignore[arg-type]
            "run",
            [
                StepRecord("a", done),
                StepRecord("b", StepState.UNVERIFIED),
                StepRecord("c", running),
            ],
        )
        assert kills == []  # two endings
        journal.record_steps(None, "run", [StepRecord("c", done)])  # type: ignore[arg-type]
        assert kills == [6]  # after the write of the third ending, not before
        journal.record_steps(None, "run", [StepRecord("d", done)])  # type: ignore[arg-type]
        assert kills == [6]  # once
    finally:
        undo()
    assert Journal.record_steps is original
