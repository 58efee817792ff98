"""The reconciler: converge what AWS says towards the desired state, whatever happened before.

Called by ``failover reconcile`` and by the watcher at every evaluation. Runs are the fast path;
correctness comes from here. It compares the control table's desired state (which region is
active, :mod:`controller.controltable.desired`) with every component's real state in every region
and decides a list of fixes, as data (:func:`decide`), so that ``--dry-run`` and the real run share
it:

- a run that is ``running`` while nobody holds a live lease is taken over (resumed) first;
- every component of a region that is not the active one is fenced, dependents first (a
  region back from an outage first of all); fencing only removes writers, so it is done even
  while automation is paused;
- a component of the active region that drifted (fenced by a stale controller, left standby)
  is activated again, dependencies first, or reported with the reason when it cannot be;
- traffic is never pointed at a region whose traffic tier's dependencies are not serving.

Applying the fixes (:func:`reconcile`) takes the lease and re-reads the desired state under it;
every request checks the lease first, as a run's do.

The dependency graph only orders fixes: it is built (and networkx, about 0.13 s of a process's
CPU, imported) when there is one to order, not at every watcher evaluation that finds none.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NamedTuple

from controller import health
from controller.actions import mode as modes
from controller.actions.registry import action_for
from controller.actions.state import SERVING, State, state_of
from controller.aws import Clients
from controller.contract import Mode
from controller.controltable.desired import Desired
from controller.controltable.glance import Glance
from controller.controltable.journal import Journal
from controller.controltable.lease import Lease
from controller.engine.executor import Executor
from controller.engine.fixes import Fix, FixAction, FixOutcome, Reconciliation
from controller.errors import ConflictError, PermanentStepError, TransientStepError
from controller.topology import Tier, Topology
from controller.topology.manifest import Manifest

if TYPE_CHECKING:
    import networkx as nx

log = logging.getLogger(__name__)


def decide(
    topology: Topology,
    graph: nx.DiGraph | None,
    desired: Desired,
    report: health.StatusReport,
    *,
    run_in_progress: str | None = None,
    lease_live: bool = False,
    fence_only: bool = False,
) -> list[Fix]:
    """The fixes that bring ``report`` (what AWS says) to ``desired``; pure, no AWS.

    ``run_in_progress`` with no live lease: its holder died; the one fix is to take it over.
    With a live lease another controller is acting: nothing to do but say so. ``fence_only``
    (automation paused): activations are reported, not done. ``graph``: the topology's
    (:func:`controller.plan.graph.build`), which orders the fixes; None: built only when a
    component ``report`` read needs one (a read of the modes alone never does).
    """
    if run_in_progress:
        if lease_live:
            return [
                Fix(
                    FixAction.REPORT,
                    desired.active,
                    f"run {run_in_progress} is in progress under a "
                    "live lease: its controller converges it",
                )
            ]
        return [
            Fix(
                FixAction.RESUME,
                desired.active,
                f"run {run_in_progress} is running but nobody holds a live lease: taking it over",
                run_id=run_in_progress,
            )
        ]
    active = desired.active
    where = f"{active} is the active region (epoch {desired.epoch})"
    fixes: list[Fix] = []
    if graph is None and _unsettled(report, active):
        graph = _build(topology)
    levels = _activation_levels(graph)
    fence_order = [c for level in levels[::-1] for c in level]  # see graphs.fencing_levels
    for name, region in sorted(report.regions.items()):
        if name == active:
            continue
        if not region.reachable:
            fixes.append(
                Fix(FixAction.REPORT, name, f"{name} unreachable: fenced when it answers ({where})")
            )
            continue
        for comp in fence_order:
            seen = region.components.get(comp)
            if seen is not None and _serves(seen):
                said = seen.facts.get("mode")
                fixes.append(
                    Fix(
                        FixAction.FENCE,
                        name,
                        f"{comp} is {seen.state}"
                        + (f" (mode {said})" if said else "")
                        + f" in {name}; {where}",
                        component=comp,
                    )
                )
        if region.mode and state_of(region.mode) in SERVING:
            fixes.append(Fix(FixAction.FENCE, name, f"{name}'s mode says {region.mode}; {where}"))
    fixes += _activations(graph, levels, desired, report.regions.get(active), fence_only)
    return fixes


def _unsettled(report: health.StatusReport, active: str) -> bool:
    """True when a component ``report`` read may need a fix, which the graph orders: one that
    serves outside the ``active`` region, or one not active in it."""
    for name, region in report.regions.items():
        if not region.reachable:
            continue
        if name == active:
            if any(seen.state != State.ACTIVE for seen in region.components.values()):
                return True
        elif any(_serves(seen) for seen in region.components.values()):
            return True
    return False


def _build(topology: Topology) -> nx.DiGraph:
    """The topology's dependency graph, networkx imported with it (the first time)."""
    from controller.plan import graph as graphs

    return graphs.build(topology)


