"""A value read at most once a second, by one reader, that never keeps a caller waiting long.

Called by the status page's sources (:mod:`controller.interfaces.serve.sources`). Many viewers
polling the page every second must not multiply the AWS calls, and a hung region must not hang the
page: a read runs in its own thread, callers within ``max_age`` of the last read get that read, and
a caller that would wait longer than ``wait`` for a new one gets the previous one (with its age).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from controller.errors import FailoverError, NotReadYetError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    """The last value read (or the error that ended the last read), and when."""

    value: T | None
    error: str
    read_at: float  # time.monotonic()

    @property
    def age(self) -> float:
        """Seconds since this was read."""
        return time.monotonic() - self.read_at


class Cached(Generic[T]):
    """``read()`` at most once per ``max_age`` seconds, in a background thread, single-flight.

    Parameters
    ----------
    read:
        What to read; its errors are kept as the snapshot's error, never raised to callers.
    max_age:
        How long a read answers every caller before the next caller starts a new one.
    wait:
        How long a caller waits for a read in flight before taking the previous snapshot.
    """

    def __init__(
        self,
        read: Callable[[], T],
        *,
        max_age: float = 1.0,
        wait: float = 2.0,
        name: str = "snapshot",
    ) -> None:
        self.read = read
        self.max_age = max_age
        self.wait = wait
        self.name = name
        self._lock = threading.Lock()
        self._last: Snapshot[T] | None = None
        self._done: threading.Event | None = None  # set when the read in flight ends

    def peek(self) -> Snapshot[T] | None:
        """The last snapshot, whatever its age, without reading."""
        return self._last

    def get(self) -> Snapshot[T]:
        """A snapshot at most ``max_age`` old, or the newest one after waiting ``wait``.

        Raises
        ------
        NotReadYetError
            Nothing has ever been read and the first read has not ended within ``wait``.
        """
        with self._lock:
            last = self._last
            if last is not None and last.age < self.max_age:
                return last
            done = self._done
            if done is None:
                done = self._done = threading.Event()
                threading.Thread(
                    target=self._refresh, args=(done,), daemon=True, name=f"serve-{self.name}"
                ).start()
        done.wait(self.wait)
        last = self._last
        if last is None:
            raise NotReadYetError(
                f"{self.name}: the first read has not ended after "
                f"{self.wait:.1f}s (a region may hang); try again"
            )
        return last

    def invalidate(self) -> None:
        """Make the next :meth:`get` read anew (after an action changed what it reads)."""
        with self._lock:
            if self._last is not None:
                self._last = Snapshot(self._last.value, self._last.error, float("-inf"))

    def _refresh(self, done: threading.Event) -> None:
        try:
            snapshot = Snapshot(self.read(), "", time.monotonic())
        except FailoverError as exc:
            snapshot = self._failed(" ".join(str(exc).split()))
        except Exception as exc:  # a page that stays up says what broke instead of dying
            log.exception("%s: the read failed", self.name)
            snapshot = self._failed(f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._last = snapshot
            self._done = None
        done.set()

    def _failed(self, error: str) -> Snapshot[T]:
        previous = self._last.value if self._last else None
        return Snapshot(previous, error, time.monotonic())
