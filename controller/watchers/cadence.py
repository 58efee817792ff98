"""How long a deployed watcher's invocation keeps evaluating: its cadence, the watchers' cost.

Called by the deployed watcher (:mod:`controller.watchers.lambda_entry`) after each evaluation.
A Lambda function is billed for every second it lives, sleeping included, and EventBridge
invokes it at most once a minute: a watcher that evaluates every interval must live its whole
minute. Detection of the active region's failure needs that from one watcher outside the active
region only (the active region's own watcher fails with it). So, under
:attr:`~controller.contract.WatcherCadence.SENTINEL` (the deployed one):

- the **sentinel** evaluates every interval through its minute: the first region, in the order
  a failover picks its target (the standbys, then the primary), that is not the active region
  and whose watcher is alive (its item saved an evaluation lately), or this region when none
  before it is; a sentinel that dies is replaced by the next region's watcher at its next
  invocation;
- every other watcher evaluates once a minute and ends, unless that evaluation was not
  **calm** (the active region bad even once, a run, a fix, the lease held elsewhere, the
  control table out of reach, a cooldown...): then it evaluates every interval through its
  minute too, as all did before.

:attr:`~controller.contract.WatcherCadence.MINUTE` is the earlier cadence: every watcher
evaluates every interval through its minute (``bench/cost.py`` measures it as its baseline).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from controller.contract import WatcherCadence
from controller.controltable.watchstate import WatchState
from controller.topology import Topology
from controller.watchers.decisions import Decision, WatchAction

#: Decisions after which a watcher that is not the sentinel may end its invocation.
CALM = frozenset({WatchAction.NONE, WatchAction.PAUSED})
#: Intervals without a saved evaluation after which a watcher counts as dead (a sentinel saves
#: one every interval, and one within the margin of each new minute).
SILENT_INTERVALS = 3


class Role(StrEnum):
    """Why an invocation keeps evaluating, or that it ends (``calm``)."""

    SENTINEL = "sentinel"
    VIGILANT = "vigilant"
    CALM = "calm"


def sentinel(
    topology: Topology,
    active: str,
    states: Mapping[str, WatchState],
    now: float,
    *,
    me: str,
    silent_after: float,
) -> bool:
    """True when ``me`` is the sentinel: no region before it (in failover order, the active
    region left out) has a watcher that saved an evaluation in the last ``silent_after`` s.

    >>> from controller.topology import EXAMPLE_SPEC, load
    >>> t = load(EXAMPLE_SPEC)  # us-east-1, then us-west-2, eu-west-1
    >>> alive = {"us-west-2": WatchState("us-west-2", updated=95.0)}
    >>> [sentinel(t, "us-east-1", alive, 100.0, me=r, silent_after=35) for r in t.regions.all]
    [False, True, False]
    >>> [sentinel(t, "us-east-1", alive, 200.0, me=r, silent_after=35) for r in t.regions.all]
    [False, True, True]
    """
    order = topology.regions.targets(active)
    if me not in order:
        return False
    for region in order[: order.index(me)]:
        state = states.get(region)
        if state is not None and state.updated is not None and now - state.updated <= silent_after:
            return False
    return True


def calm(decision: Decision) -> bool:
    """True when nothing in ``decision`` calls for another evaluation this minute.

    >>> d = Decision(0.0, WatchAction.NONE, "healthy", "us-east-1", {}, 0)
    >>> calm(d), calm(Decision(0.0, WatchAction.NONE, "", "us-east-1", {}, 1))
    (True, False)
    """
    return decision.action in CALM and decision.consecutive_bad == 0


def role(cadence: WatcherCadence, decision: Decision, is_sentinel: bool | None) -> Role:
    """What this invocation does after ``decision``: keep evaluating (and why) or end.

    ``is_sentinel`` None: unknown (the control table or the watcher items could not be read),
    which keeps watching. Under :attr:`WatcherCadence.MINUTE` every watcher is a sentinel.

    >>> d = Decision(0.0, WatchAction.NONE, "healthy", "us-east-1", {}, 0)
    >>> [role(WatcherCadence.SENTINEL, d, s).value for s in (True, False, None)]
    ['sentinel', 'calm', 'vigilant']
    >>> role(WatcherCadence.MINUTE, d, False).value
    'sentinel'
    """
    if cadence is WatcherCadence.MINUTE or is_sentinel:
        return Role.SENTINEL
    if is_sentinel is None or not calm(decision):
        return Role.VIGILANT
    return Role.CALM
