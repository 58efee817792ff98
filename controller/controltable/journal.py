"""The journal of runs, kept in the DynamoDB control table.

Called by the executor, the watcher and the CLI (``failover runs``). Every write is a transaction
that also checks the writer's fencing token against the lease
(:mod:`controller.controltable.lease`), so a controller that lost its lease cannot write any more.
:class:`Journal` is also the one handle on the control table the callers hold: it takes the lease
and flips the automation switch (:mod:`controller.controltable.automation`) through the modules that
own them. The control table is a global table; any region listed in the manifest can serve it
(:mod:`controller.controltable.table`).

Items (``pk``, ``sk``):

- ``lease``, ``lease``: owner, token, expires_at; active, epoch, run_id (the desired state)
- ``automation``, ``automation``: paused, by, reason
- ``run#<id>``, ``run``: plan, status, owner, created, updated, degraded, rpo, decided
- ``run#<id>``, ``step#<step id>``: state, started, ended, attempts, error (none: pending)
- ``current``, ``run``: run_id, the run in progress ("": none)
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from controller import clock as aws_clock
from controller.aws import Clients
from controller.controltable import desired as desires
from controller.controltable import glance as glances
from controller.controltable.automation import AutomationSwitch
from controller.controltable.glance import Glance
from controller.controltable.items import RUN_MARK, as_float, chunks, item, key, marked_run, plain
from controller.controltable.lease import Lease, Leases
from controller.controltable.rpo import TableLag, from_plain, to_plain
from controller.controltable.table import PER_TRANSACTION, ControlTable
from controller.errors import RunNotFoundError
from controller.plan.steps import FailoverPlan
from controller.topology.manifest import Manifest

#: Items to write, as DynamoDB takes them.
Items = Sequence[dict[str, Any]]


class RunKind(StrEnum):
    """Why a run moves the application: away from a failing region, or back to the primary."""

    FAILOVER = "failover"
    FAILBACK = "failback"


class RunStatus(StrEnum):
    """How a run ended (or that it has not yet)."""

    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_DEGRADED = "completed_degraded"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    #: Stopped by SIGINT or SIGTERM between steps; ``failover resume`` continues it.
    INTERRUPTED = "interrupted"

    @property
    def ok(self) -> bool:
        """True for the statuses that mean the target now serves."""
        return self in (RunStatus.COMPLETED, RunStatus.COMPLETED_DEGRADED)


class StepState(StrEnum):
    """Where one step of a run stands."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNVERIFIED = "unverified"

    @property
    def finished(self) -> bool:
        """True when the step needs no more work (done, skipped, or best-effort unverified)."""
        return self in (StepState.DONE, StepState.SKIPPED, StepState.UNVERIFIED)


@dataclass
class StepRecord:
    """The journalled state of one step."""

    id: str
    state: StepState = StepState.PENDING
    started: float | None = None
    ended: float | None = None
    attempts: int = 0
    error: str = ""


@dataclass
class Run:
    """A journalled run: its plan, its status and every step's record."""

    id: str
    plan: FailoverPlan
    status: RunStatus
    owner: str
    created: float
    updated: float
    kind: RunKind = RunKind.FAILOVER
    degraded: dict[str, str] = field(default_factory=dict)
    error: str = ""
    steps: dict[str, StepRecord] = field(default_factory=dict)
    #: The desired state's epoch this run set (0: none, a run journalled before epochs).
    epoch: int = 0
    #: What the switch could lose: each table's replication lag as read just before it acted.
    rpo: tuple[TableLag, ...] = ()
    #: When a watcher's evaluation decided it (None: an operator's), kept if the watcher dies.
    decided: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The run as plain data (``failover runs --json``)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status.value,
            "epoch": self.epoch,
            "from": self.plan.source,
            "to": self.plan.target,
            "owner": self.owner,
            "created": self.created,
            "updated": self.updated,
            "error": self.error,
            "degraded": dict(sorted(self.degraded.items())),
            "rpo": to_plain(self.rpo),
            "decided": self.decided,
            "steps": [
                {
                    "id": s.id,
                    "state": s.state.value,
                    "attempts": s.attempts,
                    "started": s.started,
                    "ended": s.ended,
                    "error": s.error,
                }
                for s in self.steps.values()
            ],
        }