def _activation_levels(graph: nx.DiGraph | None) -> list[list[str]]:
    """The graph's activation levels (none without a graph: there is nothing to order)."""
    if graph is None:
        return []
    from controller.plan import graph as graphs

    return graphs.activation_levels(graph)


def _activations(
    graph: nx.DiGraph | None,
    levels: list[list[str]],
    desired: Desired,
    region: health.RegionStatus | None,
    fence_only: bool,
) -> list[Fix]:
    """Activate what drifted in the active region, dependencies first, traffic only over a
    serving region."""
    active = desired.active
    if region is None or not region.reachable:
        return [
            Fix(
                FixAction.REPORT,
                active,
                f"the active region {active} does not answer: nothing "
                "to activate (a failover is the watcher's or the operator's call)",
            )
        ]
    fixes: list[Fix] = []
    broken: set[str] = set()
    for level in levels:
        for comp in level:
            seen = region.components.get(comp)
            if seen is None:
                continue
            state = seen.state
            if state == State.ACTIVE:
                continue
            assert graph is not None  # levels come from it
            needs = [d for d in _dependencies(graph, comp) if d in broken]
            is_traffic = graph.nodes[comp].get("tier") == Tier.TRAFFIC
            if state == State.DEGRADED and (needs or fence_only):
                why = f"needs {', '.join(sorted(needs))}" if needs else "automation paused"
                fixes.append(
                    Fix(
                        FixAction.REPORT,
                        active,
                        f"{comp} serves degraded in {active} "
                        f"({seen.facts.get('mode') or seen.detail}): {why}",
                        component=comp,
                    )
                )
                continue
            if state not in (State.STANDBY, State.FENCED, State.DEGRADED):
                broken.add(comp)
                fixes.append(
                    Fix(
                        FixAction.REPORT,
                        active,
                        f"{comp} is {state} in {active}: cannot "
                        f"activate it; what needs it runs degraded ({seen.detail})",
                        component=comp,
                    )
                )
                continue
            if is_traffic and needs:
                broken.add(comp)
                fixes.append(
                    Fix(
                        FixAction.REPORT,
                        active,
                        f"not pointing traffic at {active}: {', '.join(sorted(needs))} not serving",
                        component=comp,
                    )
                )
                continue
            if fence_only:
                fixes.append(
                    Fix(
                        FixAction.REPORT,
                        active,
                        f"{comp} is {state} in the active region; "
                        "automation paused: not activating",
                        component=comp,
                    )
                )
                continue
            fixes.append(
                Fix(
                    FixAction.ACTIVATE,
                    active,
                    f"{comp} is {state} in the active region "
                    f"{active}" + (" and what it needs serves" if state == State.DEGRADED else ""),
                    component=comp,
                )
            )
    if region.mode != Mode.ACTIVE and not fence_only:
        fixes.append(Fix(FixAction.ACTIVATE, active, f"{active}'s mode says {region.mode}"))
    return fixes


def _dependencies(graph: nx.DiGraph, component: str) -> set[str]:
    """Every component ``component`` needs, transitively (:func:`graphs.dependencies`)."""
    from controller.plan import graph as graphs

    return graphs.dependencies(graph, component)


def _serves(seen: health.ComponentStatus) -> bool:
    """True when a component may still serve or write: its state or its mode says so."""
    mode = seen.facts.get("mode")
    return seen.state in SERVING or (isinstance(mode, str) and state_of(mode) in SERVING)


class Observation(NamedTuple):
    """What :func:`observe` read and decided."""

    desired: Desired
    fixes: list[Fix]
    #: The regions the fixes cover: every region that answered the read, or none while a run is
    #: in progress (the one fix is then the run's, whatever each region says).
    covered: frozenset[str]


