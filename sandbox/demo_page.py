"""The demo's status page: ``failover serve``'s page on the sandbox, with the traffic chart.

Called by the demo (:mod:`sandbox.demo`). The page server runs in the demo's process, so the
load generator's outcomes reach the chart as they happen, by a function call rather than a
file or a socket; the rest of the page reads the sandbox exactly as ``failover serve`` reads
AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from controller.interfaces.serve import Api, StatusServer, deployment_sources
from sandbox.lifecycle import Sandbox
from sandbox.loadgen import Sample

#: How long the page's status read waits for a region (a hung one shows unreachable then).
PAGE_DEADLINE = 2.0


def per_second(samples: Sequence[Sample], start: float) -> list[dict[str, int]]:
    """Requests by the second they ended in (since ``start``), by outcome.

    Example
    -------
    >>> s = [Sample(10.0, 10.2, "read", "ok", 200, 1), Sample(10.1, 11.5, "write", "failed",
    ...      503, 3)]
    >>> per_second(s, 10.0)
    [{'t': 0, 'ok': 1, 'degraded': 0, 'failed': 0}, {'t': 1, 'ok': 0, 'degraded': 0, 'failed': 1}]
    """
    series: dict[int, dict[str, int]] = {}
    for sample in samples:
        second = int(sample.end - start)
        row = series.setdefault(second, {"t": second, "ok": 0, "degraded": 0, "failed": 0})
        row[sample.outcome] = row.get(sample.outcome, 0) + 1
    if not series:
        return []
    return [
        series.get(t, {"t": t, "ok": 0, "degraded": 0, "failed": 0})
        for t in range(min(series), max(series) + 1)
    ]


class Feed:
    """What the demo hands the page once its load and its watcher run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: Callable[[], Sequence[Sample]] = list
        self._decisions: Callable[[], Sequence[Any]] = list
        self.start = 0.0

    def attach(
        self,
        start: float,
        samples: Callable[[], Sequence[Sample]],
        decisions: Callable[[], Sequence[Any]] | None = None,
    ) -> None:
        """Chart ``samples()`` from ``start``; list ``decisions()`` (dicts, or objects with
        ``to_dict``, newest last)."""
        with self._lock:
            self.start, self._samples = start, samples
            if decisions is not None:
                self._decisions = decisions

    def traffic(self) -> dict[str, Any]:
        with self._lock:
            samples, start = list(self._samples()), self.start
        return {"series": per_second(samples, start)}

    def decisions(self) -> list[dict[str, Any]]:
        with self._lock:
            found = list(self._decisions())
        return [d if isinstance(d, dict) else d.to_dict() for d in found[-10:]]


def start_page(box: Sandbox, feed: Feed, port: int = 0) -> StatusServer:
    """Serve the page of ``box`` on the loopback (``port`` 0: a free one), read-only."""
    sources = deployment_sources(
        box.topology,
        box.manifest,
        box.clients,
        deadline=PAGE_DEADLINE,
        traffic=feed.traffic,
        decisions=feed.decisions,
    )
    return StatusServer(Api(sources), port=port).start()
