"""Where the status page's data comes from: the views ``status`` and ``runs`` use, cached.

Called by ``failover serve`` and by the demo (which adds its traffic counts and its watcher's
decisions). Each source is a :class:`~controller.serve.snapshot.Cached` read, so that the page's
JSON API costs AWS one read per second however many people watch, and a hung region costs the
page a stale answer, never a hung one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller import graph as graphs
from controller import health, views
from controller.aws import Clients
from controller.contract import STATUS_DEADLINE_SECONDS
from controller.errors import FailoverError
from controller.lease import default_owner
from controller.manifest import Manifest
from controller.serve.snapshot import Cached
from controller.spec import Topology

log = logging.getLogger(__name__)

#: ``() -> {"series": [{"t": seconds, "ok": n, "degraded": n, "failed": n}, ...]}``
TrafficSource = Callable[[], dict[str, Any]]
#: ``() -> [decision.to_dict(), ...]``: a local watcher's recent decisions, newest last.
DecisionSource = Callable[[], list[dict[str, Any]]]


@dataclass
class Sources:
    """What the API serves: cached reads, fixed data, and the one action it may take."""

    status: Cached[dict[str, Any]]
    runs: Cached[dict[str, Any]]
    run: Cached[dict[str, Any] | None]
    watchers: Cached[dict[str, Any]]
    graph: dict[str, Any]
    config: dict[str, Any]
    set_paused: Callable[[bool, str], dict[str, Any]]
    traffic: TrafficSource | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Seconds an action waits for the control table before answering that its outcome is
    #: unknown (the write goes on, and may still land).
    action_wait: float = STATUS_DEADLINE_SECONDS + 1.0

    def invalidate(self) -> None:
        """Read everything anew on the next request (after an action)."""
        for cached in (self.status, self.runs, self.run, self.watchers):
            cached.invalidate()


def deployment_sources(
    topology: Topology,
    manifest: Manifest,
    clients: Clients,
    *,
    deadline: float = STATUS_DEADLINE_SECONDS,
    max_age: float = 1.0,
    traffic: TrafficSource | None = None,
    decisions: DecisionSource | None = None,
) -> Sources:
    """The sources of a deployed application (AWS, or the emulator the manifest names).

    ``deadline`` bounds each status read (what has not answered is shown unreachable); a
    request waits at most ``deadline`` plus a second before it takes the previous snapshot.
    """
    latest: list[views.StatusView] = []

    def status() -> dict[str, Any]:
        view = views.read_status(topology, manifest, clients, deadline=deadline)
        latest[:] = [view]
        return view.to_dict()

    def watchers() -> dict[str, Any]:
        return views.watchers_view(
            topology,
            manifest,
            clients,
            latest[0] if latest else None,
            decisions() if decisions else None,
        )

    # An action waits for the control table at most ``wait``: its calls time out in proportion
    # to the deadline, as the status read's do, so that a hung control region costs it one
    # short timeout and the answer usually says what became of the write.
    fast = health.probe_clients(clients, health.probe_settings(deadline))

    def set_paused(paused: bool, reason: str) -> dict[str, Any]:
        from controller.journal import Journal

        journal = Journal(fast, manifest)
        by = default_owner()
        journal.set_automation(paused, by, reason)
        try:
            return journal.automation()
        except FailoverError as exc:  # written, then not read back: say what was written
            log.warning("automation written, not read back: %s", exc)
            return {"paused": paused, "by": by, "reason": reason}

    wait = deadline + 1.0
    graph = graphs.build(topology)
    return Sources(
        status=Cached(status, max_age=max_age, wait=wait, name="status"),
        runs=Cached(
            lambda: views.runs_to_dict(views.read_runs(manifest, clients)),
            max_age=max_age,
            wait=wait,
            name="runs",
        ),
        run=Cached(
            lambda: views.read_run(manifest, clients), max_age=max_age, wait=wait, name="run"
        ),
        watchers=Cached(watchers, max_age=max_age, wait=wait, name="watchers"),
        graph=graphs.to_data(graph),
        config={
            "app": topology.app,
            "primary": topology.regions.primary,
            "regions": list(topology.regions.all),
            "components": {
                name: {"kind": str(c.kind), "tier": str(c.resolved_tier)}
                for name, c in topology.components.items()
            },
            "refresh_seconds": max_age,
        },
        set_paused=set_paused,
        traffic=traffic,
        action_wait=wait,
    )
