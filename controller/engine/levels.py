"""Driving one run: its levels in order, the steps of a level in parallel, each step retried.

Called by the executor (:mod:`controller.engine.executor`), which holds the lease and hands a
:class:`Driver` the run. Each step: journal ``running``, act, read the state back, journal the
outcome; what one attempt came to is :func:`~controller.engine.retry.decide`'s. A level's
outcomes go in the run's next journal write (the next level's ``running``, the run's end), not
one write each: a step is journalled before it acts, and one that ended unjournalled is done
again on resume, like one that acted and died before its write. Fencing the source is best
effort (a source that does not answer gets ``unverified`` steps and the run goes on); a target
step that fails after its retries degrades what needs it or rolls the target back, as the
component's ``on_failure`` says.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller import clock
from controller.actions import mode as modes
from controller.actions.base import Action, State
from controller.actions.registry import action_for
from controller.aws import Clients
from controller.contract import DegradedMode, Mode
from controller.controltable.desired import Desired
from controller.controltable.journal import Journal, Run, RunStatus, StepState
from controller.controltable.lease import Lease, LeaseKeeper
from controller.engine.events import Progress, StepEvent
from controller.engine.retry import decide
from controller.engine.silence import Silence
from controller.errors import FailoverError, PermanentStepError, TargetLostError, TransientStepError
from controller.plan.steps import Phase, Step
from controller.topology import OnFailure, Policy, Topology
from controller.topology.manifest import Manifest

if TYPE_CHECKING:
    import networkx as nx

log = logging.getLogger(__name__)


@dataclass
class Driver:
    """Drives runs under a held lease (``keeper``), with the executor's lease-checked clients.

    ``clients`` act (every request checks the lease first); ``fence_clients`` fence, with one
    attempt and short timeouts (the source may be gone).
    """

    topology: Topology
    manifest: Manifest
    clients: Clients
    fence_clients: Clients
    journal: Journal
    keeper: LeaseKeeper
    graph: nx.DiGraph
    progress: Progress
    max_workers: int
    #: Steps ended since the run's last journal write: written with its next one.
    _ended: list[Step] = field(default_factory=list, init=False)
    _ended_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def policy(self) -> Policy:
        """The topology's policy (retries, on_failure of its components)."""
        return self.topology.policy

    def desired(self) -> Desired:
        """The desired state as the control table holds it now."""
        return self.journal.desired(self.topology.regions.primary)

    def drive(self, run: Run, silence: Silence | None = None) -> Run:
        """Run every level not done yet; the run's end (completed, degraded, rolled back).

        ``silence``: the regions already known not to answer (the prechecks' reads); the run
        adds those its own calls find, and sends a silent region nothing more.

        Raises
        ------
        TargetLostError
            The target stopped answering: the caller moves the run on.
        """
        try:
            return self._levels(run, silence if silence is not None else Silence())
        except BaseException:
            self._journal_ended(run, quietly=True)  # a lost lease, an interruption, a lost target
            raise

    def _levels(self, run: Run, unreachable: Silence) -> Run:
        plan = run.plan
        degraded = self._degraded(run)
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="step") as pool:
            for level in plan.levels:
                self._leave_silent(run, unreachable)
                todo = [
                    s
                    for s in level
                    if not run.steps[s.id].state.finished
                    and run.steps[s.id].state != StepState.FAILED
                ]
                if not todo:  # every step done, or a silent region's fence: no lease, no write
                    continue
                lease = self.keeper.renew(unless_held_for=self._level_budget())
                self._start(run, lease, todo)
                futures = [pool.submit(self._step, run, s, degraded, unreachable) for s in todo]
                for future in futures:
                    future.result()
                failed = [
                    s
                    for s in level
                    if run.steps[s.id].state == StepState.FAILED and s.phase == Phase.ACTIVATE
                ]
                if plan.target in unreachable and failed:
                    raise TargetLostError(plan.target, run.steps[failed[0].id].error)
                for step in failed:
                    if self.topology.components[step.component].on_failure == OnFailure.ROLLBACK:
                        return self._rollback(run, step)
                    self._degrade(run, step, degraded)
        return self._finish(run, degraded, unreachable)

    def _leave_silent(self, run: Run, unreachable: Silence) -> None:
        """End every fence step still to do in a region found silent, whatever its level:
        ``unverified``, fenced when it answers (the reconciler's), journalled with the run's
        next write. A global step (DNS) acts without the region, and stays."""
        silent = unreachable.regions
        ending = [
            s
            for s in run.plan.steps
            if s.phase == Phase.FENCE
            and s.region in silent
            and run.steps[s.id].state in (StepState.PENDING, StepState.RUNNING)
            and not self._action(s, self.fence_clients).global_resource
        ]
        if not ending:
            return
        now = clock.now()
        for step in ending:
            record = run.steps[step.id]
            record.state, record.started, record.ended = StepState.UNVERIFIED, now, now
            record.error = (
                f"{step.region} unreachable ({unreachable.why(step.region)}): not fenced; "
                "fenced when it answers"
            )
        with self._ended_lock:
            self._ended.extend(ending)
        log.warning("%d fence steps of silent %s end unverified", len(ending), sorted(silent))

    def _level_budget(self) -> float:
        """The longest a level may take: its steps' timeout, plus one attempt begun just
        before it ran out; the lease is renewed before a level only when held for less."""
        return self.policy.step_timeout_seconds + self.keeper.budget

    def _degraded(self, run: Run) -> dict[str, DegradedMode]:
        """The plan's degraded map plus what needs a step that already failed (on resume)."""
        degraded = dict(run.plan.degraded)
        for step in run.plan.steps:
            if step.phase == Phase.ACTIVATE and run.steps[step.id].state == StepState.FAILED:
                self._degrade(run, step, degraded)
        return degraded

    def _degrade(self, run: Run, step: Step, degraded: dict[str, DegradedMode]) -> None:
        from controller.plan.build import degraded_map  # not at import: every watcher imports us

        impacted = degraded_map(self.topology, self.graph, [step.component])
        for name, mode in impacted.items():
            degraded.setdefault(name, mode)
        log.warning("%s failed: %d dependents go degraded", step.id, len(impacted))

    # -- one step ----------------------------------------------------------------------------

    def _start(self, run: Run, lease: Lease, steps: list[Step]) -> None:
        """Journal a level's steps ``running`` in one write, before any of them acts.

        One write per level, not one per step, which also carries the last level's outcomes: a
        resumed run re-reads every step that is not done, so what matters is that a step is
        journalled before it acts.
        """
        now = clock.now()
        for step in steps:
            record = run.steps[step.id]
            record.state, record.started, record.error = StepState.RUNNING, now, ""
        self._journal_ended(run, lease, steps)

    def _step(
        self, run: Run, step: Step, degraded: dict[str, DegradedMode], unreachable: Silence
    ) -> None:
        record = run.steps[step.id]
        record.started = clock.now()
        self._announce(run, step)
        fence = step.phase == Phase.FENCE
        clients = self.fence_clients if fence else self.clients
        action = self._action(step, clients)
        if step.region in unreachable:
            if fence and not action.global_resource:
                return self._end(
                    run,
                    step,
                    StepState.UNVERIFIED,
                    f"{step.region} unreachable ({unreachable.why(step.region)}): not fenced; "
                    "fenced when it answers",
                )
            action.assume_silent()  # a global step acts without the region's mode parameter
        mode = degraded.get(step.component) if not fence else None
        retries = self.policy.step_retries
        deadline = clock.monotonic() + self.policy.step_timeout_seconds
        for attempt in range(retries + 1):
            if not fence and step.region in unreachable and not action.global_resource:
                return self._end(
                    run, step, StepState.FAILED, f"{step.region} stopped answering: not activated"
                )
            record.attempts += 1
            error: TransientStepError | PermanentStepError | None = None
            try:
                result = action.deactivate() if fence else action.activate(mode)
                seen = result.observed.state
                if fence and seen not in (action.fenced_state, State.MISSING):
                    raise TransientStepError(f"read back {seen}, wanted fenced")
                log.info(
                    "%s: %s (%s)", step.id, seen, "changed" if result.changed else "already so"
                )
            except (TransientStepError, PermanentStepError) as exc:
                error = exc
            if fence and action.region_silent and step.region not in unreachable:
                unreachable.mark(step.region, f"{step.id}: its mode parameter got no answer")
            outcome = decide(
                error,
                attempt=attempt,
                retries=retries,
                fence=fence,
                global_resource=action.global_resource,
                jitter=0.5 + random.random(),
                remaining=deadline - clock.monotonic(),
            )
            if outcome.region_unreachable:
                unreachable.mark(step.region, f"{step.id}: {outcome.error}")
            if outcome.final:
                return self._end(run, step, outcome.state, outcome.error)
            log.warning(
                "%s: attempt %d failed (%s); retrying in %.1fs",
                step.id,
                attempt + 1,
                outcome.error,
                outcome.delay,
            )
            clock.sleep(outcome.delay)

    def _end(self, run: Run, step: Step, state: StepState, error: str = "") -> None:
        """Record how ``step`` ended; journalled with the run's next write."""
        record = run.steps[step.id]
        record.state, record.ended, record.error = state, clock.now(), error
        with self._ended_lock:
            self._ended.append(step)

    def _journal_ended(
        self,
        run: Run,
        lease: Lease | None = None,
        starting: Sequence[Step] = (),
        *,
        quietly: bool = False,
    ) -> None:
        """Journal the steps ended since the last write, with the records of the ``starting``
        ones, in one write (under ``lease``, else the keeper's), then announce the ended ones;
        ``quietly``: on the way out of a run, a write that fails is only logged."""
        with self._ended_lock:
            ended, self._ended = self._ended, []
        written = [*ended, *starting]
        if not written:
            return
        try:
            held = lease if lease is not None else self.keeper.check()
            self.journal.record_steps(held, run.id, [run.steps[s.id] for s in written])
        except FailoverError as exc:
            if not quietly:
                raise
            log.warning("run %s: %d step outcomes not journalled (%s)", run.id, len(ended), exc)
            return
        for step in ended:
            self._announce(run, step)

    def _announce(self, run: Run, step: Step) -> None:
        """Tell the progress callback the step's state as the run holds it."""
        record = run.steps[step.id]
        self.progress(StepEvent(run.id, step, record.state, record.attempts, record.error))

    # -- endings -----------------------------------------------------------------------------

    def _finish(self, run: Run, degraded: dict[str, DegradedMode], unreachable: Silence) -> Run:
        plan = run.plan
        self._journal_ended(run)
        self._not_serving(run)
        try:
            modes.set_region_mode(
                self.clients, self.topology, self.manifest, plan.target, Mode.ACTIVE
            )
        except TransientStepError as exc:
            if exc.unreachable:
                raise TargetLostError(plan.target, str(exc)) from exc
            raise
        if plan.source in unreachable:
            log.warning(
                "source %s unreachable: its mode not written; fence it again when it is back",
                plan.source,
            )
        else:
            try:
                modes.set_region_mode(
                    self.fence_clients, self.topology, self.manifest, plan.source, Mode.FENCED
                )
            except TransientStepError as exc:
                log.warning(
                    "source %s mode not written (%s): fence it again when it is back",
                    plan.source,
                    exc,
                )
        run.degraded = {k: v.value for k, v in degraded.items()}
        failed = any(r.state == StepState.FAILED for r in run.steps.values())
        status = RunStatus.COMPLETED_DEGRADED if degraded or failed else RunStatus.COMPLETED
        self.journal.finish_run(self.keeper.check(), run, status)
        log.info("run %s %s", run.id, status.value)
        return run

    def _not_serving(self, run: Run) -> None:
        """Mark ``standby`` in the target what the run did not activate there (unavailable, or
        its step failed): a component's deployed mode (``normal``) defers to its region's, and
        the region is about to say ``active``. Best effort: a mode not written is left to the
        next reconcile, which sees the component not serving."""
        plan = run.plan
        failed = {
            s.component
            for s in plan.steps
            if s.phase == Phase.ACTIVATE and run.steps[s.id].state == StepState.FAILED
        }
        ref = self.manifest.regions.get(plan.target)
        for component in sorted({*plan.unavailable, *failed}):
            named = ref.components.get(component) if ref else None
            name = (named.mode_parameter if named else None) or (
                self.topology.component_mode_parameter(component, plan.target)
            )
            try:
                modes.put(self.clients, plan.target, name, Mode.STANDBY)
            except Exception as exc:  # the next reconcile sees it not serving
                log.warning("%s in %s: mode not written (%s)", component, plan.target, exc)

    def _rollback(self, run: Run, failed: Step) -> Run:
        """Undo the target's activations (dependents first) and re-activate the source."""
        plan = run.plan
        self._journal_ended(run)
        log.error("%s failed and its policy is rollback: rolling the target back", failed.id)
        done = [
            s
            for s in plan.steps
            if s.phase == Phase.ACTIVATE and run.steps[s.id].state == StepState.DONE
        ]
        for step in reversed(done):
            self._best_effort(lambda a: a.deactivate(), step, self.clients)
        for step in [s for s in plan.steps if s.phase == Phase.ACTIVATE]:
            self._best_effort(lambda a: a.activate(), step, self.fence_clients, plan.source)
        desired = self.desired()
        if desired.active == plan.target and run.epoch and desired.epoch == run.epoch:
            self.journal.set_desired(self.keeper.check(), desired, plan.source, run.id)
        self.journal.finish_run(
            self.keeper.check(),
            run,
            RunStatus.ROLLED_BACK,
            f"{failed.id} failed: {run.steps[failed.id].error}",
        )
        return run

    def _action(self, step: Step, clients: Clients, region: str = "") -> Action:
        """``step``'s action (in ``region``, else the step's), acting through ``clients``."""
        return action_for(
            self.topology, self.manifest, clients, step.component, region or step.region
        )

    def _best_effort(
        self, act: Callable[[Action], Any], step: Step, clients: Clients, region: str = ""
    ) -> None:
        """``act`` on ``step``'s action, made here (one that cannot be made fails like a step),
        its failure logged: a rollback goes on past it."""
        try:
            act(self._action(step, clients, region))
        except (TransientStepError, PermanentStepError) as exc:
            log.warning("rollback step failed: %s", exc)

    def mark_fenced(self, region: str) -> None:
        """Write ``region``'s mode ``fenced``, best effort (it may not answer)."""
        try:
            modes.set_region_mode(
                self.fence_clients, self.topology, self.manifest, region, Mode.FENCED
            )
        except (TransientStepError, PermanentStepError) as exc:
            log.warning("%s mode not written (%s): fence it again when it is back", region, exc)