def observe(
    topology: Topology,
    manifest: Manifest,
    clients: Clients,
    journal: Journal,
    *,
    fence_only: bool = False,
    report: health.StatusReport | None = None,
    known: Glance | None = None,
) -> Observation:
    """Read the desired state, the journal and every component (unless ``report`` is a
    fresh read of them already), and decide.

    ``known``: the desired state, the lease and the run in progress as a read a moment ago said
    them, not read again: the watcher's first look, on its evaluation's own read;
    :func:`reconcile` reads them afresh, and takes the lease before it acts."""
    desired = known.desired if known else journal.desired(topology.regions.primary)
    report = report or health.status(topology, manifest, clients)
    run_id = known.run_id if known else journal.current_run_id()
    holder = known.holder if known else journal.holder()
    live = holder is not None and holder.expires_at > journal.clock()
    fixes = decide(
        topology,
        None,
        desired,
        report,
        run_in_progress=run_id,
        lease_live=live,
        fence_only=fence_only,
    )
    answered = frozenset(n for n, r in report.regions.items() if r.reachable)
    return Observation(desired, fixes, frozenset() if run_id else answered)


def reconcile(
    topology: Topology,
    manifest: Manifest,
    clients: Clients,
    *,
    journal: Journal | None = None,
    owner: str | None = None,
    dry_run: bool = False,
    fence_only: bool = False,
    report: health.StatusReport | None = None,
    executor: Executor | None = None,
) -> Reconciliation:
    """Decide, and unless ``dry_run``, apply the fixes under the lease.

    ``report``: a fresh status read with components (the watcher's), instead of a new one.

    Raises
    ------
    LeaseHeldError
        Another controller holds the lease (exit code 3); nothing was done.
    ConflictError
        The desired state changed between the read and the lease (exit code 3).
    """
    journal = journal or Journal(clients, manifest)
    desired, fixes, covered = observe(
        topology, manifest, clients, journal, fence_only=fence_only, report=report
    )
    result = Reconciliation(desired, fixes, dry_run, covered=covered)
    todo = [i for i, f in enumerate(fixes) if f.action != FixAction.REPORT]
    if dry_run or not todo:
        return result
    executor = executor or Executor(topology, manifest, clients, journal=journal, owner=owner)
    resume = next((f for f in fixes if f.action == FixAction.RESUME), None)
    if resume is not None and resume.run_id:
        run = executor.resume(resume.run_id).run
        result.outcomes[fixes.index(resume)] = FixOutcome.done(f"run {run.id} {run.status.value}")
        return result
    with executor.holding() as lease:
        now = journal.desired(topology.regions.primary)
        if now != desired:
            raise ConflictError(
                f"the desired state changed while reconciling ({desired.active}"
                f" epoch {desired.epoch} -> {now.active} epoch {now.epoch}): "
                "nothing done; reconcile again"
            )
        graph = _build(topology)
        failed: set[str] = set()
        for i in todo:
            fix = fixes[i]
            blocked = (
                sorted(failed & _dependencies(graph, fix.component))
                if fix.action == FixAction.ACTIVATE and fix.component
                else []
            )
            if blocked:
                result.outcomes[i] = FixOutcome.failed(f"skipped, needs {', '.join(blocked)}")
            else:
                result.outcomes[i] = _apply(topology, manifest, executor, lease, fix)
            if not result.outcomes[i].ok and fix.component:
                failed.add(fix.component)
    return result


def _apply(
    topology: Topology, manifest: Manifest, executor: Executor, lease: Lease, fix: Fix
) -> FixOutcome:
    """Carry one fix out with the executor's lease-checked clients; what came of it."""
    fence = fix.action == FixAction.FENCE
    clients = executor.fence_clients if fence else executor.clients
    try:
        if fix.component is None:
            value = Mode.FENCED if fence else Mode.ACTIVE
            modes.set_region_mode(clients, topology, manifest, fix.region, value)
            return FixOutcome.done()  # a write of the mode, whatever it said before
        action = action_for(topology, manifest, clients, fix.component, fix.region)
        outcome = action.deactivate() if fence else action.activate()
        log.info(
            "reconcile: %s %s in %s (%s)",
            fix.action,
            fix.component,
            fix.region,
            "changed" if outcome.changed else "already so",
        )
        return FixOutcome.done(changed=outcome.changed)
    except (TransientStepError, PermanentStepError) as exc:
        log.warning("reconcile: %s %s in %s failed: %s", fix.action, fix.component, fix.region, exc)
        return FixOutcome.failed(str(exc))
