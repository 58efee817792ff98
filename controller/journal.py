"""The journal and the lease, kept in the DynamoDB control table.

Called by the executor, the watcher and the CLI (``failover runs``). The lease makes sure one
controller acts at a time: it has an owner, an expiry and a fencing token that grows with every
new holder (a conditional write on the old token, so two takers cannot both win). Every journal
write is a transaction that also checks the writer's token against the lease, so a controller
that lost its lease cannot write any more. The control table is a global table; any region
listed in the manifest can serve it.

Items (``pk``, ``sk``):

- ``lease``, ``lease``: owner, token, expires_at
- ``automation``, ``automation``: paused, by, reason
- ``run#<id>``, ``run``: plan, status, source, target, owner, created, updated, degraded
- ``run#<id>``, ``step#<step id>``: state, started, ended, attempts, error
- ``current``, ``run``: the run in progress, if any
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from controller.aws import Clients, classify, explain, is_not_found, is_unreachable
from controller.aws import error_code as _code
from controller.errors import FailoverError, LeaseHeldError, StaleTokenError
from controller.manifest import Manifest
from controller.plan import FailoverPlan

log = logging.getLogger(__name__)

#: Items per journal transaction: DynamoDB takes 100 actions, one is the lease's token check.
PER_TRANSACTION = 99


class RunStatus(StrEnum):
    """How a run ended (or that it has not yet)."""

    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_DEGRADED = "completed_degraded"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"

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


@dataclass(frozen=True)
class Lease:
    """A held lease: who, until when, and the fencing token every write must carry."""

    owner: str
    token: int
    expires_at: float

    @property
    def holder_dead(self) -> bool:
        """True when the holder is provably dead: a process of this machine that has ended."""
        return _dead_local_owner(self.owner)


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
    kind: str = "failover"
    degraded: dict[str, str] = field(default_factory=dict)
    error: str = ""
    steps: dict[str, StepRecord] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The run as plain data (``failover runs --json``)."""
        return {
            "id": self.id, "kind": self.kind, "status": self.status.value,
            "from": self.plan.source, "to": self.plan.target, "owner": self.owner,
            "created": self.created, "updated": self.updated, "error": self.error,
            "degraded": dict(sorted(self.degraded.items())),
            "steps": [{"id": s.id, "state": s.state.value, "attempts": s.attempts,
                       "started": s.started, "ended": s.ended, "error": s.error}
                      for s in self.steps.values()],
        }


def default_owner() -> str:
    """A new controller's name: ``user@host:pid/nonce`` (two in one process differ)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "controller"
    return f"{user}@{socket.gethostname()}:{os.getpid()}/{secrets.token_hex(2)}"


def new_run_id(now: float | None = None) -> str:
    """A sortable, unique run id: ``YYYYmmdd-HHMMSS-xxxx``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


