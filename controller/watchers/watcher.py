"""The watcher: turns health into failover decisions, carefully.

Called by ``failover watch`` and the demo. Each evaluation reads every region's health; the
active region counts as bad only when a quorum of independent probes agree (the control plane
does not answer, an alarm fires, Route 53's check fails, the HTTP probe fails). It is declared
failed only after N consecutive bad evaluations (hysteresis), more when it has been flapping.
Then it runs the same plan and executor as ``failover execute``, under the same lease, so that of
several watchers exactly one acts; then the application's cooldown. When it may act (the
threshold, the cooldown, an unknown lag) is :mod:`controller.watchers.pacing`'s. It never fails
back by itself unless the topology's policy says so, and starts no run while automation is
paused. Every evaluation that starts no run ends with the reconciler
(:mod:`controller.engine.reconcile`), first on the same read of the region modes, on a read of
every component when those disagree, when a region it saw not answering answers again, until
a full read has covered it (a fence write lost in its outage may land as it resumes:
:mod:`controller.watchers.owed`), and every few rounds: a region back from an outage is fenced
(also while paused: fencing only removes writers), drift in the active region undone, a run
whose controller died taken over.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from controller import clock as aws_clock
from controller import health
from controller.aws import Clients
from controller.controltable.glance import Glance
from controller.controltable.journal import Journal, RunKind, RunStatus
from controller.controltable.watchstate import WatchState
from controller.engine.executor import Executor, RunResult
from controller.engine.fixes import FixAction
from controller.engine.prechecks import lag_check
from controller.engine.reconcile import observe, reconcile
from controller.errors import (
    ConflictError,
    FailoverError,
    LeaseHeldError,
    PlanError,
    RunInterruptedError,
    UsageError,
)
from controller.plan.planner import Planner
from controller.topology import Topology
from controller.topology.manifest import Manifest
from controller.watchers import pacing, signals
from controller.watchers.decisions import Decision, Evaluate, Evaluation, WatchAction
from controller.watchers.owed import OwedReads
from controller.watchers.pacing import AUTOMATION_ACCEPTS_UNKNOWN_LAG, accepts_unknown_lag

log = logging.getLogger(__name__)

#: How many recent evaluations the flap detector remembers.
FLAP_WINDOW = 12
#: Every this many evaluations the reconciler reads every component (drift), not only modes:
#: counted over the watcher's item, as a deployed watcher lives one invocation of one evaluation
#: or a few. Deployed, the sentinel's every 5 minutes and a calm region's every 30. A full read
#: (no alarms: the reconciler decides on states and modes) is about 90 calls and 2 AWS s more
#: than an evaluation reading the modes: $0.13 a month for the example's watchers
#: (``bench/cost.py``), three times that every 10th, with the total $9.4-9.9 from run to run.
DEEP_EVERY = 30


@dataclass
class Watcher:
    """Decides, from consecutive evaluations, when to fail over, and does it.

    Parameters
    ----------
    topology, manifest, clients : the deployment.
    http_probe : ``probe(region, url) -> ok`` of each region's health route (optional).
    executor : runs the failover (default: a new :class:`Executor`).
    evaluate : replaces the health read (tests feed evaluations this way).
    clock : seconds, for the cooldown and the decision times.
    """

    topology: Topology
    manifest: Manifest
    clients: Clients
    http_probe: health.HttpProbe | None = None
    executor: Executor | None = None
    evaluate: Evaluate | None = None
    clock: Callable[[], float] = aws_clock.now
    on_run: Callable[[RunResult], None] | None = None
    consecutive_bad: int = field(default=0, init=False)
    last_action: float | None = field(default=None, init=False)
    _history: deque[bool] = field(default_factory=lambda: deque(maxlen=FLAP_WINDOW), init=False)
    _good_primary: int = field(default=0, init=False)
    _epoch: int = field(default=0, init=False)
    _report: health.StatusReport | None = field(default=None, init=False)
    _rounds: int = field(default=0, init=False)
    _owed: OwedReads = field(default_factory=OwedReads, init=False)
    _glance: Glance | None = field(default=None, init=False)  # the evaluation's read of it
    #: The active region last read, the regions whose alarms the last read covered (signals).
    _active_seen: str | None = field(default=None, init=False)
    _alarms_read: frozenset[str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.policy = self.topology.policy
        self.journal = Journal(self.clients, self.manifest)
        self.planner = Planner(self.topology)  # the graph: built at the first plan
        self._alarm_reads = signals.AlarmReads(self.topology, self.manifest)

    # -- remembering (a deployed watcher lives one invocation at a time) ----------------------

    def restore(self, state: WatchState) -> None:
        """Carry on from ``state``: the hysteresis of an earlier invocation."""
        self.consecutive_bad = state.consecutive_bad
        self._history = deque(state.history, maxlen=FLAP_WINDOW)
        self.last_action = state.last_action
        self._good_primary = state.good_primary
        self._rounds = state.evaluations  # DEEP_EVERY counts the item's, not the invocation's
        self._active_seen = str(state.decision.get("active_region") or "") or None
        self._owed.restore(state)

    def remember(
        self, region: str, decision: Decision, *, owner: str = "", evaluations: int = 0
    ) -> WatchState:
        """What the next invocation needs to carry on, with ``decision`` as the last one."""
        return WatchState(
            region,
            self.consecutive_bad,
            tuple(self._history),
            self.last_action,
            self._good_primary,
            evaluations,
            decision.time,
            owner,
            decision.to_dict(),
            self._owed.saved(),
        )

    # -- evaluating --------------------------------------------------------------------------

    def read(self, alarms_of: frozenset[str] | None = None) -> Evaluation:
        """Evaluate every region now (the default ``evaluate``): its signals and mode, not every
        component (the reconciler reads those when the modes disagree, or every few rounds), and
        the alarms of ``alarms_of`` (default: those the decision may need, :mod:`.signals`)."""
        if alarms_of is None:
            choosing = self.consecutive_bad + 1 >= self.threshold()
            alarms_of = signals.alarm_regions(self.topology, self._active_seen, choosing=choosing)
        manifest = self._alarm_reads.manifest(alarms_of)
        report = health.status(
            self.topology, manifest, self.clients, http_probe=self.http_probe, components=False
        )
        self._report, self._alarms_read = report, alarms_of
        healths = {n: r.health for n, r in report.regions.items()}
        votes = signals.votes(report, alarms_of)
        return Evaluation(self.clock(), report.active_region, healths, votes, self.policy.quorum)

    # -- deciding ----------------------------------------------------------------------------

    def threshold(self) -> int:
        """The bad evaluations in a row that fail the active region (:func:`pacing.threshold`)."""
        return pacing.threshold(self.policy.failure_threshold, self._history)

    def step(self) -> Decision:
        """Evaluate once and decide; run a failover when the decision is to."""
        self._report, self._alarms_read = None, None
        ev = (self.evaluate or self.read)()
        # The active region is the control table's desired state, not what the regions say:
        # a region that came back still saying active is stale (a new one: read its alarms).
        self._glance = glance = self.journal.glance(self.topology.regions.primary)
        desired = glance.desired
        self._active_seen = desired.active
        if self._alarms_read is not None and desired.active not in self._alarms_read:
            ev = self.read(frozenset(self.topology.regions.all))
        returning = self._owed.due(ev.health)
        self._epoch = desired.epoch
        ev = replace(ev, active=desired.active)
        active = desired.active
        bad = ev.bad(active)
        threshold = self.threshold()
        self._history.append(bad)
        self.consecutive_bad = self.consecutive_bad + 1 if bad else 0
        decision = self._decide(ev, glance, bad, threshold)
        if decision.action.converges:
            decision = self._reconcile(decision, returning)
        log.info(
            "watch decision: %s (%s)",
            decision.action,
            decision.reason,
            extra={"event": decision.to_dict()},
        )
        return decision

    def _decide(self, ev: Evaluation, glance: Glance, bad: bool, threshold: int) -> Decision:
        active = glance.desired.active

        def say(action: WatchAction, reason: str, **kw: Any) -> Decision:
            return Decision(ev.time, action, reason, active, ev.health, self.consecutive_bad, **kw)

        automation = glance.automation
        if automation["paused"]:
            return say(
                WatchAction.PAUSED,
                f"automation paused by {automation['by'] or '?'}"
                + (f": {automation['reason']}" if automation["reason"] else ""),
            )
        left, why = pacing.cooldown_left(
            self.policy.cooldown_seconds, glance.desired, self.clock(), self.last_action, ev.time
        )
        if left > 0:
            return say(WatchAction.COOLDOWN, f"cooling down: {why} ({left:.0f}s left)")
        if not bad:
            return self._maybe_failback(ev, active, say)
        if self.consecutive_bad < threshold:
            return say(
                WatchAction.WATCH,
                f"{active} bad {self.consecutive_bad}/{threshold} "
                f"({', '.join(k for k, v in ev.votes[active].items() if v)})",
            )
        target = self._target(ev, active)
        if target is None:
            return say(WatchAction.HOLD, f"{active} failed but no healthy region to fail over to")
        return self._failover(
            ev, active, target, say, f"{active} failed {self.consecutive_bad} evaluations in a row"
        )

    def _maybe_failback(
        self, ev: Evaluation, active: str, say: Callable[..., Decision]
    ) -> Decision:
        primary = self.topology.regions.primary
        if not self.policy.auto_failback or active == primary:
            return say(WatchAction.NONE, f"{active} healthy")
        self._good_primary = self._good_primary + 1 if ev.good(primary) else 0
        if self._good_primary < self.threshold():
            return say(
                WatchAction.NONE,
                f"{active} healthy; primary good "
                f"{self._good_primary}/{self.threshold()} for failback",
            )
        # The returning region must have the data first: read the lag before taking the lease
        # (the run's precheck reads it again under the lease, and that read decides).
        plan = self.planner.plan(source=active, target=primary)
        lag = lag_check(
            self.topology,
            self.manifest,
            self.clients,
            plan,
            accept_unknown=False,
            kind=RunKind.FAILBACK,
        )
        if not lag.ok:
            return say(
                WatchAction.WAITING, f"{primary} healthy again; failback waits: {lag.detail}"
            )
        return self._failover(
            ev, active, primary, say, "primary healthy again: failback", kind=RunKind.FAILBACK
        )

    def _target(self, ev: Evaluation, active: str) -> str | None:
        """The first good region in the spec's preference order (standbys, then the primary)."""
        return next((r for r in self.topology.regions.targets(active) if ev.good(r)), None)

    def _failover(
        self,
        ev: Evaluation,
        source: str,
        target: str,
        say: Callable[..., Decision],
        reason: str,
        kind: RunKind = RunKind.FAILOVER,
    ) -> Decision:
        plan = self.planner.plan(source=source, target=target)
        try:
            result = self._executor().execute(
                plan,
                kind=kind,
                since=ev.time,
                expect_epoch=self._epoch,
                accept_unknown_lag=accepts_unknown_lag(kind),
            )
        except RunInterruptedError:
            raise  # SIGINT or SIGTERM: the watcher stops, it does not decide again
        except LeaseHeldError as exc:
            return say(
                WatchAction.LEASE_HELD, f"another controller acts: {exc.holder}", target=target
            )
        except (PlanError, ConflictError, UsageError) as exc:
            return say(WatchAction.REFUSED, str(exc), target=target)
        except FailoverError as exc:
            self.last_action = ev.time
            return say(WatchAction.ERROR, str(exc), target=target)
        self.last_action = ev.time
        self.consecutive_bad = 0
        self._good_primary = 0
        if self.on_run:
            self.on_run(result)
        return say(
            WatchAction(kind), reason, target=target, run_id=result.run.id, status=result.run.status
        )

    def _executor(self) -> Executor:
        """The executor a decision runs with: the one given, else a new one for automation."""
        return self.executor or Executor(
            self.topology,
            self.manifest,
            self.clients,
            accept_unknown_lag=AUTOMATION_ACCEPTS_UNKNOWN_LAG,
        )

    def _reconcile(self, decision: Decision, returning: frozenset[str]) -> Decision:
        """Converge every region to the desired state (fencing only, while paused).

        Runs at every evaluation that did not start a run: a region back from an outage is
        fenced, drift in the active region undone, a run whose controller died taken over.
        """
        paused = decision.action == WatchAction.PAUSED
        self._rounds += 1
        executor = self._executor()
        try:
            if self._report is not None and self._rounds % DEEP_EVERY and not returning:
                # First the evaluation's own read (modes, no components, the lease item): a
                # full read only when the modes disagree, one is owed, and every DEEP_EVERY.
                fixes = observe(
                    self.topology,
                    self.manifest,
                    self.clients,
                    self.journal,
                    fence_only=paused,
                    report=self._report,
                    known=self._glance,
                ).fixes
                if all(f.action == FixAction.REPORT for f in fixes):
                    return decision
            # every component, no alarm: the reconciler decides on states and modes alone
            full = health.status(
                self.topology, self._alarm_reads.manifest(frozenset()), self.clients
            )
            result = reconcile(
                self.topology,
                self.manifest,
                self.clients,
                journal=self.journal,
                fence_only=paused,
                report=full,
                executor=executor,
            )
            self._owed.paid(result.settled)
        except RunInterruptedError:
            raise
        except LeaseHeldError as exc:
            return (
                decision
                if decision.action != WatchAction.NONE
                else replace(
                    decision,
                    action=WatchAction.LEASE_HELD,
                    reason=f"another controller acts: {exc.holder}",
                )
            )
        except FailoverError as exc:
            log.warning("reconcile: %s", exc)
            return replace(decision, action=WatchAction.ERROR, reason=f"reconcile: {exc}")
        tried = [f for i, f in enumerate(result.fixes) if i in result.outcomes]
        if not tried:
            return decision
        regions = sorted({f.region for f in tried})
        failed = result.failed
        reason = (
            f"{len(tried)} fixes towards {result.desired.active} (epoch "
            f"{result.desired.epoch}) in {', '.join(regions)}"
            + (f", {len(failed)} failed" if failed else "")
            + (f"; {decision.reason}" if paused else "")
        )
        run = next((f.run_id for f in tried if f.run_id), None)
        return replace(
            decision,
            action=WatchAction.RECONCILE,
            reason=reason,
            target=regions[0],
            run_id=run,
            status=RunStatus.FAILED if failed else RunStatus.COMPLETED,
        )

    # -- looping -----------------------------------------------------------------------------

    def run(
        self,
        interval: float,
        *,
        iterations: int | None = None,
        stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = aws_clock.sleep,
    ) -> Iterator[Decision]:
        """Evaluate every ``interval`` seconds, yielding each decision."""
        count = 0
        while iterations is None or count < iterations:
            started = aws_clock.monotonic()
            yield self.step()
            count += 1
            if stop is not None and stop():
                return
            if iterations is None or count < iterations:
                sleep(max(0.0, interval - (aws_clock.monotonic() - started)))