def new_run_id(now: float | None = None) -> str:
    """A sortable, unique run id: ``YYYYmmdd-HHMMSS-xxxx``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or aws_clock.now()))
    return f"{stamp}-{secrets.token_hex(2)}"


class Journal:
    """The control table's runs and steps; the handle on its lease, desired state and switch."""

    def __init__(
        self, clients: Clients, manifest: Manifest, clock: Callable[[], float] = aws_clock.now
    ) -> None:
        self.control = ControlTable(clients, manifest, clock)
        self.leases = Leases(self.control)
        self.switch = AutomationSwitch(self.control)
        self.clock = clock

    # -- lease (see controller.controltable.lease) -------------------------------------------------

    def holder(self) -> Lease | None:
        """The current lease, if any (expired or not)."""
        return self.leases.holder()

    def acquire(self, owner: str, seconds: float) -> Lease:
        """Take the lease for ``seconds`` (see :meth:`Leases.acquire`)."""
        return self.leases.acquire(owner, seconds)

    def release(self, lease: Lease) -> None:
        """Give the lease up (see :meth:`Leases.release`)."""
        self.leases.release(lease)

    # -- desired state (see controller.controltable.desired) ---------------------------------------

    def desired(self, default: str) -> desires.Desired:
        """Which region should be active (``default`` at epoch 0 until a run says)."""
        return desires.read(self.control, default)

    def glance(self, default: str) -> Glance:
        """The desired state, the lease, the switch and the run in progress in one read."""
        return glances.read(self.control, default)

    def set_desired(
        self, lease: Lease, current: desires.Desired, active: str, run_id: str
    ) -> desires.Desired:
        """Make ``active`` the desired region, under ``lease`` (see :func:`desired.write`)."""
        return desires.write(self.control, lease, current, active, run_id)

    # -- automation switch (see controller.controltable.automation) --------------------------------

    def automation(self) -> dict[str, Any]:
        """``{"paused": bool, "by": str, "reason": str, "since": float}``."""
        return self.switch.read()

    def set_automation(self, paused: bool, by: str, reason: str = "") -> None:
        """Pause or resume automatic failover (kept in the control table for every watcher)."""
        self.switch.set(paused, by, reason)

    # -- token-guarded writes ----------------------------------------------------------------

    def _write(self, lease: Lease, puts: Items, updates: Items = ()) -> None:
        """Write items, each conditional on ``lease``'s token (:meth:`ControlTable.write`)."""
        self.control.write(lease.owner, lease.token, puts, updates)

    def create_run(
        self,
        lease: Lease,
        run_id: str,
        plan: FailoverPlan,
        *,
        kind: RunKind = RunKind.FAILOVER,
        epoch: int = 0,
        rpo: Sequence[TableLag] = (),
        decided: float | None = None,
    ) -> Run:
        """Journal a new run, every step pending, and mark it the run in progress (``rpo``: the
        tables' lags read just before, see :mod:`controller.controltable.rpo`)."""
        now = self.clock()
        run = Run(
            run_id,
            plan,
            RunStatus.RUNNING,
            lease.owner,
            now,
            now,
            kind,
            {k: v.value for k, v in plan.degraded.items()},
            steps={s.id: StepRecord(s.id) for s in plan.steps},
            epoch=epoch,
            rpo=tuple(rpo),
            decided=decided,
        )
        plan_json = json.dumps({**plan.to_dict(), "unavailable": list(plan.unavailable)})
        puts = [
            item(
                f"run#{run_id}",
                "run",
                plan=plan_json,
                status=run.status.value,
                owner=lease.owner,
                created=now,
                updated=now,
                kind=kind,
                degraded=json.dumps(run.degraded),
                error="",
                epoch=epoch,
                rpo=json.dumps(to_plain(rpo)),
                decided=decided,
            ),
            item(*RUN_MARK, run_id=run_id, owner=lease.owner, updated=now),
        ]
        # No item per pending step: a step without one reads as pending (:meth:`run`), and
        # its first item is written before it acts (a write of every step, saved on each run)
        self._write(lease, puts)
        return run

    def record_steps(self, lease: Lease, run_id: str, records: Sequence[StepRecord]) -> None:
        """Journal several steps' states, as few transactions as DynamoDB allows."""
        for chunk in chunks(list(records), PER_TRANSACTION):
            self._write(lease, [_step_item(run_id, s) for s in chunk])

    def finish_run(self, lease: Lease, run: Run, status: RunStatus, error: str = "") -> None:
        """Journal the run's outcome and clear the run-in-progress mark: emptied, not deleted, so
        that a late copy of the run's own mark (sent to a hung region) cannot land after it."""
        run.status, run.error, run.updated = status, error, self.clock()
        done = [] if status == RunStatus.RUNNING else [_no_run(run.id, run.updated)]
        self._write(
            lease,
            [],
            [
                {
                    "Key": key(f"run#{run.id}", "run"),
                    "UpdateExpression": (
                        "SET #s = :s, #e = :e, updated = :u, degraded = :d, #o = :o"
                    ),
                    "ExpressionAttributeNames": {"#s": "status", "#e": "error", "#o": "owner"},
                    "ExpressionAttributeValues": {
                        ":s": {"S": status.value},
                        ":e": {"S": error},
                        ":u": {"N": repr(run.updated)},
                        ":d": {"S": json.dumps(run.degraded)},
                        ":o": {"S": lease.owner},
                    },
                },
                *done,
            ],
        )

    def adopt_run(self, lease: Lease, run: Run) -> None:
        """Mark ``run`` as owned by the holder of ``lease``, running again (resume)."""
        run.owner, run.status = lease.owner, RunStatus.RUNNING
        self._write(
            lease,
            [item(*RUN_MARK, run_id=run.id, owner=lease.owner, updated=self.clock())],
            [
                {
                    "Key": key(f"run#{run.id}", "run"),
                    "UpdateExpression": "SET #o = :o, #s = :s",
                    "ExpressionAttributeNames": {"#o": "owner", "#s": "status"},
                    "ExpressionAttributeValues": {
                        ":o": {"S": lease.owner},
                        ":s": {"S": RunStatus.RUNNING.value},
                    },
                }
            ],
        )

    # -- reads -------------------------------------------------------------------------------

    def current_run_id(self) -> str | None:
        """The id of the run in progress, if any."""
        return marked_run(self.control.get(*RUN_MARK))

    def run(self, run_id: str) -> Run:
        """A run with all its steps.

        Raises
        ------
        RunNotFoundError
            No such run (exit code 2: bad input).
        """
        items = [plain(i) for i in self.control.query(f"run#{run_id}")]
        head = next((i for i in items if i["sk"] == "run"), None)
        if head is None:
            raise RunNotFoundError(f"no run {run_id!r} in the journal (failover runs lists them)")
        run = _run_of(head)
        records = {i["sk"].removeprefix("step#"): i for i in items if i["sk"].startswith("step#")}
        for step in run.plan.steps:
            rec = records.get(step.id, {})
            run.steps[step.id] = StepRecord(
                step.id,
                StepState(rec.get("state", "pending")),
                as_float(rec.get("started")),
                as_float(rec.get("ended")),
                int(rec.get("attempts", 0)),
                rec.get("error", ""),
            )
        return run

    def runs(self, limit: int = 50) -> list[Run]:
        """The most recent runs, newest first (without their step records)."""
        heads = [
            plain(i)
            for i in self.control.scan(
                FilterExpression="sk = :run AND begins_with(pk, :p)",
                ExpressionAttributeValues={":run": {"S": "run"}, ":p": {"S": "run#"}},
            )
        ]
        heads.sort(key=lambda h: float(h["created"]), reverse=True)
        return [_run_of(h) for h in heads[:limit]]


