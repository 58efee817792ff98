"""The executor: runs a failover plan level by level, journalled, verified, resumable.

Called by the CLI (``execute``, ``resume``, ``failback``) and the watcher. Each step: journal
``running``, act, read the state back, journal the outcome; the steps of a level run in parallel
on a bounded thread pool. Fencing the source is best effort (a source that does not answer gets
``unverified`` steps and the run goes on); a target step that fails after its retries either
degrades what needs it or rolls the target back, as the component's ``on_failure`` says. The lease
is held from the prechecks to the end, renewed before every level, and checked just before
every AWS request the steps make (:class:`~controller.lease.LeaseKeeper`): a controller that
cannot renew it stops acting at once. A run's source is the active region the control table's
desired state names, read under the lease (:mod:`controller.desired`); the run writes its
target there, with a new epoch, before its first step acts.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from controller import graph as graphs
from controller.actions import mode as modes
from controller.actions.base import State
from controller.actions.registry import action_for
from controller.aws import AwsSettings, Clients
from controller.contract import DegradedMode
from controller.desired import Desired
from controller.errors import (
    ConflictError,
    FailoverError,
    OutcomeUnknownError,
    PermanentStepError,
    PlanError,
    RunInterruptedError,
    StaleTokenError,
    TransientStepError,
    UsageError,
)
from controller.journal import Journal, Run, RunStatus, StepRecord, StepState, new_run_id
from controller.lease import Lease, LeaseKeeper, default_owner
from controller.manifest import Manifest
from controller.plan import build_plan
from controller.prechecks import Precheck, prechecks
from controller.retry import decide
from controller.spec import OnFailure, TargetLost, Topology
from controller.steps import FailoverPlan, Step

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
        return {
            **self.run.to_dict(),
            "prechecks": [{"name": p.name, "ok": p.ok, "detail": p.detail} for p in self.prechecks],
        }


class Executor:
    """Runs plans against real AWS (or the emulator) under the lease.

    Parameters
    ----------
    topology, manifest, clients : what to act on and how to reach it.
    journal : the control table (default: the manifest's).
    owner : this controller's name in the lease (default ``user@host:pid``).
    progress : called with a :class:`StepEvent` whenever a step changes state.
    max_workers : the steps of a level run on this many threads (1: one step at a time).
    accept_unknown_lag : let the replication-lag precheck pass when a table's lag cannot be
        read (no datapoint, or the source region does not answer); a lag known to be above
        the table's bound is refused either way.
    """

    def __init__(
        self,
        topology: Topology,
        manifest: Manifest,
        clients: Clients,
        *,
        journal: Journal | None = None,
        owner: str | None = None,
        progress: Progress | None = None,
        max_workers: int = 8,
        accept_unknown_lag: bool = False,
    ) -> None:
        self.accept_unknown_lag = accept_unknown_lag
        self.topology = topology
        self.manifest = manifest
        #: Reads (health, prechecks): no lease needed.
        self.read_clients = clients
        #: Reads that must fail fast (the lag precheck): the fence settings, no lease needed.
        self.probe_clients = Clients(
            endpoints=clients.endpoints,
            settings=FENCE_SETTINGS,
            hooks=clients.hooks,
            home=clients.home,
        )
        self.journal = journal or Journal(clients, manifest)
        self.keeper: LeaseKeeper | None = None
        # Every request an action makes first checks the lease (see _guard).
        guard = ("before-call", self._guard)
        self.clients = Clients(
            endpoints=clients.endpoints,
            settings=clients.settings,
            hooks=(*clients.hooks, guard),
            home=clients.home,
        )
        self.fence_clients = Clients(
            endpoints=clients.endpoints,
            settings=FENCE_SETTINGS,
            hooks=(*clients.hooks, guard),
            home=clients.home,
        )
        self.owner = owner or default_owner()
        self.progress = progress or (lambda event: None)
        self.max_workers = max(1, max_workers)
        self.policy = topology.policy
        self.graph = graphs.build(topology)

    # -- prechecks ---------------------------------------------------------------------------

    def prechecks(
        self,
        plan: FailoverPlan,
        *,
        resuming: str | None = None,
        kind: str = "failover",
        accept_unknown_lag: bool | None = None,
    ) -> list[Precheck]:
        """Check the target before touching anything (see :mod:`controller.prechecks`);
        ``accept_unknown_lag`` overrides the executor's for this check."""
        return prechecks(
            self.topology,
            self.manifest,
            self.read_clients,
            self.journal,
            plan,
            self.owner,
            resuming=resuming,
            lag_clients=self.probe_clients,
            accept_unknown_lag=self.accept_unknown_lag
            if accept_unknown_lag is None
            else accept_unknown_lag,
            kind=kind,
        )

    def desired(self) -> Desired:
        """The desired state as the control table holds it now."""
        return self.journal.desired(self.topology.regions.primary)

    # -- the lease ---------------------------------------------------------------------------

    def _hold(self, lease: Lease) -> LeaseKeeper:
        """Keep ``lease`` for this run: each action must find it held for its whole budget."""
        settings = self.clients.settings
        budget = settings.max_attempts * (settings.connect_timeout + settings.read_timeout) + 1.0
        self.keeper = LeaseKeeper(
            self.journal.leases,
            lease,
            self.policy.lease_seconds,
            min(budget, self.policy.lease_seconds / 2),
        )
        return self.keeper

    @contextmanager
    def holding(self) -> Iterator[Lease]:
        """Take the lease for work that is not a run (the reconciler's fixes); release it after.

        Raises
        ------
        LeaseHeldError
            Another controller holds the lease (exit code 3).
        """
        keeper = self._hold(self.journal.acquire(self.owner, self.policy.lease_seconds))
        try:
            yield keeper.lease
        finally:
            self._release()

    def _guard(self, **_: Any) -> None:
        """Just before an action's AWS request: the lease must be held (else stop acting)."""
        if self.keeper is None:
            raise StaleTokenError("no lease held: this controller may not act")
        self.keeper.check()

    def checked(
        self,
        plan: FailoverPlan,
        desired: Desired,
        *,
        kind: str,
        source_given: bool,
        expect_epoch: int | None,
    ) -> FailoverPlan:
        """The plan checked against the desired state read under the lease.

        The source is the region the control table names active: a ``--from`` that says
        otherwise is refused (exit 2), a source that was only guessed is replaced. A request
        decided on an older epoch is refused (exit 3): another run changed the active region
        since, and the decision must be taken again.
        """
        where = f"the control table names {desired.active} active (epoch {desired.epoch}" + (
            f", run {desired.run_id})" if desired.run_id else ")"
        )
        if expect_epoch is not None and desired.epoch != expect_epoch:
            raise ConflictError(
                f"the active region changed since this request was decided "
                f"(epoch {expect_epoch} -> {desired.epoch}): {where}; "
                "nothing changed, decide again"
            )
        if kind == "refence":
            if plan.target != desired.active:
                raise ConflictError(f"not re-fencing {plan.source} towards {plan.target}: {where}")
            return plan
        if plan.target == desired.active:
            raise UsageError(
                f"{plan.target} is already the active region: {where}; nothing to fail over"
            )
        if plan.source == desired.active:
            return plan
        if source_given:
            raise UsageError(
                f"--from {plan.source} disagrees with the control table: {where}; nothing changed"
            )
        return build_plan(
            self.topology,
            self.graph,
            target=plan.target,
            source=desired.active,
            unavailable=plan.unavailable,
        )

    # -- running -----------------------------------------------------------------------------

    def execute(
        self,
        plan: FailoverPlan,
        *,
        kind: str = "failover",
        since: float | None = None,
        source_given: bool = True,
        expect_epoch: int | None = None,
        accept_unknown_lag: bool | None = None,
    ) -> RunResult:
        """Take the lease, check, journal a new run and drive it to its end.

        ``since`` (a watcher's decision time): refuse when another run started after it, so
        that a decision taken before another controller acted is not carried out twice.
        ``source_given``: the plan's source was asked for (``--from``) and must be the active
        region; otherwise it is only a guess, replaced by the desired state's. ``expect_epoch``:
        the desired state's epoch the request was decided on. ``accept_unknown_lag``: this
        run's own answer to an unknown replication lag (default: the executor's).

        Raises
        ------
        LeaseHeldError
            Another controller holds the lease (exit code 3).
        ConflictError
            The active region changed since the request was decided (exit code 3).
        UsageError
            ``--from`` is not the active region, or the target already is (exit code 2).
        PlanError
            A precheck failed; nothing was touched.
        """
        lease = self.journal.acquire(self.owner, self.policy.lease_seconds)
        keeper = self._hold(lease)
        try:
            desired = self.desired()
            plan = self.checked(
                plan, desired, kind=kind, source_given=source_given, expect_epoch=expect_epoch
            )
            if since is not None:
                newer = [r for r in self.journal.runs(limit=5) if r.created >= since]
                if newer:
                    raise PlanError(
                        f"superseded: run {newer[0].id} ({newer[0].plan.source} -> "
                        f"{newer[0].plan.target}) started after this decision"
                    )
            checks = self.prechecks(plan, kind=kind, accept_unknown_lag=accept_unknown_lag)
            failed = [c for c in checks if not c.ok and c.name != "lease_free"]
            if failed:
                raise PlanError(
                    "prechecks failed, nothing touched: "
                    + "; ".join(f"{c.name}: {c.detail}" for c in failed)
                )
            changes = kind != "refence"
            run = self.journal.create_run(
                keeper.check(),
                new_run_id(),
                plan,
                kind=kind,
                epoch=desired.epoch + 1 if changes else 0,
            )
            if changes:
                self._make_desired(run, desired, plan.target)
            log.info(
                "run %s: %s -> %s, %d steps", run.id, plan.source, plan.target, len(plan.steps)
            )
            return RunResult(self._drive_on(run, origin=plan.source), checks)
        finally:
            self._release()

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
        keeper = self._hold(lease)
        try:
            run = self.journal.run(run_id)
            if run.status not in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
                raise UsageError(f"run {run_id} has already ended: {run.status.value}")
            desired = self.desired()
            if run.epoch and (desired.epoch != run.epoch or desired.active != run.plan.target):
                why = _not_resumable(run, desired)
                self.journal.finish_run(keeper.check(), run, RunStatus.FAILED, why)
                log.error("run %s ended: %s", run_id, why)
                raise ConflictError(f"run {run_id} cannot be resumed: {why}")
            self.journal.adopt_run(keeper.check(), run)
            log.info("resuming run %s (previous owner %s)", run_id, run.owner)
            return RunResult(self._drive_on(run, origin=run.plan.source))
        finally:
            self._release()

    def _make_desired(self, run: Run, desired: Desired, target: str) -> None:
        """Name ``target`` the desired region for ``run``, before any of its steps; when that
        write fails, end the run (best effort) so that it blocks no later run."""
        assert self.keeper is not None
        try:
            self.journal.set_desired(self.keeper.check(), desired, target, run.id)
        except OutcomeUnknownError as unknown:
            # It may land: the run stays in progress (no step acted), for the next controller
            # (``resume``, the reconciler) to continue when it did, or end when it did not.
            raise OutcomeUnknownError(
                f"run {run.id}, no step acted: {unknown.reason}",
                check=f"`failover status`; `failover resume {run.id}` continues the run or ends it",
            ) from None
        except FailoverError as exc:
            why = f"the desired state was not written ({exc}); no step acted"
            try:
                self.journal.finish_run(self.keeper.check(), run, RunStatus.FAILED, why)
            except FailoverError as also:
                log.warning("run %s not ended (%s): the next controller ends it", run.id, also)
            raise

    def _release(self) -> None:
        keeper, self.keeper = self.keeper, None
        if keeper is None or keeper.lost:
            return
        try:
            self.journal.release(keeper.lease)
        except FailoverError as exc:
            log.warning("could not release the lease: %s", exc)

    def _drive_on(self, run: Run, *, origin: str) -> Run:
        """Drive ``run``; when its target stops answering mid-run, end it ``failed`` and move on
        (``policy.on_target_lost``) to the next healthy standby or back to a healthy ``origin``
        (the first run's source), each move a new run with a new epoch, under the same lease.

        Raises
        ------
        PlanError
            The target stopped answering and no region is healthy to move to: the run is
            journalled ``failed`` (never left ``running``), the control table still names the
            lost target, and the lease is released.
        """
        lost: set[str] = set()
        while True:
            try:
                return self._drive(run)
            except TargetLostError as gone:
                assert self.keeper is not None
                lost.add(gone.region)
                why = f"target {gone.region} stopped answering mid-run ({gone.detail})"
                self.journal.finish_run(self.keeper.check(), run, RunStatus.FAILED, why)
                log.error("run %s: %s", run.id, why)
                self._mark_fenced(run.plan.source)  # its components were fenced by the run
                nxt = self._next_run(run, origin, lost)
                if nxt is None:
                    raise PlanError(
                        f"run {run.id} failed: {why}; no healthy region to move "
                        f"to, the control table still names {gone.region}"
                    ) from None
                run = nxt

    def _mark_fenced(self, region: str) -> None:
        """Write ``region``'s mode ``fenced``, best effort (it may not answer)."""
        try:
            modes.set_region_mode(
                self.fence_clients, self.topology, self.manifest, region, modes.FENCED
            )
        except (TransientStepError, PermanentStepError) as exc:
            log.warning("%s mode not written (%s): fence it again when it is back", region, exc)

    def _next_run(self, lost_run: Run, origin: str, lost: set[str]) -> Run | None:
        """A new run from the lost target to the first healthy candidate, or None."""
        assert self.keeper is not None
        standbys = [r for r in self.topology.regions.all if r != origin]
        order = (
            [*standbys, origin]
            if self.policy.on_target_lost is TargetLost.NEXT_STANDBY
            else [origin, *standbys]
        )
        lost_target = lost_run.plan.target
        for candidate in [r for r in order if r not in lost]:
            plan = build_plan(
                self.topology,
                self.graph,
                target=candidate,
                source=lost_target,
                unavailable=lost_run.plan.unavailable,
            )
            failed = [
                c
                for c in self.prechecks(plan, kind=lost_run.kind)
                if not c.ok and c.name != "lease_free"
            ]
            if failed:
                log.warning(
                    "not moving to %s: %s",
                    candidate,
                    "; ".join(f"{c.name}: {c.detail}" for c in failed),
                )
                continue
            desired = self.desired()
            run = self.journal.create_run(
                self.keeper.check(), new_run_id(), plan, kind=lost_run.kind, epoch=desired.epoch + 1
            )
            self._make_desired(run, desired, candidate)
            log.warning("run %s: moving on from %s to %s", run.id, lost_target, candidate)
            return run
        return None

    def _drive(self, run: Run) -> Run:
        """Drive ``run``; on SIGINT or SIGTERM, let the steps in flight end, journal the run
        ``interrupted`` and stop (the caller releases the lease)."""
        try:
            return self._levels(run)
        except KeyboardInterrupt as exc:
            assert self.keeper is not None
            why = str(exc) or "interrupted"
            log.warning("run %s %s: journalling it interrupted", run.id, why)
            try:
                self.journal.finish_run(self.keeper.check(), run, RunStatus.INTERRUPTED, why)
            except FailoverError as lost:
                log.error("run %s: could not journal the interruption: %s", run.id, lost)
            raise RunInterruptedError(run.id, why) from None

    def _levels(self, run: Run) -> Run:
        assert self.keeper is not None
        plan = run.plan
        degraded = self._degraded(run)
        unreachable: set[str] = set()
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="step") as pool:
            for level in plan.levels:
                lease = self.keeper.renew()
                todo = [
                    s
                    for s in level
                    if not run.steps[s.id].state.finished
                    and run.steps[s.id].state != StepState.FAILED
                ]
                self._start(run, lease, todo)
                futures = [pool.submit(self._step, run, s, degraded, unreachable) for s in todo]
                for future in futures:
                    future.result()
                failed = [
                    s
                    for s in level
                    if run.steps[s.id].state == StepState.FAILED and s.phase == "activate"
                ]
                if plan.target in unreachable and failed:
                    raise TargetLostError(plan.target, run.steps[failed[0].id].error)
                for step in failed:
                    if self.topology.components[step.component].on_failure == OnFailure.ROLLBACK:
                        return self._rollback(run, step)
                    self._degrade(run, step, degraded)
        return self._finish(run, degraded, unreachable)

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

    def _step(
        self, run: Run, step: Step, degraded: dict[str, DegradedMode], unreachable: set[str]
    ) -> None:
        record = run.steps[step.id]
        record.started = time.time()
        self._announce(run, step)
        fence = step.phase == "fence"
        clients = self.fence_clients if fence else self.clients
        action = action_for(self.topology, self.manifest, clients, step.component, step.region)
        if fence and step.region in unreachable and not action.global_resource:
            return self._end(
                run, step, StepState.UNVERIFIED, f"{step.region} unreachable: not fenced"
            )
        mode = degraded.get(step.component) if not fence else None
        retries = self.policy.step_retries
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
            outcome = decide(
                error,
                attempt=attempt,
                retries=retries,
                fence=fence,
                global_resource=action.global_resource,
                jitter=0.5 + random.random(),
            )
            if outcome.region_unreachable:
                unreachable.add(step.region)
            if outcome.final:
                return self._end(run, step, outcome.state, outcome.error)
            log.warning(
                "%s: attempt %d failed (%s); retrying in %.1fs",
                step.id,
                attempt + 1,
                outcome.error,
                outcome.delay,
            )
            time.sleep(outcome.delay)

    def _end(self, run: Run, step: Step, state: StepState, error: str = "") -> None:
        record = run.steps[step.id]
        record.state, record.ended, record.error = state, time.time(), error
        self._journal(run, record, step)

    def _journal(self, run: Run, record: StepRecord, step: Step) -> None:
        assert self.keeper is not None
        self.journal.record_step(self.keeper.check(), run.id, record)
        self._announce(run, step)

    def _announce(self, run: Run, step: Step) -> None:
        """Tell the progress callback the step's state as the run holds it."""
        record = run.steps[step.id]
        self.progress(StepEvent(run.id, step, record.state, record.attempts, record.error))

    # -- endings -----------------------------------------------------------------------------

    def _finish(self, run: Run, degraded: dict[str, DegradedMode], unreachable: set[str]) -> Run:
        assert self.keeper is not None
        plan = run.plan
        self._not_serving(run)
        try:
            modes.set_region_mode(
                self.clients, self.topology, self.manifest, plan.target, modes.ACTIVE
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
                    self.fence_clients, self.topology, self.manifest, plan.source, modes.FENCED
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
            if s.phase == "activate" and run.steps[s.id].state == StepState.FAILED
        }
        for component in sorted({*plan.unavailable, *failed}):
            ref = self.manifest.regions.get(plan.target)
            named = ref.components.get(component) if ref else None
            name = (named.mode_parameter if named else None) or (
                self.topology.component_mode_parameter(component, plan.target)
            )
            try:
                modes.put(self.clients, plan.target, name, modes.STANDBY)
            except Exception as exc:  # the next reconcile sees it not serving
                log.warning("%s in %s: mode not written (%s)", component, plan.target, exc)

    def _rollback(self, run: Run, failed: Step) -> Run:
        """Undo the target's activations (dependents first) and re-activate the source."""
        plan = run.plan
        log.error("%s failed and its policy is rollback: rolling the target back", failed.id)
        done = [
            s
            for s in plan.steps
            if s.phase == "activate" and run.steps[s.id].state == StepState.DONE
        ]
        for step in reversed(done):
            self._best_effort(
                lambda s=step: action_for(  # type: ignore[misc]
                    self.topology, self.manifest, self.clients, s.component, s.region
                ).deactivate()
            )
        for step in [s for s in plan.steps if s.phase == "activate"]:
            self._best_effort(
                lambda s=step: action_for(  # type: ignore[misc]
                    self.topology, self.manifest, self.fence_clients, s.component, plan.source
                ).activate()
            )
        assert self.keeper is not None
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

    def _best_effort(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except (TransientStepError, PermanentStepError) as exc:
            log.warning("rollback step failed: %s", exc)


def refuse_already_active(journal: Journal, desired: Desired, target: str) -> None:
    """Say why a failover to ``target``, which the control table already names active, is not
    run: a run to it is still in progress (exit code 3), or it is simply active (exit 2).

    Raises
    ------
    ConflictError
        A run to ``target`` is in progress (a watcher's, or another operator's).
    UsageError
        ``target`` is the active region and no run is moving to it.
    """
    where = f"the control table names {target} active (epoch {desired.epoch})"
    running_id = journal.current_run_id()
    running = journal.run(running_id) if running_id else None
    if running is not None and running.plan.target == target:
        raise ConflictError(
            f"run {running.id} ({running.plan.source} -> {target}, by {running.owner}) is in "
            f"progress: {target} is becoming the active region; nothing changed (failover "
            f"runs shows it; failover resume {running.id} if its controller died)"
        )
    raise UsageError(f"{target} is already the active region: {where}; nothing to fail over")


class TargetLostError(Exception):
    """A run's target stopped answering mid-run (internal: :meth:`Executor._drive_on` moves on)."""

    def __init__(self, region: str, detail: str) -> None:
        self.region = region
        self.detail = detail
        super().__init__(f"{region} stopped answering: {detail}")


__all__ = [
    "Executor",
    "Precheck",
    "RunResult",
    "StaleTokenError",
    "StepEvent",
    "refuse_already_active",
]


def _not_resumable(run: Run, desired: Desired) -> str:
    """Why ``run`` must end instead of resuming: the control table does not name its target
    at its epoch. Ending it never acts on AWS; it only stops it from blocking every later run
    (``no_run_in_progress``), since the reconciler converges AWS on the desired state anyway.

    A run whose epoch is the next one while the desired state still names its source was
    journalled by a controller that stopped before it wrote the desired state, which it does
    before any step: nothing was touched, and its decision (taken on health that may have
    changed since) is not replayed; a watcher that still sees the source failing decides again.
    """
    if desired.epoch == run.epoch - 1 and desired.active == run.plan.source:
        return (
            f"its controller stopped before it made {run.plan.target} the desired region "
            f"(the control table still names {desired.active} at epoch {desired.epoch}); "
            "no step acted"
        )
    return (
        f"superseded: the control table names {desired.active} active (epoch "
        f"{desired.epoch}, this run set epoch {run.epoch})"
    )
