"""The watcher: turns health into failover decisions, carefully.

Called by ``failover watch`` and the demo. Each evaluation reads every region's health; the
active region counts as bad only when a quorum of independent probes agree (the control plane
does not answer, an alarm fires, Route 53's check fails, the HTTP probe fails). It is declared
failed only after N consecutive bad evaluations (hysteresis), more when it has been flapping.
Then it runs the same plan and executor as ``failover execute``, under the same lease, so that of
several watchers exactly one acts; then a cooldown, which is the application's: no watcher starts
a run within ``cooldown_seconds`` of the last change of the active region the control table
records, whoever made it. It never fails back by itself unless the topology's policy says so,
and starts no run while automation is paused. Every evaluation that
starts no run ends with the reconciler (:mod:`controller.reconcile`), first on the same read of
the region modes, on a read of every component when those disagree, when a region answers again
(a fence write lost in its outage may land as it resumes), and every few rounds: a region
back from an outage is fenced (also while paused: fencing only removes writers), drift in the
active region undone, a run whose controller died taken over.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from controller import graph as graphs
from controller import health
from controller.aws import Clients
from controller.desired import Desired
from controller.errors import (
    ConflictError,
    FailoverError,
    LeaseHeldError,
    PlanError,
    RunInterruptedError,
    UsageError,
)
from controller.executor import Executor, RunResult
from controller.journal import Journal
from controller.manifest import Manifest
from controller.plan import build_plan
from controller.prechecks import lag_check
from controller.reconcile import REPORT, observe, reconcile
from controller.spec import Topology
from controller.watchstate import WatchState

log = logging.getLogger(__name__)

#: Automation fails over when the source region fails, which is exactly when its replication
#: metrics cannot be read: an unknown lag does not stop it (a lag known to be above bound still
#: does). A failback's source is the healthy active region, whose metrics answer: an unknown lag
#: there means nothing says the returning region has the data, and automation never fails back
#: on it (:func:`accepts_unknown_lag`).
AUTOMATION_ACCEPTS_UNKNOWN_LAG = True

#: How many recent evaluations the flap detector remembers.
FLAP_WINDOW = 12
#: Every this many evaluations the reconciler reads every component (drift), not only modes.
DEEP_EVERY = 10
#: Decisions after which the reconciler runs (a run that was started converges by itself).
CONVERGE_AFTER = frozenset({"none", "paused", "watch", "cooldown", "hold", "waiting"})


def accepts_unknown_lag(kind: str) -> bool:
    """Whether an automated run of ``kind`` may start with a replication lag nobody can read.

    >>> accepts_unknown_lag("failover"), accepts_unknown_lag("failback")
    (True, False)
    """
    return AUTOMATION_ACCEPTS_UNKNOWN_LAG and kind != "failback"


@dataclass(frozen=True)
class Evaluation:
    """One look at every region: its health and each probe's vote (True: the probe says bad)."""

    time: float
    active: str | None
    health: dict[str, str]
    votes: dict[str, dict[str, bool]]
    quorum: int
    modes: dict[str, str | None] = field(default_factory=dict)

    def stale(self) -> list[str]:
        """Reachable regions that still say ``active`` although another region is: they came
        back from an outage before anyone could fence them (two writers, unless fenced now)."""
        return sorted(
            r
            for r, mode in self.modes.items()
            if mode == "active" and r != self.active and self.health.get(r) != "unreachable"
        )

    def bad(self, region: str) -> bool:
        """True when a quorum of the probes that answered say ``region`` is failing.

        The quorum never exceeds the number of probes that could vote on ``region``: a region
        whose control plane does not answer cannot have its alarms read either.
        """
        votes = self.votes.get(region, {})
        return bool(votes) and sum(votes.values()) >= min(self.quorum, len(votes))

    def good(self, region: str) -> bool:
        """True when ``region`` is reachable, healthy or degraded, and no probe says bad."""
        return self.health.get(region) in ("healthy", "degraded") and not any(
            self.votes.get(region, {}).values()
        )