def _run_of(head: dict[str, Any]) -> Run:
    """A run as its head item in the control table describes it (no step records yet)."""
    return Run(
        head["pk"].removeprefix("run#"),
        FailoverPlan.from_dict(json.loads(head["plan"])),
        RunStatus(head["status"]),
        head["owner"],
        float(head["created"]),
        float(head["updated"]),
        RunKind(head.get("kind", RunKind.FAILOVER)),
        json.loads(head.get("degraded") or "{}"),
        head.get("error", ""),
        epoch=int(head.get("epoch", 0)),
        rpo=from_plain(json.loads(head.get("rpo") or "[]")),
        decided=head.get("decided"),
    )


def _no_run(run_id: str, now: float) -> dict[str, Any]:
    """The update that empties the run-in-progress mark if it still names ``run_id``."""
    values = {":r": {"S": run_id}, ":none": {"S": ""}, ":u": {"N": repr(now)}}
    return {
        "Key": key(*RUN_MARK),
        "UpdateExpression": "SET run_id = :none, updated = :u",
        "ConditionExpression": "attribute_not_exists(pk) OR run_id = :r",
        "ExpressionAttributeValues": values,
    }


def _step_item(run_id: str, record: StepRecord) -> dict[str, Any]:
    return item(
        f"run#{run_id}",
        f"step#{record.id}",
        state=record.state.value,
        started=record.started,
        ended=record.ended,
        attempts=record.attempts,
        error=record.error,
    )
