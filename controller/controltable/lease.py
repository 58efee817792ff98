"""The lease: one controller acts at a time.

Called by the journal (which the executor and the watcher hold). The lease is one item of the
control table with an owner, an expiry and a fencing token that grows with every new holder (a
conditional write on the old token, so two takers cannot both win). Every journal write checks
the writer's token against it (:meth:`ControlTable.write`).
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.controltable.table import LEASE_PK, LEASE_SK, ControlTable, WriteOutcome, stale
from controller.errors import FailoverError, LeaseHeldError, OutcomeUnknownError, StaleTokenError

log = logging.getLogger(__name__)


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


def lease_of(got: Mapping[str, Any] | None) -> Lease | None:
    """The lease the lease item holds (as :meth:`ControlTable.get` returns it); None when it
    was never taken."""
    if not got or "token" not in got:
        return None
    return Lease(str(got["owner"]), int(got["token"]), float(got["expires_at"]))


def default_owner() -> str:
    """A new controller's name: ``user@host:pid/nonce`` (two in one process differ)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "controller"
    return f"{user}@{socket.gethostname()}:{os.getpid()}/{secrets.token_hex(2)}"


class Leases:
    """Take, renew, release and read the lease item of ``table``."""

    def __init__(self, table: ControlTable) -> None:
        self.table = table

    def holder(self) -> Lease | None:
        """The current lease, if any (expired or not)."""
        return lease_of(self.table.get(LEASE_PK, LEASE_SK))

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
        now = self.table.clock()
        if (
            current
            and current.expires_at > now
            and current.owner != owner
            and not _dead_local_owner(current.owner)
        ):
            raise LeaseHeldError(current.owner, current.expires_at)
        token = (current.token if current else 0) + 1
        lease = Lease(owner, token, now + seconds)
        # An update, not a put: the item also carries the desired state
        # (controller.controltable.desired), which a new holder inherits; the token only grows (no
        # TTL ever deletes this item).
        condition = "attribute_not_exists(pk)" if current is None else "#t = :old"
        values: dict[str, Any] = {
            ":o": {"S": owner},
            ":t": {"N": str(token)},
            ":e": {"N": repr(lease.expires_at)},
        }
        if current is not None:
            values[":old"] = {"N": str(current.token)}
        try:
            taken = self.table.update_lease_item(
                UpdateExpression="SET #o = :o, #t = :t, expires_at = :e",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#t": "token", "#o": "owner"},
                ExpressionAttributeValues=values,
            )
        except OutcomeUnknownError as unknown:
            # Conditional on the token read: once another taker moved it, this one never lands.
            outcome, now_held = self._settle(lease, current.token if current else 0)
            if outcome is WriteOutcome.DONE:
                return lease
            if outcome is WriteOutcome.REFUSED and now_held is not None:
                raise LeaseHeldError(now_held.owner, now_held.expires_at) from None
            raise unknown.checked_with(
                f"taking the lease for {owner} (token {token})", "`failover status`"
            ) from None
        if not taken:
            winner = self.holder()
            raise LeaseHeldError(
                winner.owner if winner else "unknown", winner.expires_at if winner else None
            )
        log.info("lease taken by %s with token %d", owner, token)
        return lease

    def _settle(self, wrote: Lease, read_token: int) -> tuple[WriteOutcome, Lease | None]:
        """What became of a lease write whose answer was lost, and the lease as it is now:
        done when the item holds ``wrote``; refused when its token moved past the one the
        write was conditional on (``read_token``: that condition never holds again)."""
        try:
            now = self.holder()
        except FailoverError as exc:
            log.warning("cannot read the lease back: %s", exc)
            return WriteOutcome.UNKNOWN, None
        if now == wrote:
            return WriteOutcome.DONE, now
        if now is not None and now.token != read_token and now.token >= wrote.token:
            return WriteOutcome.REFUSED, now
        return WriteOutcome.UNKNOWN, now

    def renew(self, lease: Lease, seconds: float) -> Lease:
        """Extend a held lease, counted from when the renewal is sent.

        Conditional on the expiry ``lease`` says was last written, besides its token and owner:
        a renewal whose answer was lost and that lands late cannot undo a later release or
        renewal.

        Raises
        ------
        StaleTokenError
            The lease was taken over (its token moved on), or released or renewed since.
        OutcomeUnknownError
            The renewal was sent and its answer lost.
        """
        renewed = Lease(lease.owner, lease.token, self.table.clock() + seconds)
        try:
            renewed_it = self.table.update_lease_item(
                UpdateExpression="SET expires_at = :e",
                ConditionExpression="#t = :t AND #o = :o AND expires_at = :was",
                ExpressionAttributeNames={"#t": "token", "#o": "owner"},
                ExpressionAttributeValues={
                    ":e": {"N": repr(renewed.expires_at)},
                    ":t": {"N": str(lease.token)},
                    ":o": {"S": lease.owner},
                    ":was": {"N": repr(lease.expires_at)},
                },
            )
        except OutcomeUnknownError as unknown:
            outcome, _ = self._settle(renewed, lease.token)
            if outcome is WriteOutcome.DONE:
                return renewed
            if outcome is WriteOutcome.REFUSED:
                raise stale(lease.owner, lease.token) from None
            raise unknown.checked_with(
                f"renewing the lease of {lease.owner} (token {lease.token})", "`failover status`"
            ) from None
        if not renewed_it:
            raise stale(lease.owner, lease.token)
        return renewed

    def release(self, lease: Lease) -> None:
        """Give the lease up (it keeps its token, so the next holder's is higher); a lease
        already taken over is left to its new holder."""
        self.table.update_lease_item(
            UpdateExpression="SET expires_at = :z",
            ConditionExpression="#t = :t",
            ExpressionAttributeNames={"#t": "token"},
            ExpressionAttributeValues={":z": {"N": "0"}, ":t": {"N": str(lease.token)}},
        )
        log.info("lease released by %s (token %d)", lease.owner, lease.token)


