"""The desired state: which region is active, with an epoch that grows at every change.

Called by the executor (a run's source is what this says, read under the lease; a run writes
its target here before it acts), the reconciler (it converges AWS towards this) and the CLI
(``status``, ``execute`` read it to show and plan). It is the one source of truth for "who is
active": mode parameters and DNS are what AWS says, this is what the controllers decided.

It lives on the lease item of the control table, so that writing it is one single-item
conditional write that checks the writer's fencing token (a multi-Region strongly consistent
table takes no transactions): only the lease holder can change it, and a controller that lost
the lease cannot. Until a first run writes it, the active region is the topology's primary
(what ``pulumi up`` deploys) at epoch 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller import contract
from controller.aws import classify, error_code
from controller.controltable import LEASE_PK, LEASE_SK, ControlTable, WriteOutcome, key, stale
from controller.errors import FailoverError, OutcomeUnknownError
from controller.lease import Lease

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Desired:
    """Which region should be active, since which change (``epoch``), set by which run, when.

    ``since`` (seconds since the epoch, the writer's clock; None until a run writes it) is when
    the active region last changed, whichever controller changed it: the application's
    cooldown counts from it (:meth:`controller.watcher.Watcher.cooldown_left`).
    """

    active: str
    epoch: int
    run_id: str = ""
    since: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``failover status --json``, ``reconcile --json``)."""
        return {
            "active": self.active,
            "epoch": self.epoch,
            "run_id": self.run_id,
            "since": self.since,
        }


def read(table: ControlTable, default: str) -> Desired:
    """The desired state, read strongly consistent; ``default`` at epoch 0 when never written."""
    return of_item(table.get(LEASE_PK, LEASE_SK), default)


def of_item(got: Mapping[str, Any] | None, default: str) -> Desired:
    """The desired state the lease item holds (as :meth:`ControlTable.get` returns it).

    >>> of_item(None, "us-east-1"), of_item({"active": "b", "epoch": 2.0}, "a").epoch
    (Desired(active='us-east-1', epoch=0, run_id='', since=None), 2)
    """
    got = got or {}
    active = got.get(contract.DESIRED_ACTIVE)
    if not active:
        return Desired(default, 0)
    since = got.get("since")
    return Desired(
        str(active),
        int(got.get("epoch", 0)),
        str(got.get("run_id", "")),
        float(since) if since is not None else None,
    )


def write(table: ControlTable, lease: Lease, current: Desired, active: str, run_id: str) -> Desired:
    """Make ``active`` the desired active region, epoch one higher, under ``lease``.

    One conditional write on the lease item: it succeeds only while ``lease``'s token is the
    lease's and the epoch is still ``current``'s (nobody changed it since it was read).

    The epoch is the write's version: a write whose answer was lost and that lands late cannot
    overwrite a newer decision, since that one moved the epoch (or the token) past its condition.

    Raises
    ------
    StaleTokenError
        The lease was taken over, or the epoch moved: nothing was written.
    OutcomeUnknownError
        The write was sent and its answer lost, and the item still holds ``current``: it may
        land.
    """
    new = Desired(active, current.epoch + 1, run_id, table.clock())
    try:
        table.call(
            "update_item",
            Key=key(LEASE_PK, LEASE_SK),
            UpdateExpression="SET #a = :a, #n = :n, #r = :r, #s = :s",
            ConditionExpression="#t = :t AND (attribute_not_exists(#n) OR #n = :e)",
            ExpressionAttributeNames={
                "#t": "token",
                "#a": contract.DESIRED_ACTIVE,
                "#n": "epoch",
                "#r": "run_id",
                "#s": "since",
            },
            ExpressionAttributeValues={
                ":a": {"S": active},
                ":n": {"N": str(new.epoch)},
                ":r": {"S": run_id},
                ":s": {"N": repr(new.since)},
                ":t": {"N": str(lease.token)},
                ":e": {"N": str(current.epoch)},
            },
        )
    except OutcomeUnknownError as unknown:
        outcome = _settle(table, lease, current, new)
        if outcome is WriteOutcome.REFUSED:
            raise stale(lease.owner, lease.token) from None
        if outcome is WriteOutcome.UNKNOWN:
            raise unknown.checked_with(
                f"making {active} the desired region (epoch {new.epoch}, run {run_id or '-'})",
                "`failover status`",
            ) from None
    except Exception as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise stale(lease.owner, lease.token) from None
        raise classify(exc) from exc
    log.info("desired state: %s active (epoch %d, run %s)", active, new.epoch, run_id or "-")
    return new


def _settle(table: ControlTable, lease: Lease, current: Desired, new: Desired) -> WriteOutcome:
    """What became of a desired-state write whose answer was lost, as the lease item says now:
    done when it holds ``new``; refused when its epoch or token moved past the write's
    condition (it can never hold again); else unknown."""
    try:
        got = table.get(LEASE_PK, LEASE_SK) or {}
    except FailoverError as exc:
        log.warning("cannot read the desired state back: %s", exc)
        return WriteOutcome.UNKNOWN
    epoch = int(got.get("epoch", 0))
    landed = got.get(contract.DESIRED_ACTIVE) == new.active and got.get("run_id") == new.run_id
    if epoch == new.epoch and landed:
        return WriteOutcome.DONE
    if epoch != current.epoch or int(got.get("token", 0)) != lease.token:
        return WriteOutcome.REFUSED
    return WriteOutcome.UNKNOWN
