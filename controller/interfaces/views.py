"""What ``status``, ``runs`` and the status page show, read once and shaped as plain data.

Called by the CLI (``failover status``, ``failover runs``) and by the status page's JSON API
(:mod:`controller.interfaces.serve`), so that ``failover status --json`` and ``GET /api/status`` are
one function's output and cannot drift apart. Each view reads, returns data, and never prints.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from controller import clock, health
from controller.actions.state import State
from controller.aws import Clients
from controller.contract import STATUS_DEADLINE_SECONDS
from controller.controltable import desired as desires
from controller.controltable.items import RUN_MARK, marked_run
from controller.controltable.lease import lease_of
from controller.controltable.rpo import to_plain
from controller.controltable.table import LEASE_PK, LEASE_SK, ControlTable
from controller.controltable.watchstate import WatchStates
from controller.errors import AwsError, FailoverError
from controller.topology import Topology
from controller.topology.manifest import Manifest

if TYPE_CHECKING:  # the runs' views import the journal when called: status needs none of it
    from controller.controltable.journal import Journal, Run

log = logging.getLogger(__name__)

#: The least wall time a status waits for the control table on a scaled clock (a loaded
#: machine's emulator took over a second at k = 4, where 4 AWS seconds are one wall second).
CONTROL_WALL_FLOOR = 3.0


@dataclass(frozen=True)
class StatusView:
    """The regions' health, the run in progress and the control table's desired state."""

    report: health.StatusReport
    run_in_progress: str | None
    control: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The ``failover status --json`` shape."""
        return {
            **self.report.to_dict(),
            "run_in_progress": self.run_in_progress,
            "control": self.control,
        }


def read_status(
    topology: Topology,
    manifest: Manifest,
    clients: Clients,
    *,
    deadline: float = STATUS_DEADLINE_SECONDS,
) -> StatusView:
    """Read every region, the desired state, the lease and the run in progress, all within
    ``deadline``: the control table is read beside the regions, once, with timeouts in
    proportion to the deadline, and what has not answered by then is said unknown. The
    report's ``elapsed`` is the whole read's.

    Raises
    ------
    AwsError
        The control table the manifest names does not exist, or refuses the credentials.
    """
    started = clock.monotonic()
    control = _ControlRead(manifest, clients, topology.regions.primary, deadline)
    # The control table is read beside the regions, once their probes are sent (a hung region's
    # timeout then runs while the rest is read).
    report = health.status(topology, manifest, clients, deadline=deadline, beside=control.start)
    running, state = control.result(started + deadline)
    return StatusView(replace(report, elapsed=clock.monotonic() - started), running, state)


class _ControlRead(threading.Thread):
    """The control table's part of a status, read once in a thread of its own: the lease item
    (the desired state and the lease) and the run in progress, in one request."""

    def __init__(self, manifest: Manifest, clients: Clients, primary: str, deadline: float):
        super().__init__(daemon=True, name="status-control")
        fast = clients.derive(settings=health.probe_settings(deadline))
        self.table = ControlTable(fast, manifest)
        self.primary = primary
        self.deadline = deadline
        self.state: dict[str, Any] = {}
        self.running: str | None = None
        self.failed: BaseException | None = None

    def run(self) -> None:
        try:
            items = self.table.get_many([(LEASE_PK, LEASE_SK), RUN_MARK])
            got = items[(LEASE_PK, LEASE_SK)]
            lease = lease_of(got)
            self.state = desires.of_item(got, self.primary).to_dict() | {
                "lease": None
                if lease is None
                else {"owner": lease.owner, "token": lease.token, "expires_at": lease.expires_at}
            }
            self.running = marked_run(items[RUN_MARK])
        except AwsError as exc:  # a wrong table, refused credentials: the caller raises it
            self.failed = exc
        except FailoverError as exc:
            log.warning("the control table cannot be read: %s", exc)
            self.state = {"error": f"{exc}: no controller can take the lease, nothing acts"}

    def result(self, until: float) -> tuple[str | None, dict[str, Any]]:
        """The run in progress and the control state, waiting at most until ``until``
        (monotonic)."""
        # on a scaled clock, at least CONTROL_WALL_FLOOR on the wall: the emulator's answers
        # cost its CPU, which is not AWS's time and does not shrink with k (clock.patient)
        self.join(clock.wall(clock.patient(clock.remaining(until), CONTROL_WALL_FLOOR)))
        if self.is_alive():
            return None, {
                "error": f"the control table did not answer within {self.deadline:g}s: who "
                "is active and whether a run is in progress are unknown"
            }
        if self.failed is not None:
            raise self.failed
        return self.running, self.state


def run_in_progress(manifest: Manifest, clients: Clients) -> str | None:
    """The run in progress, if any.

    A control table the manifest names wrongly is an error (:class:`AwsError`); one that cannot
    be reached is not: the regions are read anyway, and this says None.
    """
    from controller.controltable.journal import Journal

    try:
        return Journal(clients, manifest).current_run_id()
    except AwsError:
        raise
    except FailoverError as exc:
        log.warning("the control table cannot be read: %s", exc)
        return None


def run_summary(run: Run) -> dict[str, Any]:
    """One run as a line of ``failover runs --json`` (no step records)."""
    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status.value,
        "from": run.plan.source,
        "to": run.plan.target,
        "owner": run.owner,
        "created": run.created,
        "updated": run.updated,
        "error": run.error,
        "degraded": dict(sorted(run.degraded.items())),
        "rpo": to_plain(run.rpo),
    }


