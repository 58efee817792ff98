"""Prechecks: what must hold of the target before a run touches anything.

Called by the executor (``execute``, and ``execute --dry-run`` and ``drill`` through it). Each
check is a value (name, ok, detail) the CLI renders; the target's checks are small functions
over its :class:`~controller.health.RegionStatus`, the rest read the journal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controller import clock, health
from controller.actions.base import State
from controller.actions.table import read_replication_lag
from controller.aws import Clients
from controller.aws.background import in_background
from controller.controltable.journal import Journal, RunKind
from controller.controltable.rpo import TableLag, to_plain
from controller.engine.silence import Silence
from controller.errors import FailoverError
from controller.plan.steps import FailoverPlan
from controller.topology import Kind, OnFailure, Topology
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)

#: Every table's lag as :func:`read_lags` read it, and the read the source left unanswered.
Lags = tuple[tuple[TableLag, ...], str]


class Check(StrEnum):
    """The prechecks, by name."""

    TARGET_REACHABLE = "target_reachable"
    TARGET_HEALTHY = "target_healthy"
    REPLICATION_LAG = "replication_lag"
    NO_RUN_IN_PROGRESS = "no_run_in_progress"
    #: Informative only: the lease is taken (or refused) just after, whatever this says.
    LEASE_FREE = "lease_free"


@dataclass(frozen=True)
class Precheck:
    """One check made before anything is touched."""

    name: Check
    ok: bool
    detail: str = ""
    #: The replication-lag check's readings (what the switch could lose: the run records them).
    lags: tuple[TableLag, ...] = ()
    #: A region that a check's read found not answering (the run sends it nothing more).
    silent: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The check as ``--json`` prints it (with its lag readings, when it read any)."""
        out: dict[str, Any] = {"name": self.name, "ok": self.ok, "detail": self.detail}
        return out | ({"lags": to_plain(self.lags)} if self.lags else {})


def refusing(checks: Iterable[Precheck]) -> list[Precheck]:
    """The checks that refuse a run: every failed one but the lease's, which is informative (the
    lease is taken, or refused, just after).

    >>> held = Precheck(Check.LEASE_FREE, False, "held by x")
    >>> [c.name.value for c in refusing([held, Precheck(Check.REPLICATION_LAG, False, "t")])]
    ['replication_lag']
    """
    return [c for c in checks if not c.ok and c.name != Check.LEASE_FREE]


def seen(checks: Iterable[Precheck]) -> tuple[tuple[TableLag, ...], Silence]:
    """What the checks found that the run goes on with: the tables' lags (its RPO record) and
    the regions that did not answer (sent nothing more)."""
    lags: tuple[TableLag, ...] = ()
    silence = Silence()
    for check in checks:
        lags += check.lags
        if check.silent:
            silence.mark(check.silent, f"its {check.name} read got no answer")
    return lags, silence


def describe(checks: Iterable[Precheck]) -> str:
    """``checks`` in one line, each with its detail."""
    return "; ".join(f"{c.name}: {c.detail}" for c in checks)


def prechecks(
    topology: Topology,
    manifest: Manifest,
    clients: Clients,
    journal: Journal,
    plan: FailoverPlan,
    owner: str,
    *,
    resuming: str | None = None,
    lag_clients: Clients | None = None,
    accept_unknown_lag: bool = False,
    kind: RunKind = RunKind.FAILOVER,
    lags_read: Lags | None = None,
) -> list[Precheck]:
    """Check the target before touching anything: reachable, healthy, lag, no other run.

    ``lag_clients`` read the source region's replication metrics (the executor gives its
    short fencing timeouts: the source may be the failing region); ``accept_unknown_lag`` lets
    an unreadable lag pass (see :func:`lag_check`); ``kind`` (``failover``, ``failback``) only
    words the refusals; ``lags_read``: the plan's lags, already read (:func:`read_lags`).
    """
    checks: list[Precheck] = []
    target = health.region_health(topology, manifest, clients, plan.target)
    checks.append(
        Precheck(Check.TARGET_REACHABLE, target.reachable, target.error or f"{plan.target} answers")
    )
    checks.append(target_check(topology, plan, target))
    checks.append(
        lag_check(
            topology,
            manifest,
            lag_clients or clients,
            plan,
            accept_unknown=accept_unknown_lag,
            kind=kind,
            read=lags_read,
        )
    )
    current = journal.current_run_id()
    checks.append(
        Precheck(
            Check.NO_RUN_IN_PROGRESS,
            current is None or current == resuming,
            f"run {current} is in progress (failover resume {current})"
            if current and current != resuming
            else "none",
        )
    )
    holder = journal.holder()
    if holder is None or holder.expires_at <= clock.now() or holder.owner == owner:
        checks.append(Precheck(Check.LEASE_FREE, True, "free"))
    elif holder.holder_dead:  # the lease is taken over at once (Leases.acquire)
        checks.append(
            Precheck(
                Check.LEASE_FREE,
                True,
                f"held by {holder.owner}, a process of "
                "this machine that has ended: it will be taken over",
            )
        )
    else:
        checks.append(Precheck(Check.LEASE_FREE, False, f"held by {holder.owner}"))
    return checks


