"""The executor: a run's life cycle under the lease, from the prechecks to its end.

Called by the CLI (``execute``, ``resume``, ``failback``), the reconciler and the watcher. The
lease is held from the prechecks to the end, renewed before every level, and checked just before
every AWS request the steps make (:class:`~controller.controltable.lease.LeaseKeeper`, through
:class:`~controller.engine.guarded.RunClients`): a controller that cannot renew it stops acting
at once. A run's source is the active region the control table's desired state names, read
under the lease (:mod:`controller.engine.policy`); the run writes its target there, with a new
epoch, before its first step acts. The levels themselves are driven by
:class:`~controller.engine.levels.Driver`; a target lost mid-run moves the run on here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from controller.aws import Clients
from controller.controltable.desired import Desired
from controller.controltable.journal import Journal, Run, RunKind, RunStatus, new_run_id
from controller.controltable.lease import Lease, LeaseKeeper, default_owner
from controller.engine import policy
from controller.engine.events import Progress, RunResult, StepEvent
from controller.engine.guarded import RunClients
from controller.engine.levels import Driver
from controller.engine.prechecks import (
    Lags,
    Precheck,
    describe,
    lags_ahead,
    prechecks,
    refusing,
    seen,
)
from controller.engine.silence import Silence
from controller.errors import (
    ConflictError,
    FailoverError,
    OutcomeUnknownError,
    PlanError,
    RunInterruptedError,
    StaleTokenError,
    TargetLostError,
    UsageError,
)
from controller.plan.planner import Planner
from controller.plan.steps import FailoverPlan
from controller.topology import Topology
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)


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
        self.journal = journal or Journal(clients, manifest)
        self.keeper: LeaseKeeper | None = None
        # Every request an action makes first checks the lease (see _guard).
        via = RunClients.around(clients, self._guard)
        #: Reads (health, prechecks): no lease needed.
        self.read_clients = via.read
        #: Reads that must fail fast (the lag precheck): the fence settings, no lease needed.
        self.probe_clients = via.probe
        #: Acting: every request checks the lease first.
        self.clients = via.act
        #: Fencing a source that may be gone: one attempt, short timeouts, the lease checked.
        self.fence_clients = via.fence
        self.owner, self.progress = owner or default_owner(), progress or (lambda event: None)
        self.max_workers = max(1, max_workers)
        self.policy = topology.policy
        #: The graph and the plans, made at the first run (a watcher makes an executor per call).
        self.planner = Planner(topology)

    # -- prechecks ---------------------------------------------------------------------------

    def prechecks(
        self,
        plan: FailoverPlan,
        *,
        resuming: str | None = None,
        kind: RunKind = RunKind.FAILOVER,
        accept_unknown_lag: bool | None = None,
        lags_read: Lags | None = None,
    ) -> list[Precheck]:
        """Check the target before touching anything (:mod:`controller.engine.prechecks`), with
        ``accept_unknown_lag`` (default: the executor's) and the lags read ahead, if any."""
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
            lags_read=lags_read,
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

    def _guard(self) -> None:
        """Just before an action's AWS request: the lease must be held (else stop acting)."""
        if self.keeper is None:
            raise StaleTokenError("no lease held: this controller may not act")
        self.keeper.check()

    def checked(
        self, plan: FailoverPlan, desired: Desired, *, source_given: bool, expect_epoch: int | None
    ) -> FailoverPlan:
        """The plan checked against the desired state read under the lease (see
        :func:`controller.engine.policy.checked`)."""
        return policy.checked(
            self.planner,
            plan,
            desired,
            source_given=source_given,
            expect_epoch=expect_epoch,
        )

    # -- running -----------------------------------------------------------------------------

    def execute(
        self,
        plan: FailoverPlan,
        *,
        kind: RunKind = RunKind.FAILOVER,
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
        ahead, guessed = lags_ahead(self.topology, self.manifest, self.probe_clients, plan), plan
        lease = self.journal.acquire(self.owner, self.policy.lease_seconds)
        keeper = self._hold(lease)
        try:
            desired = self.desired()
            plan = self.checked(plan, desired, source_given=source_given, expect_epoch=expect_epoch)
            newer = (
                policy.superseded(self.journal.runs(limit=5), since) if since is not None else None
            )
            if newer:
                raise PlanError(newer)
            read = ahead.result() if plan.source == guessed.source else None  # else a wrong guess's
            checks = self.prechecks(
                plan, kind=kind, accept_unknown_lag=accept_unknown_lag, lags_read=read
            )
            if failed := refusing(checks):
                raise PlanError(f"prechecks failed, nothing touched: {describe(failed)}")
            lags, silence = seen(checks)
            epoch, held = desired.epoch + 1, keeper.check()
            run = self.journal.create_run(
                held, new_run_id(), plan, kind=kind, epoch=epoch, rpo=lags, decided=since
            )
            self._make_desired(run, desired, plan.target)
            log.info(
                "run %s: %s -> %s, %d steps", run.id, plan.source, plan.target, len(plan.steps)
            )
            return RunResult(self._drive_on(run, origin=plan.source, silence=silence), checks)
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
                why = policy.not_resumable(run, desired)
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

    def _driver(self) -> Driver:
        """What drives this run's levels, under the lease this controller holds."""
        assert self.keeper is not None
        return Driver(
            self.topology,
            self.manifest,
            self.clients,
            self.fence_clients,
            self.journal,
            self.keeper,
            self.planner.graph,
            self.progress,
            self.max_workers,
        )

    def _release(self) -> None:
        keeper, self.keeper = self.keeper, None
        if keeper is None or keeper.lost:
            return
        try:
            self.journal.release(keeper.lease)
        except FailoverError as exc:
            log.warning("could not release the lease: %s", exc)

    def _drive_on(self, run: Run, *, origin: str, silence: Silence | None = None) -> Run:
        """Drive ``run``; when its target stops answering mid-run, end it ``failed`` and move on
        (``policy.on_target_lost``) to the next healthy standby or back to a healthy ``origin``
        (the first run's source), each move a new run with a new epoch, under the same lease.
        ``silence``: the regions the prechecks found not answering.

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
                return self._drive(run, silence)
            except TargetLostError as gone:
                assert self.keeper is not None
                lost.add(gone.region)
                why = f"target {gone.region} stopped answering mid-run ({gone.detail})"
                self.journal.finish_run(self.keeper.check(), run, RunStatus.FAILED, why)
                log.error("run %s: %s", run.id, why)
                self._driver().mark_fenced(run.plan.source)  # fenced by the run
                nxt, silence = self._next_run(run, origin, lost)
                if nxt is None:
                    raise PlanError(
                        f"run {run.id} failed: {why}; no healthy region to move "
                        f"to, the control table still names {gone.region}"
                    ) from None
                assert silence is not None
                silence.mark(gone.region, why)  # the new run's source: sent nothing more
                run = nxt

    def _next_run(
        self, lost_run: Run, origin: str, lost: set[str]
    ) -> tuple[Run | None, Silence | None]:
        """A new run from the lost target to the first healthy candidate (or None), with what
        its prechecks found not answering."""
        assert self.keeper is not None
        lost_target = lost_run.plan.target
        for candidate in policy.moving_on(self.topology, origin, lost):
            plan = self.planner.plan(
                target=candidate,
                source=lost_target,
                unavailable=lost_run.plan.unavailable,
            )
            checks = self.prechecks(plan, kind=lost_run.kind)
            if failed := refusing(checks):
                log.warning("not moving to %s: %s", candidate, describe(failed))
                continue
            desired, (lags, silence) = self.desired(), seen(checks)
            epoch = desired.epoch + 1
            run = self.journal.create_run(
                self.keeper.check(), new_run_id(), plan, kind=lost_run.kind, epoch=epoch, rpo=lags
            )
            self._make_desired(run, desired, candidate)
            log.warning("run %s: moving on from %s to %s", run.id, lost_target, candidate)
            return run, silence
        return None, None

    def _drive(self, run: Run, silence: Silence | None = None) -> Run:
        """Drive ``run``; on SIGINT or SIGTERM, let the steps in flight end, journal the run
        ``interrupted`` and stop (the caller releases the lease)."""
        try:
            return self._driver().drive(run, silence)
        except KeyboardInterrupt as exc:
            assert self.keeper is not None
            why = str(exc) or "interrupted"
            log.warning("run %s %s: journalling it interrupted", run.id, why)
            try:
                self.journal.finish_run(self.keeper.check(), run, RunStatus.INTERRUPTED, why)
            except FailoverError as lost:
                log.error("run %s: could not journal the interruption: %s", run.id, lost)
            raise RunInterruptedError(run.id, why) from None


__all__ = ["Executor", "Precheck", "RunResult", "StaleTokenError", "StepEvent"]
