"""Which regions have not answered a call in this run: one timeout each, never one per level.

Called by the executor (seeded from the prechecks: a replication-lag read of the source that got
no answer) and by the driver (a fencing step, or a global step's best-effort mode parameter, that
got none). Once a region is silent, the run sends it nothing more: its remaining fence steps end
``unverified`` at once, and a global step (DNS) skips its mode parameter there. So a hung source
costs the run the one timeout that found it silent, whatever the number of fence levels; the
reconciler fences it, verified, when it answers again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Silence:
    """The regions that did not answer in this run, each with the first call that found it.

    Shared by the steps of a level, which run on threads: marking is locked, and only the first
    call to find a region silent is kept (the reason every later step names).

    Examples
    --------
    >>> silence = Silence()
    >>> silence.mark("us-east-1", "fence:api@us-east-1: ReadTimeoutError")
    >>> silence.mark("us-east-1", "a later one")
    >>> "us-east-1" in silence, "us-west-2" in silence
    (True, False)
    >>> silence.why("us-east-1")
    'fence:api@us-east-1: ReadTimeoutError'
    """

    _first: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def mark(self, region: str, call: str) -> None:
        """Remember that ``call`` to ``region`` got no answer (the first such call is kept)."""
        with self._lock:
            self._first.setdefault(region, call)

    def __contains__(self, region: object) -> bool:
        with self._lock:
            return region in self._first

    def why(self, region: str) -> str:
        """The first call to ``region`` that got no answer ("" when it answered everything)."""
        with self._lock:
            return self._first.get(region, "")

    @property
    def regions(self) -> frozenset[str]:
        """Every silent region."""
        with self._lock:
            return frozenset(self._first)
