"""The deployed watcher: the Lambda handler that ``pulumi up`` puts in every application region.

Called by Lambda (``controller.watchers.lambda_entry.handler``) on an EventBridge schedule every
minute, and by the sandbox's watcher processes, which run the same handler in each region's
failure domain. One invocation:

1. loads its deployment: the topology shipped in its bundle (a build input, like code) and the
   manifest from the ``manifest`` item of the control table (written by ``pulumi up`` from the
   stack's outputs, so it cannot be in the bundle built before them; an item has room for any
   manifest, where an SSM parameter or the environment hold 8 or 4 KB; and the control table is
   what a watcher must reach to act at all). The sandbox points it at its manifest file;
2. reads its hysteresis from its item in the control table
(:mod:`controller.controltable.watchstate`): a
   watcher that cannot reach the control table never acts, it logs and ends;
3. evaluates and decides with :class:`~controller.watchers.watcher.Watcher` (the one decision
engine: the
   lease, the reconciler, the pause switch are all its) every ``policy.watch_interval_seconds``
   while the next evaluation can end inside the invocation's minute (its schedule's period,
   :data:`~controller.contract.WATCHER_SCHEDULE`) and before its timeout: the next minute's
   invocation finds it ended. Only a failover its last evaluation started runs on, for as
   long as the timeout allows (the failover's budget, set by ``infra/watchers.py``). Only the
   sentinel, and a watcher whose last evaluation was not calm, evaluate that often; the others
   end after one evaluation (:mod:`controller.watchers.cadence`: what the watchers cost).
   Deployed with a chain queue, those do not sleep between evaluations either: each sends
   the link that invokes it again an interval later, and ends (:mod:`controller.watchers.chain`);
   a link that finds its chain superseded, and the schedule's invocation while the chain runs,
   evaluate nothing;
4. after every evaluation writes one JSON log line (with its ``cadence``: ``sentinel``,
   ``vigilant`` or ``calm``), one embedded-metric-format record (the ``Evaluations`` metric per
   region, which the dead-man alarm watches: both :mod:`controller.watchers.telemetry`'s) and
   its item back.

Its lease owner is ``watcher@<region>/<request id>``, so a run's owner names the region that
acted. A run it starts that outlives the invocation keeps the lease until the lease expires;
then the next lease holder (any region's watcher) takes the run over from the journal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from controller import clock, contract, health
from controller.aws import Clients
from controller.contract import WatcherCadence
from controller.controltable.table import ControlTable
from controller.controltable.watchstate import WatchState, WatchStates
from controller.engine.executor import Executor
from controller.errors import (
    AwsError,
    ConflictError,
    FailoverError,
    NoMajorityError,
    RunInterruptedError,
)
from controller.topology import Topology, loads
from controller.topology.manifest import ControlManifest, Manifest, check_deployment, load_manifest
from controller.watchers import cadence as cadences
from controller.watchers import chain, telemetry
from controller.watchers.decisions import Decision, WatchAction
from controller.watchers.isolation import Isolation
from controller.watchers.pacing import AUTOMATION_ACCEPTS_UNKNOWN_LAG
from controller.watchers.watcher import Watcher

log = logging.getLogger(__name__)
#: Every region's watcher item (by region), and when they were read.
Seen = tuple[dict[str, WatchState], float]

#: Seconds an evaluation is given on top of the interval before the invocation's end: the next
#: evaluation starts only when this much is left (a failover started then may still outlive it).
MARGIN_SECONDS = contract.WATCHER_MARGIN_SECONDS
#: The deployment each region's watcher last read, kept by its execution environment between
#: invocations (module state, as Lambda keeps it while the environment is warm).
_KEPT: dict[str, Deployment] = {}

#: The schedule the deployed watchers run on (one invocation a minute).
SCHEDULE = contract.WATCHER_SCHEDULE


class Context(Protocol):
    """What the handler uses of Lambda's context object."""

    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds before Lambda ends the invocation."""


@dataclass(frozen=True)
class Deployment:
    """What a watcher watches: the topology, the manifest, clients on them."""

    topology: Topology
    manifest: Manifest
    clients: Clients


def handler(event: dict[str, Any], context: Context) -> dict[str, Any]:
    """Lambda's entry point: watch from this region until shortly before the timeout, or
    evaluate once and hand over to the next link of the chain (:mod:`~controller.watchers.chain`:
    ``event`` is the schedule's, or one of the chain queue's)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    return watch(
        region,
        context,
        link=chain.link_of(event, region),
        chain_queue=os.environ.get(contract.ENV_WATCHER_CHAIN_QUEUE) or None,
    )


