"""The executor: runs a failover plan level by level, journalled, verified, resumable.

Called by the CLI (``execute``, ``resume``, ``failback``) and the watcher. Each step: journal
``running``, act, read the state back, journal the outcome; the steps of a level run in parallel
on a bounded thread pool. Fencing the source is best effort (a source that does not answer gets
``unverified`` steps and the run goes on); a target step that fails after its retries either
degrades what needs it or rolls the target back, as the component's ``on_failure`` says. The lease
is held from the prechecks to the end, and renewed before every level.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from controller import graph as graphs
from controller.actions import mode as modes
from controller.actions.base import State
from controller.actions.registry import action_for
from controller.aws import AwsSettings, Clients
from controller.contract import DegradedMode
from controller.errors import (
    FailoverError,
    PermanentStepError,
    PlanError,
    StaleTokenError,
    TransientStepError,
    UsageError,
)
from controller.journal import Journal, Run, RunStatus, StepRecord, StepState, new_run_id
from controller.lease import Lease, default_owner
from controller.manifest import Manifest
from controller.plan import FailoverPlan, Step
from controller.prechecks import Precheck, prechecks
from controller.retry import decide
from controller.spec import OnFailure, Topology

log = logging.getLogger(__name__)

#: Fencing a source that may be gone: one attempt, short timeouts.
FENCE_SETTINGS = AwsSettings(connect_timeout=1.0, read_timeout=2.0, max_attempts=1)


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
        return {**self.run.to_dict(),
                "prechecks": [{"name": p.name, "ok": p.ok, "detail": p.detail}
                              for p in self.prechecks]}


class Executor:
    """Runs plans against real AWS (or the emulator) under the lease.

    Parameters
    ----------
    topology, manifest, clients : what to act on and how to reach it.
    journal : the control table (default: the manifest's).
    owner : this controller's name in the lease (default ``user@host:pid``).
    progress : called with a :class:`StepEvent` whenever a step changes state.
    max_workers : the steps of a level run on this many threads (1: one step at a time).
    """

    def __init__(self, topology: Topology, manifest: Manifest, clients: Clients, *,
                 journal: Journal | None = None, owner: str | None = None,
                 progress: Progress | None = None, max_workers: int = 8) -> None:
        self.topology = topology
        self.manifest = manifest
        self.clients = clients
        self.fence_clients = Clients(endpoints=clients.endpoints, settings=FENCE_SETTINGS,
                                     hooks=clients.hooks)
        self.journal = journal or Journal(clients, manifest)
        self.owner = owner or default_owner()
        self.progress = progress or (lambda event: None)
        self.max_workers = max(1, max_workers)
        self.policy = topology.policy
        self.graph = graphs.build(topology)

    # -- prechecks ---------------------------------------------------------------------------

    def prechecks(self, plan: FailoverPlan, *, resuming: str | None = None) -> list[Precheck]:
        """Check the target before touching anything (see :mod:`controller.prechecks`)."""
        return prechecks(self.topology, self.manifest, self.clients, self.journal, plan,
                         self.owner, resuming=resuming)

    # -- running -----------------------------------------------------------------------------

    def execute(self, plan: FailoverPlan, *, kind: str = "failover",
                since: float | None = None) -> RunResult:
        """Take the lease, check, journal a new run and drive it to its end.

        ``since`` (a watcher's decision time): refuse when another run started after it, so
        that a decision taken before another controller acted is not carried out twice.

        Raises
        ------
        LeaseHeldError
            Another controller holds the lease (exit code 3).
        PlanError
            A precheck failed; nothing was touched.
        """
        lease = self.journal.acquire(self.owner, self.policy.lease_seconds)
        try:
            if since is not None:
                newer = [r for r in self.journal.runs(limit=5) if r.created >= since]
                if newer:
                    raise PlanError(f"superseded: run {newer[0].id} ({newer[0].plan.source} -> "
                                    f"{newer[0].plan.target}) started after this decision")
            checks = self.prechecks(plan)
            failed = [c for c in checks if not c.ok and c.name != "lease_free"]
            if failed:
                raise PlanError("prechecks failed, nothing touched: " + "; ".join(
                    f"{c.name}: {c.detail}" for c in failed))
            run = self.journal.create_run(lease, new_run_id(), plan, kind=kind)
            log.info("run %s: %s -> %s, %d steps", run.id, plan.source, plan.target,
                     len(plan.steps))
            return RunResult(self._drive(run, lease), checks)
        finally:
            self._release(lease)

    def resume(self, run_id: str) -> RunResult:
        """Continue a run whose controller died: new lease and token, redo what is not done.

        Raises
        ------
        FailoverError
            No such run (exit 2), or the run has already ended (exit 2).
        LeaseHeldError
            A live controller holds the lease.
        """
        lease = self.journal.acquire(self.owner, self.policy.lease_seconds)
        try:
            run = self.journal.run(run_id)
            if run.status != RunStatus.RUNNING:
                raise UsageError(f"run {run_id} has already ended: {run.status.value}")
            self.journal.adopt_run(lease, run)
            log.info("resuming run %s (previous owner %s)", run_id, run.owner)
            return RunResult(self._drive(run, lease))
        finally:
            self._release(lease)

    def _release(self, lease: Lease) -> None:
        try:
            self.journal.release(lease)
        except FailoverError as exc:
            log.warning("could not release the lease: %s", exc)

    def _drive(self, run: Run, lease: Lease) -> Run:
        plan = run.plan
        degraded = self._degraded(run)
        unreachable: set[str] = set()
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="step") as pool:
            for level in plan.levels:
                lease = self.journal.renew(lease, self.policy.lease_seconds)
                todo = [s for s in level if not run.steps[s.id].state.finished
                        and run.steps[s.id].state != StepState.FAILED]
                self._start(run, lease, todo)
                futures = [pool.submit(self._step, run, lease, s, degraded, unreachable)
                           for s in todo]
                for future in futures:
                    future.result()
                failed = [s for s in level if run.steps[s.id].state == StepState.FAILED
                          and s.phase == "activate"]
                for step in failed:
                    if self.topology.components[step.component].on_failure == OnFailure.ROLLBACK:
                        return self._rollback(run, lease, step)
                    self._degrade(run, step, degraded)
        return self._finish(run, lease, degraded, unreachable)

    def _degraded(self, run: Run) -> dict[str, DegradedMode]:
        """The plan's degraded map plus what needs a step that already failed (on resume)."""
        degraded = dict(run.plan.degraded)
        for step in run.plan.steps:
            if step.phase == "activate" and run.steps[step.id].state == StepState.FAILED:
                for name in graphs.impact(self.graph, [step.component]):
                    degraded.setdefault(name, self._mode_of(name))
        return degraded

    def _mode_of(self, name: str) -> DegradedMode:
        return self.topology.components[name].degraded or DegradedMode.UNAVAILABLE

    def _degrade(self, run: Run, step: Step, degraded: dict[str, DegradedMode]) -> None:
        impacted = graphs.impact(self.graph, [step.component])
        for name in sorted(impacted):
            degraded.setdefault(name, self._mode_of(name))
        log.warning("%s failed: %d dependents go degraded", step.id, len(impacted))

    # -- one step ----------------------------------------------------------------------------

    def _start(self, run: Run, lease: Lease, steps: list[Step]) -> None:
        """Journal a level's steps ``running`` in one write, before any of them acts.

        One transaction per level, not one per step: a resumed run re-reads every step that
        is not done, so what matters is that a step is journalled before it acts.
        """
        now = time.time()
        for step in steps:
            record = run.steps[step.id]
            record.state, record.started, record.error = StepState.RUNNING, now, ""
        self.journal.record_steps(lease, run.id, [run.steps[s.id] for s in steps])

    def _step(self, run: Run, lease: Lease, step: Step, degraded: dict[str, DegradedMode],
              unreachable: set[str]) -> None:
        record = run.steps[step.id]
        record.started = time.time()
        self._announce(run, step)
        fence = step.phase == "fence"
        clients = self.fence_clients if fence else self.clients
        action = action_for(self.topology, self.manifest, clients, step.component, step.region)
        if fence and step.region in unreachable and not action.global_resource:
            return self._end(run, lease, step, StepState.UNVERIFIED,
                             f"{step.region} unreachable: not fenced")
        mode = degraded.get(step.component) if not fence else None
        retries = self.policy.step_retries
        for attempt in range(retries + 1):
            record.attempts += 1
            error: TransientStepError | PermanentStepError | None = None
            try:
                result = action.deactivate() if fence else action.activate(mode)
                seen = result.observed.state
                if fence and seen not in (action.fenced_state, State.MISSING):
                    raise TransientStepError(f"read back {seen}, wanted fenced")
                log.info("%s: %s (%s)", step.id, seen, "changed" if result.changed
                         else "already so")
            except (TransientStepError, PermanentStepError) as exc:
                error = exc
            outcome = decide(error, attempt=attempt, retries=retries, fence=fence,
                             global_resource=action.global_resource,
                             jitter=0.5 + random.random())
            if outcome.region_unreachable:
                unreachable.add(step.region)
            if outcome.final:
                return self._end(run, lease, step, outcome.state, outcome.error)
            log.warning("%s: attempt %d failed (%s); retrying in %.1fs", step.id,
                        attempt + 1, outcome.error, outcome.delay)
            time.sleep(outcome.delay)

    def _end(self, run: Run, lease: Lease, step: Step, state: StepState, error: str = "") -> None:
        record = run.steps[step.id]
        record.state, record.ended, record.error = state, time.time(), error
        self._journal(run, lease, record, step)

    def _journal(self, run: Run, lease: Lease, record: StepRecord, step: Step) -> None:
        self.journal.record_step(lease, run.id, record)
        self._announce(run, step)

    def _announce(self, run: Run, step: Step) -> None:
        """Tell the progress callback the step's state as the run holds it."""
        record = run.steps[step.id]
        self.progress(StepEvent(run.id, step, record.state, record.attempts, record.error))

    # -- endings -----------------------------------------------------------------------------

    def _finish(self, run: Run, lease: Lease, degraded: dict[str, DegradedMode],
                unreachable: set[str]) -> Run:
        plan = run.plan
        modes.set_region_mode(self.clients, self.topology, self.manifest, plan.target,
                              modes.ACTIVE)
        if plan.source in unreachable:
            log.warning("source %s unreachable: its mode not written; fence it again when it "
                        "is back", plan.source)
        else:
            try:
                modes.set_region_mode(self.fence_clients, self.topology, self.manifest,
                                      plan.source, modes.FENCED)
            except TransientStepError as exc:
                log.warning("source %s mode not written (%s): fence it again when it is back",
                            plan.source, exc)
        run.degraded = {k: v.value for k, v in degraded.items()}
        failed = any(r.state == StepState.FAILED for r in run.steps.values())
        status = RunStatus.COMPLETED_DEGRADED if degraded or failed else RunStatus.COMPLETED
        self.journal.finish_run(lease, run, status)
        log.info("run %s %s", run.id, status.value)
        return run

    def _rollback(self, run: Run, lease: Lease, failed: Step) -> Run:
        """Undo the target's activations (dependents first) and re-activate the source."""
        plan = run.plan
        log.error("%s failed and its policy is rollback: rolling the target back", failed.id)
        done = [s for s in plan.steps if s.phase == "activate"
                and run.steps[s.id].state == StepState.DONE]
        for step in reversed(done):
            self._best_effort(lambda s=step: action_for(  # type: ignore[misc]
                self.topology, self.manifest, self.clients, s.component, s.region).deactivate())
        for step in [s for s in plan.steps if s.phase == "activate"]:
            self._best_effort(lambda s=step: action_for(  # type: ignore[misc]
                self.topology, self.manifest, self.fence_clients, s.component,
                plan.source).activate())
        self.journal.finish_run(lease, run, RunStatus.ROLLED_BACK,
                                f"{failed.id} failed: {run.steps[failed.id].error}")
        return run

    def _best_effort(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except (TransientStepError, PermanentStepError) as exc:
            log.warning("rollback step failed: %s", exc)


__all__ = ["Executor", "Precheck", "RunResult", "StaleTokenError", "StepEvent"]
