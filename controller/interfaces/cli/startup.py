"""The cyclic garbage collector, paused while a ``failover`` process starts.

Start-up (the verb's module, the topology's pydantic models and their schemas) builds some
hundred thousand objects that live as long as the process, and the collector walked them again
and again: a quarter of ``failover plan``'s wall time (``bench/cli_startup.py``). It is paused
from :func:`controller.interfaces.cli.main` until the root callback runs, after the verb's module
and the spec's models are imported and before the verb itself; what exists then is frozen
(``gc.freeze``: kept out of every later collection, as it will never be garbage) and the
collector resumes for the verb, which may run for hours (``watch``, ``serve``, ``demo``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_paused = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the collector until :func:`started` (or the end of the block, whichever is first).

    Examples
    --------
    >>> import gc
    >>> with collector_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    global _paused
    if not gc.isenabled():  # someone else's choice: leave it alone
        yield
        return
    gc.disable()
    _paused = True
    try:
        yield
    finally:
        if _paused:
            _paused = False
            gc.enable()


def started() -> None:
    """Start-up is over: freeze what it built and resume the collector, if it was paused."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
