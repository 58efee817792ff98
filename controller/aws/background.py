"""Calls whose caller may stop waiting: a call to a region that may be hung runs in a thread of
its own, and the caller takes its answer when it comes, or goes on without it.

A hung region answers nothing until its client's timeout: the hedged control-table read, a
global resource's mode, the lag precheck's read of a failing source each need their answer only
if it comes in time, or later than something else that does not wait for it. The thread is a
daemon: a command does not wait at exit for a call nobody reads (it ends at its own timeout).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


def settle(fn: Callable[[], T], future: Future[T]) -> None:
    """Call ``fn`` and put its value, or the exception it raised, in ``future``."""
    try:
        value = fn()
    except Exception as exc:  # handed to whoever reads the future
        future.set_exception(exc)
    else:
        future.set_result(value)


def in_background(fn: Callable[[], T], *, name: str) -> Future[T]:
    """``fn`` called in a daemon thread named ``name``; its outcome, once it has one.

    >>> in_background(lambda: 6 * 7, name="answer").result(timeout=5)
    42
    """
    future: Future[T] = Future()
    threading.Thread(target=settle, args=(fn, future), name=name, daemon=True).start()
    return future


def in_this_thread(fn: Callable[[], T]) -> Future[T]:
    """``fn`` called here, its outcome as :func:`in_background` would hand it over.

    >>> in_this_thread(lambda: 1 // 0).exception()
    ZeroDivisionError('integer division or modulo by zero')
    """
    future: Future[T] = Future()
    settle(fn, future)
    return future
