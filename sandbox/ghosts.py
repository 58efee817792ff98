"""A reset's fresh world: a request signed before the reset never lands after it.

A hung server keeps what was sent to it in its socket and applies it when it resumes (AWS, too,
may apply a request whose answer was lost; ``heal`` keeps that). :meth:`Sandbox.reset` resumes
the hung servers and restores every server's snapshot: a request held across it would land in
the next test's world, after the restore, as a *ghost* (a lease taken, a region fenced, by a
test that has ended). So each reset begins a world with an *epoch*, the first second of it, in
a file beside the servers' logs, written before any server is resumed; every server
(:class:`DropGhosts`, standard library only: the launcher imports it before forking) drops,
without an answer, as a lost answer is dropped, a request whose SigV4 date (``X-Amz-Date``)
is earlier. The check is made once the request's body has arrived: a request whose last bytes
were held in a stopped sender lands no later than its check.

SigV4 dates have a second's resolution. When nothing can hold a request across the reset (no
server hung, no watcher running), the epoch is the second the reset starts in and it costs
nothing. Otherwise it is the next second, and the reset returns only once it has begun
(:func:`wait_for`), so that a request signed after the reset is never taken for a ghost: half a
second on average, on the resets that follow a hang. Requests without a date (the sandbox's
controls, unsigned callers) are never dropped.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from sandbox.mrsc import drop

log = logging.getLogger(__name__)

#: The file, beside the servers' logs (the one folder every server is told of), that holds the
#: epoch as SigV4 writes a date.
EPOCH_FILE = "epoch"
#: SigV4's date format (``X-Amz-Date``): fixed width, so dates compare as strings.
SIGV4_DATE = "%Y%m%dT%H%M%SZ"


def epoch_file(folder: str | Path) -> Path:
    """The epoch's file in ``folder``, the servers' log folder."""
    return Path(folder) / EPOCH_FILE


def sigv4_date(seconds: float) -> str:
    """``seconds`` since the epoch as ``X-Amz-Date`` writes it.

    >>> sigv4_date(1796295739.9)
    '20261203T110219Z'
    """
    return time.strftime(SIGV4_DATE, time.gmtime(seconds))


def begin(folder: str | Path, *, held: bool, clock: Callable[[], float] = time.time) -> float:
    """Begin a new world: write its epoch in ``folder``; the time the epoch begins.

    ``held``: a request from before may still be on its way (a server was hung, a watcher ran):
    the epoch is then the next second, which :func:`wait_for` waits for.
    """
    now = clock()
    first = float(math.floor(now) + 1 if held else math.floor(now))
    # Written in place, always 16 bytes: 4 us, where replacing the file costs ext4 a flush
    # (about 5 ms, on every reset).
    fd = os.open(epoch_file(folder), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, sigv4_date(first).encode(), 0)
    finally:
        os.close(fd)
    return first


def wait_for(
    first: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once the world that begins at ``first`` has begun (a request signed from then on
    is never dropped)."""
    while (left := first - clock()) > 0:
        sleep(left)


def signed_at(environ: dict[str, Any]) -> str | None:
    """The SigV4 date a request was signed at (header, or query of a presigned URL), if any.

    >>> signed_at({"HTTP_X_AMZ_DATE": "20261203T110219Z"})
    '20261203T110219Z'
    >>> signed_at({"QUERY_STRING": "X-Amz-Date=20261203T110219Z&X-Amz-Expires=60"})
    '20261203T110219Z'
    >>> signed_at({"PATH_INFO": "/moto-api/reset"}) is None
    True
    """
    header = environ.get("HTTP_X_AMZ_DATE")
    if header:
        return str(header)
    query = str(environ.get("QUERY_STRING", ""))
    if "X-Amz-Date=" not in query:
        return None
    return parse_qs(query).get("X-Amz-Date", [None])[0]


class DropGhosts:
    """WSGI middleware: a request signed before the epoch in ``folder`` is dropped without an
    answer (see the module's docstring); everything else goes on unchanged."""

    def __init__(self, application: Callable[..., Iterable[bytes]], folder: str | Path) -> None:
        self.application = application
        self.path = epoch_file(folder)

    def epoch(self) -> str:
        """The current epoch ("" before the first reset), read anew for each signed request
        (about 4 us): a resumed server must see the one written while it was stopped."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return ""
        try:
            return os.read(fd, 64).decode(errors="replace").strip()
        finally:
            os.close(fd)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        signed = signed_at(environ)
        if signed is None:
            return self.application(environ, start_response)
        length = environ.get("CONTENT_LENGTH")
        if length and length.isdigit():  # all of it first: see the module's docstring
            environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(int(length)))
        epoch = self.epoch()
        if signed < epoch:
            log.warning(
                "dropped %s %s signed at %s, before the sandbox's last reset (%s)",
                environ.get("REQUEST_METHOD"),
                environ.get("HTTP_X_AMZ_TARGET") or environ.get("PATH_INFO"),
                signed,
                epoch,
            )
            return drop(environ, start_response)
        return self.application(environ, start_response)
