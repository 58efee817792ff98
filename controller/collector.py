"""The cyclic garbage collector, paused where it would only walk objects that are never garbage.

Two places, one mechanism. Loading, graphing and planning a large topology allocate hundreds of
thousands of objects, none of them in reference cycles: each allocation burst made CPython's
collector walk every tracked object again, a quarter of a 10,000-component plan's time, freeing
nothing (:func:`paused_gc`). A ``failover`` process's start-up (the verb's module, the
topology's pydantic models and their schemas) builds some hundred thousand objects that live as
long as the process, and the collector walked them again and again: a quarter of ``failover
plan``'s wall time (``bench/cli_startup.py``). :func:`controller.interfaces.cli.main` pauses it
until the root callback calls :func:`started`, after the verb's module and the topology's models
are imported and before the verb itself; what exists then is frozen (``gc.freeze``: kept out of
every later collection) and the collector resumes for the verb, which may run for hours
(``watch``, ``serve``, ``demo``). Reference counting still frees what it always frees.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: True while a process's start-up holds the collector paused (until :func:`started`).
_starting = False


def _pause() -> bool:
    """Pause the collector; True when this call paused it (it was running)."""
    was_enabled = gc.isenabled()
    gc.disable()
    return was_enabled


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the collector for the ``with`` block (or the decorated call); restore it as it was.

    Nested blocks are fine: only the outermost one that paused it turns it back on.

    >>> with paused_gc():
    ...     with paused_gc():
    ...         pass
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    paused = _pause()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@contextmanager
def paused_until_started() -> Iterator[None]:
    """Pause the collector until :func:`started` (or the end of the block, whichever is first);
    a collector someone else turned off is left alone.

    Examples
    --------
    >>> with paused_until_started():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    global _starting
    _starting = _pause()
    try:
        yield
    finally:
        if _starting:
            _starting = False
            gc.enable()


def started() -> None:
    """Start-up is over: freeze what it built and resume the collector, if it was paused."""
    global _starting
    if _starting:
        _starting = False
        gc.freeze()
        gc.enable()