class LeaseKeeper:
    """A held lease, checked before every AWS action and renewed when it runs short.

    Called by the executor's clients just before each request (a ``before-call`` hook) and
    before each level. An action may take up to ``budget`` seconds (its timeouts and retries):
    the lease must be held for longer than that when it starts, else it is renewed first. A
    controller that cannot renew (the token moved on, or the control table does not answer)
    is *lost*: from then on every check fails at once, so it stops acting.

    Parameters
    ----------
    leases : the lease item's handle.
    lease : the lease just taken.
    seconds : how long each renewal holds it.
    budget : seconds an action may take once started.
    """

    def __init__(self, leases: Leases, lease: Lease, seconds: float, budget: float) -> None:
        self.leases = leases
        self.seconds = seconds
        self.budget = budget
        self._lease = lease
        self._lost: str = ""
        self._lock = threading.Lock()

    @property
    def lease(self) -> Lease:
        """The lease as last taken or renewed."""
        return self._lease

    @property
    def lost(self) -> str:
        """Why this controller lost the lease ("" while it holds it)."""
        return self._lost

    def check(self) -> Lease:
        """The lease, held for longer than one action's budget (renewed when it is not).

        Raises
        ------
        StaleTokenError
            The lease is lost: this controller must not act any more.
        """
        with self._lock:
            if self._lost:
                raise StaleTokenError(self._lost)
            if self._lease.expires_at - self.leases.table.clock() > self.budget:
                return self._lease
            return self._renew()

    def renew(self, unless_held_for: float = 0.0) -> Lease:
        """Renew now (before a level), unless the lease is held for more than
        ``unless_held_for`` seconds yet (a level's longest time: a write saved per level while
        it is; every journal write checks the token anyway, so a takeover is seen at the next
        one). See :meth:`check` for what a failure means."""
        with self._lock:
            if self._lost:
                raise StaleTokenError(self._lost)
            left = self._lease.expires_at - self.leases.table.clock()
            if unless_held_for and left > unless_held_for:
                return self._lease
            return self._renew()

    def _renew(self) -> Lease:
        try:
            # Counted from when the renewal was sent, not when it was answered; kept as written,
            # since the next renewal is conditional on it.
            self._lease = self.leases.renew(self._lease, self.seconds)
        except FailoverError as exc:
            self._lost = (
                f"lease lost: {self._lease.owner} (token {self._lease.token}) could "
                f"not renew ({exc}); this controller stops acting"
            )
            log.error("%s", self._lost)
            raise StaleTokenError(self._lost) from exc
        return self._lease


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