def watch(
    region: str,
    context: Context,
    *,
    deployment: Deployment | None = None,
    sleep: Callable[[float], None] = clock.sleep,
    emit: Callable[[str], None] | None = None,
    cadence: WatcherCadence = SCHEDULE.cadence,
    link: chain.Link | None = None,
    chain_queue: str | None = None,
    send: chain.Send | None = None,
) -> dict[str, Any]:
    """One invocation of ``region``'s watcher; a summary of what it did (its return value).

    ``link``: the chain's link that invoked it (None: the schedule); ``send`` (else one on
    ``chain_queue``, else none): how it asks for its next evaluation instead of sleeping.
    """
    out = emit or telemetry.to_stdout
    owner = f"watcher@{region}/{context.aws_request_id}"
    try:
        deployment = deployment or load_deployment(region)
    except FailoverError as exc:
        # Cut off from the control table's majority, a fresh read of the manifest fails: the
        # deployment this execution environment last read still says what to fence (isolation).
        kept = _KEPT.get(region) if isinstance(exc, NoMajorityError) else None
        if kept is not None:
            return watch(
                region, context, deployment=kept, sleep=sleep, emit=emit, cadence=cadence,
                link=link, chain_queue=chain_queue, send=send,
            )  # fmt: skip
        out(
            telemetry.log_line(
                region, owner, {"action": WatchAction.ERROR, "reason": f"deployment: {exc}"}
            )
        )
        return {"region": region, "evaluations": 0, "error": str(exc)}
    _KEPT[region] = deployment
    topology, manifest, clients = deployment.topology, deployment.manifest, deployment.clients
    if send is None and chain_queue:
        send = chain.sender(clients, region, chain_queue)
    states = WatchStates(ControlTable(clients, manifest))
    isolation = Isolation(topology, manifest, clients, region)
    executor = Executor(
        topology, manifest, clients, owner=owner, accept_unknown_lag=AUTOMATION_ACCEPTS_UNKNOWN_LAG
    )
    watcher = Watcher(
        topology,
        manifest,
        clients,
        executor=executor,
        http_probe=health.http_probe,
    )
    state: WatchState | None = None
    seen: Seen | None = None  # every watcher's item, as the last read found them, and when
    interval = topology.policy.watch_interval_seconds
    period = _period()
    invoked_left = context.get_remaining_time_in_millis() / 1000.0
    done, evaluations, actions = 0, 0, []
    linked = False
    is_sentinel: bool | None = None
    role = cadences.Role.SENTINEL
    # A link started late counts from when it was due: the chain keeps the interval's rate.
    late = link.late(clock.now()) if link is not None else 0.0
    while True:
        started, late = clock.monotonic() - late, 0.0
        if state is None:  # first, and after the control table stopped answering
            try:
                state, seen = _items(states, region)
            except NoMajorityError as exc:
                decision = _cut_off(isolation, watcher, exc)
            except FailoverError as exc:  # no control table, no action: say so, end
                out(
                    telemetry.log_line(
                        region,
                        owner,
                        {"action": WatchAction.UNREACHABLE, "reason": f"control table: {exc}"},
                    )
                )
                out(telemetry.metric_record(topology.prefix, region, WatchAction.UNREACHABLE))
                return {"region": region, "evaluations": done, "error": str(exc)}
            else:
                isolation.answered()
                if done == 0 and chain.superseded(link, state.evaluations):
                    return {"region": region, "evaluations": 0, "dropped": True}
                if (
                    link is None
                    and send
                    and chain.running(state.updated, interval + MARGIN_SECONDS)
                ):
                    return {"region": region, "evaluations": 0, "chained": True}
                watcher.restore(state)
                evaluations = state.evaluations
        if state is not None:
            try:
                decision = _step(watcher)
            except NoMajorityError as exc:
                decision, state = _cut_off(isolation, watcher, exc), None
            else:
                evaluations += 1
        done += 1
        actions.append(decision.action)
        if state is not None and is_sentinel is None and cadence is WatcherCadence.SENTINEL:
            is_sentinel = _sentinel(topology, seen, region, decision, interval)
        role = cadences.role(cadence, decision, None if state is None else is_sentinel)
        out(
            telemetry.log_line(
                region,
                owner,
                decision.to_dict() | {"ts": round(decision.time, 3), "cadence": role.value},
            )
        )
        out(
            telemetry.metric_record(
                topology.prefix, region, decision.action, decision.consecutive_bad
            )
        )
        saved = False
        if state is not None:
            try:
                states.write(
                    watcher.remember(region, decision, owner=owner, evaluations=evaluations)
                )
                saved = True
            except ConflictError as exc:
                log.warning("watcher %s: cannot save its state: %s", region, exc)
                if send is not None:
                    break  # another invocation saved a later evaluation: it goes on, not this
            except FailoverError as exc:
                log.warning("watcher %s: cannot save its state: %s", region, exc)
        if role is cadences.Role.CALM:
            break
        wait = max(0.0, interval - (clock.monotonic() - started))
        if send is not None and saved and chain.ask(send, region, evaluations, wait):
            linked = True
            break
        left = context.get_remaining_time_in_millis() / 1000.0
        next_start = invoked_left - left + wait  # seconds into the invocation
        if left - wait < interval + MARGIN_SECONDS or not SCHEDULE.may_start(next_start, period):
            break
        sleep(wait)
    return {
        "region": region,
        "evaluations": done,
        "actions": sorted(set(actions)),
        "role": role.value,
        "linked": linked,
    }