@dataclass(frozen=True)
class Decision:
    """What the watcher decided after an evaluation, and why (one JSON log line)."""

    time: float
    action: str
    reason: str
    active: str | None
    health: dict[str, str]
    consecutive_bad: int = 0
    target: str | None = None
    run_id: str | None = None
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The decision as the JSON line ``failover watch`` prints."""
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
            "action": self.action,
            "reason": self.reason,
            "active_region": self.active,
            "region_health": self.health,
            "consecutive_bad": self.consecutive_bad,
            "target": self.target,
            "run_id": self.run_id,
            "status": self.status,
        }


Evaluate = Callable[[], Evaluation]


def answering(region_health: dict[str, str]) -> frozenset[str]:
    """The regions of ``region_health`` (region -> health value) that answered.

    >>> sorted(answering({"us-east-1": "unreachable", "us-west-2": "degraded"}))
    ['us-west-2']
    """
    return frozenset(r for r, h in region_health.items() if h != health.Health.UNREACHABLE.value)


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
    clock: Callable[[], float] = time.time
    on_run: Callable[[RunResult], None] | None = None
    consecutive_bad: int = field(default=0, init=False)
    last_action: float | None = field(default=None, init=False)
    _history: deque[bool] = field(default_factory=lambda: deque(maxlen=FLAP_WINDOW), init=False)
    _good_primary: int = field(default=0, init=False)
    _epoch: int = field(default=0, init=False)
    _report: health.StatusReport | None = field(default=None, init=False)
    _rounds: int = field(default=0, init=False)
    _answered: frozenset[str] | None = field(default=None, init=False)
    _desired: Desired | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.policy = self.topology.policy
        self.journal = Journal(self.clients, self.manifest)
        self.graph = graphs.build(self.topology)

    # -- remembering (a deployed watcher lives one invocation at a time) ----------------------

    def restore(self, state: WatchState) -> None:
        """Carry on from ``state``: the hysteresis of an earlier invocation."""
        self.consecutive_bad = state.consecutive_bad
        self._history = deque(state.history, maxlen=FLAP_WINDOW)
        self.last_action = state.last_action
        self._good_primary = state.good_primary
        seen = state.decision.get("region_health")
        if isinstance(seen, dict) and seen:
            self._answered = answering(seen)

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
        )

    # -- evaluating --------------------------------------------------------------------------

    def read(self) -> Evaluation:
        """Evaluate every region now (the default ``evaluate``): its signals and mode, not every
        component (the reconciler reads those when the modes disagree, or every few rounds)."""
        report = health.status(
            self.topology, self.manifest, self.clients, http_probe=self.http_probe, components=False
        )
        self._report = report
        # The emulator's Route 53 always says healthy: its vote would only outvote the truth.
        votes = {
            name: health.votes(region, route53=not self.clients.emulated)
            for name, region in report.regions.items()
        }
        return Evaluation(
            self.clock(),
            report.active_region,
            {n: r.health.value for n, r in report.regions.items()},
            votes,
            self.policy.quorum,
            {n: r.mode for n, r in report.regions.items()},
        )

    # -- deciding ----------------------------------------------------------------------------

    def threshold(self) -> int:
        """N consecutive bad evaluations, plus one for every recent flap (up to 2N)."""
        history = list(self._history)
        flaps = sum(1 for a, b in itertools.pairwise(history) if a and not b)
        return min(2 * self.policy.failure_threshold, self.policy.failure_threshold + flaps)

    def step(self) -> Decision:
        """Evaluate once and decide; run a failover when the decision is to."""
        self._report = None
        ev = (self.evaluate or self.read)()
        returning = self._returning(ev)
        # The active region is the control table's desired state, not what the regions say:
        # a region that came back still saying active is stale, not active.
        desired = self.journal.desired(self.topology.regions.primary)
        self._epoch = desired.epoch
        self._desired = desired
        ev = replace(ev, active=desired.active)
        active = desired.active
        bad = ev.bad(active)
        threshold = self.threshold()
        self._history.append(bad)
        self.consecutive_bad = self.consecutive_bad + 1 if bad else 0
        decision = self._decide(ev, active, bad, threshold)
        if decision.action in CONVERGE_AFTER:
            decision = self._reconcile(decision, returning)
        log.info(
            "watch decision: %s (%s)",
            decision.action,
            decision.reason,
            extra={"event": decision.to_dict()},
        )
        return decision

    def _returning(self, ev: Evaluation) -> frozenset[str]:
        """The regions that answer again since the last evaluation (remembering who answers).

        A region that answers again (or that this watcher has not seen answer before) is read in
        full by the reconciler: its mode parameter may say fenced while its components still
        serve, because a fence write that timed out during the outage can still be applied when
        the region resumes (AWS, too, may apply a request whose answer was lost).
        """
        now = answering(ev.health)
        returning = now - self._answered if self._answered is not None else now
        self._answered = now
        return returning

    def _decide(self, ev: Evaluation, active: str, bad: bool, threshold: int) -> Decision:
        def say(action: str, reason: str, **kw: Any) -> Decision:
            return Decision(ev.time, action, reason, active, ev.health, self.consecutive_bad, **kw)

        automation = self.journal.automation()
        if automation["paused"]:
            return say(
                "paused",
                f"automation paused by {automation['by'] or '?'}"
                + (f": {automation['reason']}" if automation["reason"] else ""),
            )
        left, why = self.cooldown_left(ev)
        if left > 0:
            return say("cooldown", f"cooling down: {why} ({left:.0f}s left)")
        if not bad:
            return self._maybe_failback(ev, active, say)
        if self.consecutive_bad < threshold:
            return say(
                "watch",
                f"{active} bad {self.consecutive_bad}/{threshold} "
                f"({', '.join(k for k, v in ev.votes[active].items() if v)})",
            )
        target = self._target(ev, active)
        if target is None:
            return say("hold", f"{active} failed but no healthy region to fail over to")
        return self._failover(
            ev, active, target, say, f"{active} failed {self.consecutive_bad} evaluations in a row"
        )

    def cooldown_left(self, ev: Evaluation) -> tuple[float, str]:
        """Seconds before an automated run may start, and why (0 when it may).

        The cooldown is the application's: it counts from the last change of the active region
        that the control table records (:attr:`Desired.since`), whichever watcher, or operator,
        made it; every watcher reads the same item, so a watcher that never acted does not
        fail back (or over again) at once after another's run. A run of this watcher's own
        that ended in an error changed nothing there, and cools this watcher down too.
        """
        cooldown = self.policy.cooldown_seconds
        left, why = 0.0, ""
        desired = self._desired
        if desired is not None and desired.since is not None:
            left = cooldown - (self.clock() - desired.since)
            why = f"{desired.active} became active {cooldown - left:.0f}s ago" + (
                f" (run {desired.run_id})" if desired.run_id else ""
            )
        if self.last_action is not None and cooldown - (ev.time - self.last_action) > left:
            left = cooldown - (ev.time - self.last_action)
            why = f"this watcher acted {cooldown - left:.0f}s ago"
        return max(0.0, left), why

    def _maybe_failback(
        self, ev: Evaluation, active: str, say: Callable[..., Decision]
    ) -> Decision:
        primary = self.topology.regions.primary
        if not self.policy.auto_failback or active == primary:
            return say("none", f"{active} healthy")
        self._good_primary = self._good_primary + 1 if ev.good(primary) else 0
        if self._good_primary < self.threshold():
            return say(
                "none",
                f"{active} healthy; primary good "
                f"{self._good_primary}/{self.threshold()} for failback",
            )
        # The returning region must have the data first: read the lag before taking the lease
        # (the run's precheck reads it again under the lease, and that read decides).
        plan = build_plan(self.topology, self.graph, source=active, target=primary)
        lag = lag_check(
            self.topology, self.manifest, self.clients, plan, accept_unknown=False, kind="failback"
        )
        if not lag.ok:
            return say("waiting", f"{primary} healthy again; failback waits: {lag.detail}")
        return self._failover(
            ev, active, primary, say, "primary healthy again: failback", kind="failback"
        )

    def _target(self, ev: Evaluation, active: str) -> str | None:
        """The first good region in the spec's preference order (standbys, then the primary)."""
        order = [*self.topology.regions.standby, self.topology.regions.primary]
        return next((r for r in order if r != active and ev.good(r)), None)

    def _failover(
        self,
        ev: Evaluation,
        source: str,
        target: str,
        say: Callable[..., Decision],
        reason: str,
        kind: str = "failover",
    ) -> Decision:
        plan = build_plan(self.topology, self.graph, source=source, target=target)
        executor = self.executor or Executor(
            self.topology,
            self.manifest,
            self.clients,
            accept_unknown_lag=AUTOMATION_ACCEPTS_UNKNOWN_LAG,
        )
        try:
            result = executor.execute(
                plan,
                kind=kind,
                since=ev.time,
                expect_epoch=self._epoch,
                accept_unknown_lag=accepts_unknown_lag(kind),
            )
        except RunInterruptedError:
            raise  # SIGINT or SIGTERM: the watcher stops, it does not decide again
        except LeaseHeldError as exc:
            return say("lease_held", f"another controller acts: {exc.holder}", target=target)
        except (PlanError, ConflictError, UsageError) as exc:
            return say("refused", str(exc), target=target)
        except FailoverError as exc:
            self.last_action = ev.time
            return say("error", str(exc), target=target)
        self.last_action = ev.time
        self.consecutive_bad = 0
        self._good_primary = 0
        if self.on_run:
            self.on_run(result)
        return say(
            kind, reason, target=target, run_id=result.run.id, status=result.run.status.value
        )

    def _reconcile(self, decision: Decision, returning: frozenset[str]) -> Decision:
        """Converge every region to the desired state (fencing only, while paused).

        Runs at every evaluation that did not start a run: a region back from an outage is
        fenced, drift in the active region undone, a run whose controller died taken over.
        """
        paused = decision.action == "paused"
        self._rounds += 1
        executor = self.executor or Executor(
            self.topology,
            self.manifest,
            self.clients,
            accept_unknown_lag=AUTOMATION_ACCEPTS_UNKNOWN_LAG,
        )
        try:
            if self._report is not None and self._rounds % DEEP_EVERY and not returning:
                # The evaluation's own read (region modes, no components) first: a full read of
                # every component costs the data plane CPU; it is made only when the modes
                # disagree with the desired state, when a region answers again, and every
                # DEEP_EVERY rounds for drift.
                _, fixes = observe(
                    self.topology,
                    self.manifest,
                    self.clients,
                    self.journal,
                    fence_only=paused,
                    report=self._report,
                )
                if all(f.action == REPORT for f in fixes):
                    return decision
            result = reconcile(
                self.topology,
                self.manifest,
                self.clients,
                journal=self.journal,
                fence_only=paused,
                executor=executor,
            )
        except RunInterruptedError:
            raise
        except LeaseHeldError as exc:
            return (
                decision
                if decision.action != "none"
                else replace(
                    decision, action="lease_held", reason=f"another controller acts: {exc.holder}"
                )
            )
        except FailoverError as exc:
            log.warning("reconcile: %s", exc)
            return replace(decision, action="error", reason=f"reconcile: {exc}")
        acted = [f for i, f in enumerate(result.fixes) if i in result.outcomes]
        if not acted:
            return decision
        regions = sorted({f.region for f in acted})
        failed = result.failed
        reason = (
            f"{len(acted)} fixes towards {result.desired.active} (epoch "
            f"{result.desired.epoch}) in {', '.join(regions)}"
            + (f", {len(failed)} failed" if failed else "")
            + (f"; {decision.reason}" if paused else "")
        )
        run = next((f.run_id for f in acted if f.run_id), None)
        return replace(
            decision,
            action="reconcile",
            reason=reason,
            target=regions[0],
            run_id=run,
            status="failed" if failed else "completed",
        )

    # -- looping -----------------------------------------------------------------------------

    def run(
        self,
        interval: float,
        *,
        iterations: int | None = None,
        stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[Decision]:
        """Evaluate every ``interval`` seconds, yielding each decision."""
        count = 0
        while iterations is None or count < iterations:
            started = time.monotonic()
            yield self.step()
            count += 1
            if stop is not None and stop():
                return
            if iterations is None or count < iterations:
                sleep(max(0.0, interval - (time.monotonic() - started)))
