"""The regions a watcher owes a full read: those it saw not answering, until one covers them.

A region back from an outage may say fenced in its mode parameter while its components still
serve: a fence write that timed out during the outage can still land when the region resumes
(AWS, too, may apply a request whose answer was lost). So each region seen not answering is owed
a read of every component, and so is every region before a watcher's first evaluation. The debt
is paid only by a full read that covered the region and fixed what it found there
(:attr:`~controller.engine.fixes.Reconciliation.settled`), not by the region answering again: a
full read that times out on a region just back, or finds another watcher holding the lease, is
made again at the next evaluation, by the same invocation or the next (the debt is kept in the
watcher's item, :class:`~controller.controltable.watchstate.WatchState`).
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from controller.controltable.watchstate import WatchState
from controller.watchers.decisions import answering


class OwedReads:
    """The regions owed a full read (all of them until the first evaluation)."""

    def __init__(self) -> None:
        self._owed: frozenset[str] | None = None

    def restore(self, state: WatchState) -> None:
        """Carry on from an earlier invocation's debt (for an item saved before it kept one:
        the regions its last evaluation saw not answering)."""
        seen = state.decision.get("region_health")
        if state.unsettled is not None:
            self._owed = frozenset(state.unsettled)
        elif isinstance(seen, dict) and seen:
            self._owed = frozenset(seen) - answering(seen)

    def saved(self) -> tuple[str, ...] | None:
        """The debt as the watcher's item keeps it."""
        return None if self._owed is None else tuple(sorted(self._owed))

    def due(self, region_health: Mapping[str, str]) -> frozenset[str]:
        """The regions owed a full read that answer now (region -> health of this evaluation);
        those that do not answer are owed one from now on.

        >>> owed = OwedReads()
        >>> sorted(owed.due({"a": "healthy", "b": "unreachable"}))
        ['a']
        >>> owed.paid({"a"}); sorted(owed.due({"a": "healthy", "b": "healthy"}))
        ['b']
        """
        now = answering(region_health)
        owed = frozenset(region_health) if self._owed is None else self._owed
        self._owed = owed | (frozenset(region_health) - now)
        return self._owed & now

    def paid(self, settled: Set[str]) -> None:
        """A full read covered ``settled`` and fixed what it found there."""
        if self._owed is not None:
            self._owed -= settled
