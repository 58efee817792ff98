"""The desired-state policy of a run: which requests a run may carry out, and which runs may
resume, given what the control table names active.

Called by the executor under the lease (:mod:`controller.engine.executor`) and by
``failover execute --dry-run``. Pure functions of the plan, the desired state and the run.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.controltable.desired import Desired
from controller.controltable.journal import Run
from controller.errors import ConflictError, UsageError
from controller.plan.planner import Planner
from controller.plan.steps import FailoverPlan
from controller.topology import TargetLost, Topology


def checked(
    planner: Planner,
    plan: FailoverPlan,
    desired: Desired,
    *,
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
    return planner.plan(target=plan.target, source=desired.active, unavailable=plan.unavailable)


def not_resumable(run: Run, desired: Desired) -> str:
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


def moving_on(topology: Topology, origin: str, lost: set[str]) -> list[str]:
    """Where a run whose target stopped answering may move, in order (``on_target_lost``):
    the standbys then back to ``origin`` (the first run's source), or the other way round;
    never a region already ``lost``.
    """
    standbys = [r for r in topology.regions.all if r != origin]
    order = (
        [*standbys, origin]
        if topology.policy.on_target_lost is TargetLost.NEXT_STANDBY
        else [origin, *standbys]
    )
    return [r for r in order if r not in lost]


def refuse_already_active(desired: Desired, target: str, running: Run | None) -> None:
    """Say why a failover to ``target``, which the control table already names active, is not
    run: a run to it is still in progress (``running``, exit code 3), or it is simply active
    (exit 2).

    Raises
    ------
    ConflictError
        A run to ``target`` is in progress (a watcher's, or another operator's).
    UsageError
        ``target`` is the active region and no run is moving to it.
    """
    where = f"the control table names {target} active (epoch {desired.epoch})"
    if running is not None and running.plan.target == target:
        raise ConflictError(
            f"run {running.id} ({running.plan.source} -> {target}, by {running.owner}) is in "
            f"progress: {target} is becoming the active region; nothing changed (failover "
            f"runs shows it; failover resume {running.id} if its controller died)"
        )
    raise UsageError(f"{target} is already the active region: {where}; nothing to fail over")


def superseded(runs: Iterable[Run], since: float) -> str | None:
    """Why a decision taken at ``since`` is not carried out: a run among ``runs`` (the latest)
    started after it, so another controller acted on what was true then (None: none did)."""
    newer = [r for r in runs if r.created >= since]
    if not newer:
        return None
    return (
        f"superseded: run {newer[0].id} ({newer[0].plan.source} -> {newer[0].plan.target}) "
        "started after this decision"
    )