def read_runs(manifest: Manifest, clients: Clients, limit: int = 50) -> list[Run]:
    """The journalled runs, newest first (without their step records)."""
    from controller.controltable.journal import Journal

    return Journal(clients, manifest).runs(limit)


def runs_to_dict(runs: list[Run]) -> dict[str, Any]:
    """The ``failover runs --json`` shape."""
    return {"runs": [run_summary(r) for r in runs]}


def run_detail(run: Run) -> dict[str, Any]:
    """A run with every step's record and where the plan puts it (level, action, phase).

    The status page draws the run level by level from this; ``Run.to_dict`` alone has the
    records but not their place in the plan.
    """
    planned = {s.id: s for s in run.plan.steps}
    steps = []
    for record in run.to_dict()["steps"]:
        step = planned.get(record["id"])
        if step is not None:
            record |= {
                "component": step.component,
                "region": step.region,
                "phase": step.phase,
                "action": step.action,
                "level": step.level,
            }
        steps.append(record)
    return run.to_dict() | {"steps": steps}


def read_run(
    manifest: Manifest, clients: Clients, run_id: str | None = None
) -> dict[str, Any] | None:
    """``run_id``'s detail; without one, the run in progress, else the newest run (or None)."""
    from controller.controltable.journal import Journal

    journal = Journal(clients, manifest)
    wanted = run_id or journal.current_run_id()
    if wanted is None:
        newest = journal.runs(limit=50)
        if not newest:
            return None
        wanted = newest[0].id
    return run_detail(journal.run(wanted))


def degraded_components(
    status: dict[str, Any] | None, run: dict[str, Any] | None
) -> dict[str, str]:
    """Which components of the active region are degraded, and how: the mode the run into it
    left them in, else their health when it is not healthy.

    Example
    -------
    >>> status = {"active_region": "b", "regions": {"b": {"components": {
    ...     "api": {"health": "healthy"}, "queue": {"health": "unreachable"}}}}}
    >>> degraded_components(status, {"to": "b", "degraded": {"api": "read_only"}})
    {'api': 'read_only', 'queue': 'unreachable'}
    """
    if not status or not status.get("active_region"):
        return {}
    active = status["active_region"]
    out = dict((run or {}).get("degraded") or {}) if (run or {}).get("to") == active else {}
    region = status.get("regions", {}).get(active) or {}
    for name, comp in (region.get("components") or {}).items():
        if comp.get("health") != health.Health.HEALTHY:
            out.setdefault(name, comp.get("health", State.UNKNOWN))
    return out


def watchers_view(
    topology: Topology,
    manifest: Manifest,
    clients: Clients,
    status: StatusView | None,
    decisions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What the watchers see and may do: the automation switch, the lease holder, and for each
    region its health and each probe's vote (True: the probe says failing).

    ``decisions`` are a local watcher's recent decisions (the demo's, newest last), when the
    caller has them; each region's ``watcher`` slot carries what that region's watcher last
    decided once the watchers record it in the control table.
    """
    from controller.controltable.journal import Journal

    journal = Journal(clients, manifest)
    rows = _or_error(lambda: {r["region"]: r for r in watcher_rows(topology, manifest, clients)})
    out: dict[str, Any] = {
        "automation": _or_error(journal.automation),
        "lease": _or_error(lambda: _lease(journal)),
        "regions": {},
        "decisions": list(decisions or []),
    }
    for region in topology.regions.all:
        status_of = status.report.regions.get(region) if status else None
        row = rows.get(region, {}) if "error" not in rows else {}
        out["regions"][region] = {
            "health": status_of.health.value if status_of else None,
            "votes": health.votes(status_of) if status_of else {},
            "watcher": row.get("last"),
            "silent": row.get("silent"),
        }
    return out


#: A region's watcher that has not evaluated for this long is silent (the dead-man alarm's
#: three minutes).
SILENT_AFTER = 180.0


def watcher_rows(
    topology: Topology, manifest: Manifest, clients: Clients, now: float | None = None
) -> list[dict[str, Any]]:
    """Each region's watcher as ``failover watchers --json`` shows it: its last decision (the
    control table's watcher item), how long ago, silent or not, and where its logs are.

    Raises
    ------
    FailoverError
        The control table cannot be read.
    """
    states = WatchStates(ControlTable(clients, manifest)).all()
    now = clock.now() if now is None else now
    rows = []
    for region in topology.regions.all:
        state = states.get(region)
        ref = manifest.regions[region].watcher if region in manifest.regions else None
        age = None if state is None or state.updated is None else round(now - state.updated, 1)
        rows.append(
            {
                "region": region,
                "silent": age is None or age > SILENT_AFTER,
                "seconds_since_evaluation": age,
                "function": ref.function if ref else topology.watcher_function(region),
                "log_group": ref.log_group if ref else topology.watcher_log_group(region),
                "log_file": ref.log_file if ref else None,
                **({"last": state.to_dict()} if state else {}),
            }
        )
    return rows


def _lease(journal: Journal) -> dict[str, Any] | None:
    lease = journal.holder()
    if lease is None:
        return None
    return {"owner": lease.owner, "token": lease.token, "expires_at": lease.expires_at}


def _or_error(read: Any) -> Any:
    try:
        return read()
    except FailoverError as exc:
        return {"error": str(exc)}