def _items(states: WatchStates, region: str) -> tuple[WatchState, Seen | None]:
    """``region``'s watcher item and every region's, read in one query, and when; when the
    query fails (throttled), the item read alone (None: nobody knows if a sentinel lives)."""
    try:
        known = states.all()
    except NoMajorityError:
        raise
    except FailoverError as exc:
        log.warning("watcher %s: cannot read the other watchers' items: %s", region, exc)
        return states.read(region), None
    return known.get(region) or WatchState(region), (known, clock.now())


def _sentinel(
    topology: Topology, seen: Seen | None, region: str, decision: Decision, interval: float
) -> bool | None:
    """Whether ``region``'s watcher is the sentinel this minute, by the watchers' items as
    last read (None: they are unread, or no active region is known)."""
    if seen is None or decision.active is None:
        return None
    return cadences.sentinel(
        topology,
        decision.active,
        *seen,
        me=region,
        silent_after=cadences.SILENT_INTERVALS * interval + MARGIN_SECONDS,
    )


def _period() -> float:
    """The seconds between two invocations, as the deployment says (else the schedule's)."""
    try:
        return float(os.environ.get(contract.ENV_WATCHER_PERIOD) or SCHEDULE.period_seconds)
    except ValueError:
        return float(SCHEDULE.period_seconds)


def _cut_off(isolation: Isolation, watcher: Watcher, exc: NoMajorityError) -> Decision:
    """An evaluation that found no majority behind any control region: this region's watcher
    counts how long it has been cut off, and past the lease fences its own region."""
    log.warning("control table: %s", exc)
    verdict = isolation.cut_off()
    return Decision(clock.now(), verdict.action, verdict.reason, None, {}, watcher.consecutive_bad)


def _step(watcher: Watcher) -> Decision:
    """One evaluation; a control table that does not answer is a decision to do nothing.

    Raises
    ------
    NoMajorityError
        No control region answered with a majority: this watcher is cut off (:func:`_cut_off`).
    """
    try:
        return watcher.step()
    except (RunInterruptedError, NoMajorityError):
        raise
    except FailoverError as exc:
        log.warning("evaluation failed: %s", exc)
        return Decision(
            clock.now(),
            WatchAction.UNREACHABLE if _unanswered(exc) else WatchAction.ERROR,
            str(exc),
            None,
            {},
            watcher.consecutive_bad,
        )


def _unanswered(exc: FailoverError) -> bool:
    """True when ``exc`` says AWS did not answer this watcher at all (no majority behind the
    control table is :func:`_cut_off`'s, raised before)."""
    return isinstance(exc, AwsError) and exc.unreachable


def load_deployment(region: str) -> Deployment:
    """The topology from the bundle (or ``FAILOVER_SPEC``) and the manifest from SSM (or
    ``FAILOVER_MANIFEST``).

    Raises
    ------
    FailoverError
        Neither manifest source is set, or the manifest does not describe the topology.
    """
    root = Path(os.environ.get("LAMBDA_TASK_ROOT") or Path(__file__).resolve().parents[2])
    spec = os.environ.get(contract.ENV_WATCHER_SPEC) or str(root / contract.WATCHER_SPEC_FILE)
    try:
        text = Path(spec).read_text(encoding="utf-8")
    except OSError as exc:
        raise FailoverError(f"topology {spec}: {exc.strerror or exc}") from exc
    # No base folder: the functions' code is not in the watcher's bundle, nor needed by it.
    topology = loads(text, source=spec)
    stack = os.environ.get(contract.ENV_WATCHER_STACK, "")
    if stack:
        topology = topology.for_stack(stack)
    table = os.environ.get(contract.ENV_WATCHER_CONTROL_TABLE, "")
    path = os.environ.get(contract.ENV_WATCHER_MANIFEST, "")
    if table:
        manifest = _manifest_item(
            table, os.environ.get(contract.ENV_WATCHER_CONTROL_REGIONS, ""), topology, region
        )
    elif path:
        manifest = load_manifest(path)
    else:
        raise FailoverError(
            f"set {contract.ENV_WATCHER_CONTROL_TABLE} or {contract.ENV_WATCHER_MANIFEST}"
        )
    check_deployment(manifest, topology, source=table or path)
    return Deployment(topology, manifest, Clients(endpoints=manifest.endpoints))


def _manifest_item(table: str, regions: str, topology: Topology, region: str) -> Manifest:
    """The manifest ``pulumi up`` wrote into the control table (read there in this watcher's
    own region first when it is a control region).

    Raises
    ------
    FailoverError
        The control table does not answer or holds no manifest.
    """
    order = [r for r in regions.split(",") if r]
    order = sorted(order, key=lambda r: r != region)
    boot = Manifest(
        app=topology.app,
        primary=topology.regions.primary,
        control=ControlManifest(table=table, regions=order),
        regions={},
    )
    got = ControlTable(Clients(), boot).get(contract.MANIFEST_ITEM, contract.MANIFEST_ITEM)
    if not got or not got.get(contract.MANIFEST_ITEM):
        raise FailoverError(f"control table {table} holds no manifest item: run pulumi up")
    return Manifest.model_validate_json(str(got[contract.MANIFEST_ITEM]))