class Journal:
    """The control table: lease, runs, steps and the automation switch.

    Parameters
    ----------
    clients : the client cache (the control table's region comes from the manifest).
    manifest : names the control table and the regions that serve it.
    clock : seconds since the epoch; tests may pass their own.
    """

    def __init__(self, clients: Clients, manifest: Manifest,
                 clock: Callable[[], float] = time.time) -> None:
        self.clients = clients
        self.table = manifest.control.table
        self.regions = list(manifest.control.regions)
        self.clock = clock

    # -- access ------------------------------------------------------------------------------

    def _call(self, op: str, **kwargs: Any) -> Any:
        """Call DynamoDB in the first control region that answers (it is a global table)."""
        last: BaseException | None = None
        for region in self.regions:
            client = self.clients.client("dynamodb", region)
            try:
                if op == "transact_write_items":
                    return client.transact_write_items(**kwargs)
                return getattr(client, op)(TableName=self.table, **kwargs)
            except Exception as exc:
                if is_not_found(exc):  # a wrong manifest, or a wiped table: say so in one line
                    raise explain(exc, what=f"the control table {self.table}",
                                  where=region) or exc from exc
                if not is_unreachable(exc):
                    raise
                log.warning("control table unreachable in %s, trying the next region", region)
                last = exc
        raise FailoverError(f"control table {self.table} unreachable in every region "
                            f"({', '.join(self.regions)}): {last}")

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._call("get_item", Key=_key(pk, sk), ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    # -- lease -------------------------------------------------------------------------------

    def holder(self) -> Lease | None:
        """The current lease, if any (expired or not)."""
        item = self._get("lease", "lease")
        if not item:
            return None
        return Lease(item["owner"], int(item["token"]), float(item["expires_at"]))

    def acquire(self, owner: str, seconds: float) -> Lease:
        """Take the lease for ``seconds``, with a token one higher than the last holder's.

        The lease is free when nobody holds it, when it has expired, when ``owner`` already
        holds it, or when its holder is a process of this host that is no longer alive.

        Raises
        ------
        LeaseHeldError
            Another live controller holds it (the message names it); also when another taker
            won the race for the same token.
        """
        current = self.holder()
        now = self.clock()
        if current and current.expires_at > now and current.owner != owner \
                and not _dead_local_owner(current.owner):
            raise LeaseHeldError(current.owner, current.expires_at)
        token = (current.token if current else 0) + 1
        lease = Lease(owner, token, now + seconds)
        condition = "attribute_not_exists(pk)" if current is None else "#t = :old"
        values = {} if current is None else {":old": {"N": str(current.token)}}
        try:
            self._call("put_item", Item=_item("lease", "lease", owner=owner, token=token,
                                              expires_at=lease.expires_at),
                       ConditionExpression=condition,
                       ExpressionAttributeNames={"#t": "token"} if current else {},
                       **({"ExpressionAttributeValues": values} if values else {}))
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                winner = self.holder()
                raise LeaseHeldError(winner.owner if winner else "unknown",
                                     winner.expires_at if winner else None) from None
            raise classify(exc) from exc
        log.info("lease taken by %s with token %d", owner, token)
        return lease

    def renew(self, lease: Lease, seconds: float) -> Lease:
        """Extend a held lease.

        Raises
        ------
        StaleTokenError
            The lease was taken over (its token moved on).
        """
        renewed = Lease(lease.owner, lease.token, self.clock() + seconds)
        try:
            self._call("update_item", Key=_key("lease", "lease"),
                       UpdateExpression="SET expires_at = :e",
                       ConditionExpression="#t = :t AND #o = :o",
                       ExpressionAttributeNames={"#t": "token", "#o": "owner"},
                       ExpressionAttributeValues={":e": {"N": repr(renewed.expires_at)},
                                                  ":t": {"N": str(lease.token)},
                                                  ":o": {"S": lease.owner}})
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise _stale(lease) from None
            raise classify(exc) from exc
        return renewed

    def release(self, lease: Lease) -> None:
        """Give the lease up (it keeps its token, so the next holder's is higher)."""
        try:
            self._call("update_item", Key=_key("lease", "lease"),
                       UpdateExpression="SET expires_at = :z",
                       ConditionExpression="#t = :t",
                       ExpressionAttributeNames={"#t": "token"},
                       ExpressionAttributeValues={":z": {"N": "0"},
                                                  ":t": {"N": str(lease.token)}})
        except Exception as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise classify(exc) from exc
        log.info("lease released by %s (token %d)", lease.owner, lease.token)

    # -- token-guarded writes ----------------------------------------------------------------

    def _write(self, lease: Lease, puts: Sequence[dict[str, Any]],
               updates: Sequence[dict[str, Any]] = (),
               deletes: Sequence[dict[str, Any]] = ()) -> None:
        """Write items in one transaction that also checks ``lease``'s token is current."""
        check = {"ConditionCheck": {
            "TableName": self.table, "Key": _key("lease", "lease"),
            "ConditionExpression": "#t = :t",
            "ExpressionAttributeNames": {"#t": "token"},
            "ExpressionAttributeValues": {":t": {"N": str(lease.token)}}}}
        items = [check, *({"Put": {"TableName": self.table, "Item": p}} for p in puts),
                 *({"Update": {"TableName": self.table, **u}} for u in updates),
                 *({"Delete": {"TableName": self.table, **d}} for d in deletes)]
        try:
            self._call("transact_write_items", TransactItems=items)
        except Exception as exc:
            if _code(exc) in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise _stale(lease) from None
            raise classify(exc) from exc

    def create_run(self, lease: Lease, run_id: str, plan: FailoverPlan, *,
                   kind: str = "failover") -> Run:
        """Journal a new run, every step pending, and mark it the run in progress."""
        now = self.clock()
        run = Run(run_id, plan, RunStatus.RUNNING, lease.owner, now, now, kind,
                  {k: v.value for k, v in plan.degraded.items()},
                  steps={s.id: StepRecord(s.id) for s in plan.steps})
        plan_json = json.dumps({**plan.to_dict(), "unavailable": list(plan.unavailable)})
        puts = [_item(f"run#{run_id}", "run", plan=plan_json, status=run.status.value,
                      owner=lease.owner, created=now, updated=now, kind=kind,
                      degraded=json.dumps(run.degraded), error=""),
                _item("current", "run", run_id=run_id, owner=lease.owner, updated=now)]
        self._write(lease, puts)
        self.record_steps(lease, run_id, list(run.steps.values()))
        return run

    def record_step(self, lease: Lease, run_id: str, record: StepRecord) -> None:
        """Journal one step's state (after it acts; see :meth:`record_steps` for before)."""
        self.record_steps(lease, run_id, [record])

    def record_steps(self, lease: Lease, run_id: str, records: Sequence[StepRecord]) -> None:
        """Journal several steps' states, as few transactions as DynamoDB allows."""
        for chunk in _chunks(list(records), PER_TRANSACTION):
            self._write(lease, [_step_item(run_id, s) for s in chunk])

    def finish_run(self, lease: Lease, run: Run, status: RunStatus, error: str = "") -> None:
        """Journal the run's outcome and clear the run-in-progress mark."""
        run.status, run.error, run.updated = status, error, self.clock()
        done = [] if status == RunStatus.RUNNING else [{
            "Key": _key("current", "run"),
            "ConditionExpression": "attribute_not_exists(pk) OR run_id = :r",
            "ExpressionAttributeValues": {":r": {"S": run.id}}}]
        self._write(lease, [], [
            {"Key": _key(f"run#{run.id}", "run"),
             "UpdateExpression": "SET #s = :s, #e = :e, updated = :u, degraded = :d, #o = :o",
             "ExpressionAttributeNames": {"#s": "status", "#e": "error", "#o": "owner"},
             "ExpressionAttributeValues": {":s": {"S": status.value}, ":e": {"S": error},
                                           ":u": {"N": repr(run.updated)},
                                           ":d": {"S": json.dumps(run.degraded)},
                                           ":o": {"S": lease.owner}}},
        ], done)

    def adopt_run(self, lease: Lease, run: Run) -> None:
        """Mark ``run`` as owned by the holder of ``lease`` (resume)."""
        run.owner = lease.owner
        self._write(lease, [], [{
            "Key": _key(f"run#{run.id}", "run"), "UpdateExpression": "SET #o = :o",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": {"S": lease.owner}}}])

    # -- reads -------------------------------------------------------------------------------

    def current_run_id(self) -> str | None:
        """The id of the run in progress, if any."""
        item = self._get("current", "run")
        return str(item["run_id"]) if item else None

    def run(self, run_id: str) -> Run:
        """A run with all its steps.

        Raises
        ------
        FailoverError
            No such run (exit code 2: bad input).
        """
        items = [_plain(i) for i in self._query(f"run#{run_id}")]
        head = next((i for i in items if i["sk"] == "run"), None)
        if head is None:
            err = FailoverError(f"no run {run_id!r} in the journal (failover runs lists them)")
            err.exit_code = 2
            raise err
        plan = FailoverPlan.from_dict(json.loads(head["plan"]))
        run = Run(run_id, plan, RunStatus(head["status"]), head["owner"],
                  float(head["created"]), float(head["updated"]), head.get("kind", "failover"),
                  json.loads(head.get("degraded") or "{}"), head.get("error", ""))
        records = {i["sk"].removeprefix("step#"): i for i in items if i["sk"].startswith("step#")}
        for step in plan.steps:
            rec = records.get(step.id, {})
            run.steps[step.id] = StepRecord(
                step.id, StepState(rec.get("state", "pending")),
                _float(rec.get("started")), _float(rec.get("ended")),
                int(rec.get("attempts", 0)), rec.get("error", ""))
        return run

    def runs(self, limit: int = 50) -> list[Run]:
        """The most recent runs, newest first (without their step records)."""
        heads: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"FilterExpression": "sk = :run AND begins_with(pk, :p)",
                                  "ExpressionAttributeValues": {":run": {"S": "run"},
                                                                ":p": {"S": "run#"}}}
        while True:
            page = self._call("scan", **kwargs)
            heads += [_plain(i) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        heads.sort(key=lambda h: float(h["created"]), reverse=True)
        return [Run(h["pk"].removeprefix("run#"), FailoverPlan.from_dict(json.loads(h["plan"])),
                    RunStatus(h["status"]), h["owner"], float(h["created"]),
                    float(h["updated"]), h.get("kind", "failover"),
                    json.loads(h.get("degraded") or "{}"), h.get("error", ""))
                for h in heads[:limit]]

    def _query(self, pk: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"KeyConditionExpression": "pk = :pk",
                                  "ExpressionAttributeValues": {":pk": {"S": pk}},
                                  "ConsistentRead": True}
        while True:
            page = self._call("query", **kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- automation switch -------------------------------------------------------------------

    def automation(self) -> dict[str, Any]:
        """``{"paused": bool, "by": str, "reason": str, "since": float}``."""
        item = self._get("automation", "automation") or {}
        return {"paused": bool(item.get("paused", False)), "by": item.get("by", ""),
                "reason": item.get("reason", ""), "since": _float(item.get("since"))}

    def set_automation(self, paused: bool, by: str, reason: str = "") -> None:
        """Pause or resume automatic failover (kept in the control table for every watcher)."""
        self._call("put_item", Item=_item("automation", "automation", paused=paused, by=by,
                                          reason=reason, since=self.clock()))


# -- item helpers ------------------------------------------------------------------------------


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _item(pk: str, sk: str, **fields: Any) -> dict[str, Any]:
    item = _key(pk, sk)
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool):
            item[name] = {"BOOL": value}
        elif isinstance(value, int | float):
            item[name] = {"N": repr(value)}
        else:
            item[name] = {"S": str(value)}
    return item


def _step_item(run_id: str, record: StepRecord) -> dict[str, Any]:
    return _item(f"run#{run_id}", f"step#{record.id}", state=record.state.value,
                 started=record.started, ended=record.ended, attempts=record.attempts,
                 error=record.error)


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in item.items():
        (kind, raw), = value.items()
        out[name] = float(raw) if kind == "N" else raw
    return out


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def _chunks(items: list[StepRecord], size: int) -> Iterator[list[StepRecord]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _stale(lease: Lease) -> StaleTokenError:
    return StaleTokenError(
        f"lease lost: {lease.owner} (token {lease.token}) was taken over; this controller "
        "stops writing")


def _dead_local_owner(owner: str) -> bool:
    """True when ``owner`` names a process of this host that no longer runs."""
    host, _, pid = owner.rpartition("@")[2].partition("/")[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
