"""Which control regions failed lately: a hint, kept in this process and in a file for the next.

Called by the control table (:mod:`controller.controltable.table`) to order the regions it tries:
a region that failed within :data:`SUSPECT_SECONDS` is tried after the others, in this process
and, through :func:`suspects_path`, in the next commands an operator types. It only orders the
attempts (every region is still tried), so a stale or foreign entry costs time, never a wrong
answer.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path

from controller import clock
from controller.contract import cache_folder

log = logging.getLogger(__name__)

#: Which replica: the table, its region and where that region is reached.
Key = tuple[str, str, str]
#: Seconds a control region that failed is tried after the others.
SUSPECT_SECONDS = 30.0
#: When each (table, region, endpoint) last failed, for every control table of this process.
_SUSPECT: dict[Key, float] = {}
_SUSPECT_LOCK = threading.Lock()


def suspects_path() -> Path:
    """Where failed control regions are remembered across processes (a hint, never a verdict).

    An operator types a dozen commands in an incident, each a new process: without this, each
    would wait out one timeout on the lost region before trying the next. The file only orders
    the attempts (every region is still tried), so a stale or foreign entry costs time, never a
    wrong answer. In the controller's cache (:func:`controller.contract.cache_folder`).
    """
    return cache_folder() / "control-suspects.json"


def recent(now: float | None = None) -> dict[Key, float]:
    """Every failure within :data:`SUSPECT_SECONDS`, this process's and the others'."""
    with _SUSPECT_LOCK:
        return _known(clock.now() if now is None else now)


def remember(key: Key) -> None:
    """Remember that ``key``'s region did not answer just now, here and for the next processes."""
    now = clock.now()
    with _SUSPECT_LOCK:
        _SUSPECT[key] = now
        _save_suspects(_known(now))


def _known(now: float) -> dict[Key, float]:
    """Every recent failure, this process's and the others', the latest of each (lock held)."""
    known = _load_suspects(now)
    for key_, when in _SUSPECT.items():
        known[key_] = max(when, known.get(key_, when))
    return known


def _load_suspects(now: float) -> dict[Key, float]:
    """The other processes' recent failures (empty when the file is missing or unreadable)."""
    try:
        rows = json.loads(suspects_path().read_text(encoding="utf-8"))
        return {
            (str(r[0]), str(r[1]), str(r[2])): float(r[3])
            for r in rows
            if now - float(r[3]) < SUSPECT_SECONDS
        }
    except (OSError, ValueError, TypeError, IndexError):
        return {}


def _save_suspects(entries: dict[Key, float]) -> None:
    """Write ``entries`` for the next processes; best effort (a read-only home just costs time)."""
    path = suspects_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".suspects-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump([[*k, v] for k, v in entries.items()], out)
        os.replace(temp, path)
    except OSError as exc:
        log.debug("cannot remember the failed control regions in %s: %s", path, exc)