def target_check(topology: Topology, plan: FailoverPlan, target: health.RegionStatus) -> Precheck:
    """Healthy enough to take traffic: no alarm firing, probes fine; missing components are
    not a refusal (what needs them will run degraded) unless their policy is rollback."""
    signals = target.signals
    problems = (
        [f"alarms firing: {', '.join(signals.alarms_firing)}"] if signals.alarms_firing else []
    )
    if signals.http_ok is False:
        problems.append("HTTP probe failed")
    missing = sorted(n for n, c in target.components.items() if c.state == State.MISSING)
    problems += [
        f"{n} is missing and its policy is rollback"
        for n in missing
        if topology.components[n].on_failure == OnFailure.ROLLBACK
    ]
    if not target.reachable:
        problems.insert(0, "unreachable")
    detail = "; ".join(problems) or f"{plan.target} is {target.health.value}" + (
        f" (missing, will degrade what needs them: {', '.join(missing)})" if missing else ""
    )
    return Precheck(Check.TARGET_HEALTHY, not problems, detail)


def read_lags(
    topology: Topology,
    manifest: Manifest,
    clients: Clients,
    source: str,
    target: str,
    now: Callable[[], float] = clock.now,
) -> Lags:
    """Every table's replication lag from ``source`` to ``target``, as read now, and the read
    that ``source`` left unanswered ("" when it answered).

    Once a read got no answer from ``source``, the remaining tables are not asked (their lag is
    unknown, naming that read): a hung source costs one timeout, not one per table.
    """
    lags: list[TableLag] = []
    silent = ""
    for name, _ in topology.of_kind(Kind.TABLE):
        if silent:
            lags.append(TableLag(name, None, now(), error=silent))
            continue
        try:
            lag, as_of = read_replication_lag(clients, manifest, name, source, target)
        except (FailoverError, KeyError) as exc:
            log.info("replication lag of %s unknown: %s", name, exc)
            if getattr(exc, "unreachable", False):
                silent = f"{source} unreachable: {exc}"
            lags.append(TableLag(name, None, now(), error=silent or str(exc)))
            continue
        lags.append(TableLag(name, lag, now(), as_of, "" if lag is not None else "no datapoint"))
    return tuple(lags), silent


def lags_ahead(
    topology: Topology, manifest: Manifest, clients: Clients, plan: FailoverPlan
) -> Future[Lags]:
    """``plan``'s lags (:func:`read_lags`), read in a thread of their own from now on: an
    execute starts them before it takes the lease, which they do not need, so that a failing
    source's read waits out its timeout while the lease is taken, not after."""
    return in_background(
        lambda: read_lags(topology, manifest, clients, plan.source, plan.target), name="lag-read"
    )


def lag_check(
    topology: Topology,
    manifest: Manifest,
    clients: Clients,
    plan: FailoverPlan,
    *,
    accept_unknown: bool = False,
    kind: RunKind = RunKind.FAILOVER,
    read: Lags | None = None,
) -> Precheck:
    """Every table's replica in the target within ``max_lag_seconds`` of the source.

    The lag is CloudWatch's ``ReplicationLatency`` (emitted in the source region, per receiving
    region; :func:`read_lags`). A lag known to be over the bound refuses; an unknown one (no
    datapoint, or the source does not answer) refuses unless ``accept_unknown``: nothing known
    is not the same as 0. For a failback (``kind``) the target is the returning region and the
    source the healthy active one: the refusal says that the returning region has not caught up.
    The check carries its readings (``lags``) and, when the source did not answer, its name
    (``silent``). ``read``: the plan's lags, already read (else they are read now).
    """
    lags, silent = read or read_lags(topology, manifest, clients, plan.source, plan.target)
    ok, detail = _judge_lags(topology, plan, lags, accept_unknown=accept_unknown, kind=kind)
    return Precheck(
        Check.REPLICATION_LAG, ok, detail, lags=lags, silent=plan.source if silent else ""
    )


def _judge_lags(
    topology: Topology,
    plan: FailoverPlan,
    lags: Sequence[TableLag],
    *,
    accept_unknown: bool,
    kind: RunKind,
) -> tuple[bool, str]:
    """Whether ``lags`` allow the run, and the check's detail."""
    bounds = {name: comp.max_lag_seconds for name, comp in topology.of_kind(Kind.TABLE)}
    too_far: list[str] = []
    unknown: list[str] = []
    known: list[str] = []
    for reading in lags:
        bound = bounds[reading.table]
        lag = reading.lag_seconds
        if lag is None:
            unknown.append(reading.table)
        elif lag > bound:
            too_far.append(f"{reading.table} lags {lag:.1f}s > {bound:g}s")
        else:
            known.append(f"{reading.table} {lag:.1f}s")
    back = kind == RunKind.FAILBACK
    if too_far:
        return False, "; ".join(too_far) + (
            f": {plan.target} has not caught up with {plan.source}" if back else ""
        )
    if unknown and not accept_unknown:
        return False, (
            f"lag unknown ({', '.join(unknown)}: no ReplicationLatency from "
            f"{plan.source} to {plan.target}); "
            + (
                f"{plan.target} not known to have caught up (failover failback "
                "--accept-unknown-lag goes back anyway)"
                if back
                else "pass --accept-unknown-lag to fail over anyway"
            )
        )
    detail = ", ".join(known) or "no tables"
    if unknown:
        detail += f"; unknown, accepted: {', '.join(unknown)}"
    return True, detail
