"""The automation switch: whether the watchers may fail over on their own.

Called by the journal (``failover automation pause|resume|show``, the status page's actions and
every watcher read it through it). One item of the control table, so that every watcher in every
region sees the same switch. Each write carries a version one higher than the one its writer
read and is conditional on that read: a write whose answer was lost, landing late (a hung server
resumed), cannot overwrite a newer pause or resume.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from controller.aws import error_code
from controller.controltable.items import as_float, item
from controller.controltable.table import ControlTable, WriteOutcome
from controller.errors import ConflictError, FailoverError, NoMajorityError, OutcomeUnknownError

log = logging.getLogger(__name__)

PK = SK = "automation"
#: The attribute that grows by one with every write of the switch.
VERSION = "version"
#: The attribute naming each write (what a read-back recognises as its own).
WRITE_ID = "write_id"
#: Where an operator sees what the switch holds.
SHOW = "`failover automation show`"


class AutomationSwitch:
    """Read and flip the automation item of ``table``."""

    def __init__(self, table: ControlTable) -> None:
        self.table = table

    def read(self) -> dict[str, Any]:
        """``{"paused": bool, "by": str, "reason": str, "since": float, "version": int}``."""
        return state_of(self.table.get(PK, SK))

    def set(self, paused: bool, by: str, reason: str = "") -> None:
        """Pause or resume automatic failover (kept in the control table for every watcher).

        Reads the switch, then writes it with the next version, on condition that the version
        is still the one read.

        Raises
        ------
        NoMajorityError
            Nothing was written (exit code 1).
        OutcomeUnknownError
            The write was sent and its answer lost; it may still land (exit code 4).
        ConflictError
            Another write changed the switch since it was read: this one was not applied and
            cannot be any more (exit code 3).
        """
        what = "automation " + ("pause" if paused else "resume")
        try:
            version = int((self.table.get(PK, SK) or {}).get(VERSION, 0))
        except NoMajorityError as exc:
            raise NoMajorityError(f"{what} not written: {exc}") from None
        write_id = secrets.token_hex(8)
        condition: dict[str, Any] = {
            "ConditionExpression": "attribute_not_exists(#v)" if version == 0 else "#v = :v",
            "ExpressionAttributeNames": {"#v": VERSION},
        }
        if version:
            condition["ExpressionAttributeValues"] = {":v": {"N": str(version)}}
        new = item(PK, SK, paused=paused, by=by, reason=reason, since=self.table.clock())
        new |= {VERSION: {"N": str(version + 1)}, WRITE_ID: {"S": write_id}}
        try:
            self.table.call("put_item", Item=new, **condition)
        except OutcomeUnknownError as unknown:
            outcome = self._settle(version, write_id)
            if outcome is WriteOutcome.DONE:
                return
            if outcome is WriteOutcome.REFUSED:
                raise self._superseded(what) from None
            raise unknown.checked_with(what, SHOW) from None
        except NoMajorityError as exc:
            raise NoMajorityError(f"{what} not written: {exc}") from None
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise self._superseded(what) from None
            raise

    def _settle(self, version: int, write_id: str) -> WriteOutcome:
        """What became of a write whose answer was lost, as the switch says now."""
        try:
            got = self.table.get(PK, SK) or {}
        except FailoverError as exc:
            log.warning("cannot read the automation switch back: %s", exc)
            return WriteOutcome.UNKNOWN
        if got.get(WRITE_ID) == write_id:
            return WriteOutcome.DONE
        if int(got.get(VERSION, 0)) > version:  # its condition can never hold again
            return WriteOutcome.REFUSED
        return WriteOutcome.UNKNOWN

    def _superseded(self, what: str) -> ConflictError:
        return ConflictError(
            f"{what} not applied: the switch changed since it was read (another operator or "
            f"the status page); check with {SHOW} and decide again"
        )


def state_of(got: dict[str, Any] | None) -> dict[str, Any]:
    """The switch as its item (plain values, or None: never set) holds it.

    >>> state_of(None)["paused"], state_of({"paused": True, "by": "oncall", "version": 3})["by"]
    (False, 'oncall')
    """
    got = got or {}
    return {
        "paused": bool(got.get("paused", False)),
        "by": got.get("by", ""),
        "reason": got.get("reason", ""),
        "since": as_float(got.get("since")),
        "version": int(got.get(VERSION, 0)),
    }
