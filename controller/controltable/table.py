"""The control table: how it is reached, and how an item is written under the lease.

Called by the lease, the desired state, the journal of runs, the automation switch and the
watchers' states, which each keep their own items (:mod:`controller.controltable.items` encodes
them) in the one DynamoDB global table the manifest names. This module tries the control regions
(its own region first, the ones that failed lately last: :mod:`controller.controltable.suspects`;
a slow read is asked of the next region too) until one answers with a majority behind it,
raises :class:`~controller.errors.NoMajorityError` when none does, and writes each item with a
single-item conditional write on its last writer's fencing token
(:mod:`controller.controltable.fencing` makes the requests; a multi-Region strongly consistent
table takes no transactions, no TTL and no local secondary index, so nothing here uses them), so
that a controller that lost its lease cannot overwrite what the new holder wrote.

A write's outcome is one of :class:`WriteOutcome`: done, refused (every attempt was refused
before it was sent, or answered with an error: :class:`~controller.errors.NoMajorityError`), or
unknown (an attempt was sent and its answer lost: it may land later, when a hung server resumes;
:class:`~controller.errors.OutcomeUnknownError`). Every writer makes its write conditional on
what it last read (a token, an epoch, a version, a sequence number that only grow), so a late
one cannot land over a newer decision, and trying the next region after a lost answer is safe:
at most one attempt lands.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from enum import StrEnum
from typing import Any

from controller import clock as aws_clock
from controller import contract
from controller.aws import Clients, classify, decode, error_code, explain, is_not_found
from controller.aws.background import in_background, in_this_thread
from controller.controltable import fencing, suspects
from controller.controltable.items import key, plain
from controller.errors import (
    FailoverError,
    NoMajorityError,
    OutcomeUnknownError,
    StaleTokenError,
)
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)

#: Items per journal write batch (written in parallel, one conditional write each).
PER_TRANSACTION = 99
#: Threads writing one batch of journal items.
WRITERS = 8
#: The operations that change the control table: a lost answer to one is an unknown outcome.
WRITES = frozenset({"put_item", "update_item", "delete_item"})
#: Operations that name the table inside their request items, not as ``TableName``.
BATCHES = frozenset({"batch_get_item"})
#: Wall seconds a read waits for the regions asked before it asks the next one too: far above a
#: healthy answer's time (milliseconds on AWS, tenths of a second from a loaded emulator), far
#: below the 4 s a hung region costs a call before it times out.
HEDGE_SECONDS = 0.5
#: The lease's item; its ``token`` attribute fences every guarded write.
LEASE_PK = LEASE_SK = contract.LEASE_ITEM


class WriteOutcome(StrEnum):
    """What became of a write to the control table."""

    #: Applied: its answer said so, or a read since shows it.
    DONE = "done"
    #: Not applied, and it cannot be any more (refused before it was sent, answered with an
    #: error, or its condition can no longer hold).
    REFUSED = "refused"
    #: Sent and its answer lost, and nothing read since says whether it landed.
    UNKNOWN = "unknown"


def suspect(clients: Clients, manifest: Manifest, regions: Iterable[str]) -> None:
    """Remember that ``regions`` did not answer a probe just now: those that serve the control
    table are tried after the others (:meth:`ControlTable.order`).

    A status reads the regions first and the control table next: without this, a hung region
    that the probes gave up on after 1.5 s costs the control table's read a second, longer
    timeout (4 s) before it tries the next region.
    """
    table = ControlTable(clients, manifest)
    for region in regions:
        if region in table.regions:
            table.suspect(region)


class ControlTable:
    """The control table, reached in the first of its regions that answers.

    Parameters
    ----------
    clients : the client cache (the control table's region comes from the manifest).
    manifest : names the control table and the regions that serve it.
    clock : seconds since the epoch; tests may pass their own.
    """

    def __init__(
        self, clients: Clients, manifest: Manifest, clock: Callable[[], float] = aws_clock.now
    ) -> None:
        # One attempt per region: trying the next control region is the retry, and a region
        # that does not answer costs one timeout, not three.
        self.clients = clients.derive(settings=replace(clients.settings, max_attempts=1))
        self.table = manifest.control.table
        self.regions = list(manifest.control.regions)
        self.clock = clock
        self.home = clients.home

    def call(self, op: str, **kwargs: Any) -> Any:
        """Call DynamoDB in the first control region that answers with a majority behind it.

        A read the regions asked have not answered within :data:`HEDGE_SECONDS` is asked of the
        next region too: the first answer wins, and a region it outran is suspected (a strongly
        consistent table answers a read alike in every region). A write waits for each region's
        answer or timeout before it tries the next, so that at most one attempt lands.

        Raises
        ------
        NoMajorityError
            No control region answered: each was unreachable or could not reach a majority.
            A write was not applied (each attempt was refused before it was sent or answered
            with an error).
        OutcomeUnknownError
            A write was sent and its answer lost, and no region confirmed it: it may land.
        """
        failed: list[str] = []
        lost = False  # a write was sent somewhere and its answer never came
        regions = iter(self.order())
        pending: dict[Future[Any], str] = {}
        hedge = None if op in WRITES else HEDGE_SECONDS

        def ask_next() -> bool:
            region = next(regions, None)
            if region is not None:
                pending[self._ask(region, op, kwargs, inline=hedge is None)] = region
            return region is not None

        ask_next()
        while pending:
            done, _ = wait(pending, timeout=hedge, return_when=FIRST_COMPLETED)
            if not done:  # slow to answer: the next region is asked as well
                if not ask_next():
                    hedge = None  # none left to ask: wait for the answers
                continue
            for future in done:
                region = pending.pop(future)
                exc = future.exception()
                if exc is None:
                    for slow in pending.values():
                        self.suspect(slow)
                    return future.result()
                if is_not_found(exc):  # a wrong manifest, or a wiped table: say so in one line
                    raise (
                        explain(exc, what=f"the control table {self.table}", where=region) or exc
                    ) from exc
                why = _unavailable(exc)
                if why is None:
                    if lost and error_code(exc) == "ConditionalCheckFailedException":
                        # The lost attempt may be what made the condition false.
                        raise OutcomeUnknownError(
                            f"the control table {self.table} did not confirm the write: "
                            f"{'; '.join(failed)}; then {region} found its condition false"
                        ) from exc
                    raise exc
                log.warning("control table in %s: %s; trying the next region", region, why)
                failed.append(f"{region} {why}")
                lost = lost or (op in WRITES and _answer_lost(exc))
                self.suspect(region)
            if not pending:
                ask_next()
        if lost:
            raise OutcomeUnknownError(
                f"the control table {self.table} did not confirm the write: {'; '.join(failed)}"
            )
        raise NoMajorityError(
            f"the control table {self.table} has no majority: {'; '.join(failed)}"
            + ("; nothing was written" if op in WRITES else "")
        )

    def _ask(self, region: str, op: str, kwargs: dict[str, Any], *, inline: bool) -> Future[Any]:
        """``op`` sent to ``region``'s replica: in this thread (``inline``), or in a thread of
        its own that nobody waits for once another region answered (a hung region's ends at its
        timeout)."""
        client = self.clients.client("dynamodb", region)

        # A batch names its table in each request item; every other operation, once.
        params = kwargs if op in BATCHES else {"TableName": self.table, **kwargs}

        def send() -> Any:
            return getattr(client, op)(**params)

        return in_this_thread(send) if inline else in_background(send, name=f"control-{region}")

    def order(self) -> list[str]:
        """The regions in the order they are tried: this controller's own region first, then
        the others; a region that failed lately (:mod:`~controller.controltable.suspects`: in
        this process or in another) goes after those that did not, so one lost region costs one
        timeout, not one per call or per command; of those, the one that failed last goes last
        (when every region failed lately, a blip in one, the one still lost is not tried first
        on every call)."""
        now = aws_clock.now()
        known = suspects.recent(now)

        def failed_at(region: str) -> float:
            when = known.get(self._key(region), -math.inf)
            return when if now - when < suspects.SUSPECT_SECONDS else -math.inf

        return sorted(nearest_first(self.regions, self.home), key=failed_at)

    def _key(self, region: str) -> suspects.Key:
        """Which replica: the table, its region and where that region is reached (the
        emulator's address, or AWS), so two sandboxes' tables of one name stay apart."""
        return (self.table, region, self.clients.endpoints.get(region, "aws"))

    def suspect(self, region: str) -> None:
        """Remember that ``region`` did not answer, here and for the next processes."""
        suspects.remember(self._key(region))

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One item as plain values, read consistently; None when it does not exist."""
        item = self.call("get_item", Key=key(pk, sk), ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """Items read consistently in one request (``BatchGetItem``, at most 100 keys), each
        ``(pk, sk)`` to its item as plain values or None; a key left unprocessed (throttled) is
        read on its own. One round trip, the same units as a ``GetItem`` a key."""
        request = {"Keys": [key(pk, sk) for pk, sk in keys], "ConsistentRead": True}
        page = self.call("batch_get_item", RequestItems={self.table: request})
        found: dict[tuple[str, str], Any] = dict.fromkeys(keys)
        for got in map(plain, page.get("Responses", {}).get(self.table, [])):
            found[(got["pk"], got["sk"])] = got
        for left in page.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", []):
            pk, sk = left["pk"]["S"], left["sk"]["S"]
            found[(pk, sk)] = self.get(pk, sk)
        return found

    def query(self, pk: str) -> Iterator[dict[str, Any]]:
        """Every item of partition ``pk`` (as DynamoDB returns them), page after page."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            page = self.call("query", **kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def scan(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item a scan with ``kwargs`` returns (as DynamoDB returns them)."""
        while True:
            page = self.call("scan", **kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def write(
        self,
        owner: str,
        token: int,
        puts: Sequence[dict[str, Any]],
        updates: Sequence[dict[str, Any]] = (),
        deletes: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write items, each with one single-item conditional write carrying ``token``.

        A multi-Region strongly consistent table takes no transactions, so no write can check
        the lease item itself. Instead every item records the fencing token of its last writer
        and each write is conditional on that token not being newer than ``token``: once a new
        holder has written an item, a controller with an older token cannot overwrite it. Each
        batch first reads the lease (strongly consistent) and stops if its token moved on; the
        callers also check the lease's expiry just before (:class:`~controller.controltable.lease.
        LeaseKeeper`), which keeps an old holder from writing while a new one can take it. Writes of
        several items run in parallel; each is idempotent (it sets values).

        A write whose answer was lost is settled by reading its item back: there (its token and
        sequence number), it is done; overwritten by a newer write, it can never land.

        Raises
        ------
        StaleTokenError
            An item was last written by a newer lease holder: this controller lost the lease.
        OutcomeUnknownError
            A write was sent, its answer lost, and its item cannot be read to settle it.
        """
        lease = self.get(LEASE_PK, LEASE_SK)  # strongly consistent: the token is the latest
        if lease is None or int(lease["token"]) != token:
            raise stale(owner, token)
        calls = [
            *(fencing.put(p, token, fencing.next_seq()) for p in puts),
            *(fencing.update(u, token, fencing.next_seq()) for u in updates),
            *(fencing.delete(d, token, fencing.next_seq()) for d in deletes),
        ]
        if len(calls) <= 2:
            for op, kwargs in calls:
                self._conditional(owner, token, op, kwargs)
            return
        with ThreadPoolExecutor(min(len(calls), WRITERS), thread_name_prefix="journal") as pool:
            for future in [
                pool.submit(self._conditional, owner, token, op, kw) for op, kw in calls
            ]:
                future.result()

    def _conditional(self, owner: str, token: int, op: str, kwargs: dict[str, Any]) -> None:
        try:
            written = self.attempt(op, **kwargs)
        except OutcomeUnknownError as unknown:
            outcome = self._settle(op, kwargs, token)
            if outcome is WriteOutcome.DONE:
                return
            if outcome is WriteOutcome.REFUSED:
                raise stale(owner, token) from None
            raise unknown.checked_with(
                f"journal write by {owner} (token {token})", "`failover runs`"
            ) from None
        if not written:
            raise stale(owner, token)

    def attempt(self, op: str, **kwargs: Any) -> bool:
        """One conditional write; False when its condition did not hold (nothing was written).

        Raises
        ------
        OutcomeUnknownError
            The write was sent and its answer lost: the caller settles it by reading back.
        FailoverError
            Any other failure: no control region answered, or a step error (``classify``).
        """
        try:
            self.call(op, **kwargs)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise classify(exc) from exc
        return True

    def update_lease_item(self, **kwargs: Any) -> bool:
        """One conditional update of the lease item (which the desired state shares); False
        when its condition did not hold."""
        return self.attempt("update_item", Key=key(LEASE_PK, LEASE_SK), **kwargs)

    def _settle(self, op: str, kwargs: dict[str, Any], token: int) -> WriteOutcome:
        """What became of a journal write whose answer was lost, as its item says now: done
        (it holds this write's token and sequence number, or, for a delete, is gone), refused
        (a newer write holds it: this one's condition can never hold again), else unknown."""
        seq = fencing.sent_seq(kwargs)
        try:
            got = self.call("get_item", Key=fencing.key_of(kwargs), ConsistentRead=True).get("Item")
        except FailoverError as exc:
            log.warning("cannot settle a journal write whose answer was lost: %s", exc)
            return WriteOutcome.UNKNOWN
        if got is None:
            return WriteOutcome.DONE if op == "delete_item" else WriteOutcome.UNKNOWN
        last = fencing.last_write(got)
        if last == (token, seq) and op != "delete_item":
            return WriteOutcome.DONE
        return WriteOutcome.REFUSED if last > (token, seq) else WriteOutcome.UNKNOWN


def nearest_first(regions: Sequence[str], home: str | None) -> list[str]:
    """The control regions, ``home`` first when it is one of them.

    >>> nearest_first(["us-east-1", "us-west-2"], "us-west-2")
    ['us-west-2', 'us-east-1']
    """
    return sorted(regions, key=lambda region: region != home)


def _unavailable(exc: BaseException) -> str | None:
    """Why a control region could not serve a request that another one may serve (unreachable,
    no answer, no majority behind it, throttled, 5xx); None for any other error."""
    decoded = decode(exc)
    if decoded is None or not (decoded.unreachable or decoded.transient):
        return None
    if decoded.lost:
        return f"sent, no answer ({decoded.code})"
    if decoded.unreachable:
        return "unreachable"
    detail = f": {decoded.message}" if decoded.message else ""
    return f"answered {decoded.code}{detail}"


def _answer_lost(exc: BaseException) -> bool:
    """True when ``exc`` says the request was sent and its answer lost (it may land)."""
    decoded = decode(exc)
    return bool(decoded and decoded.lost)


def stale(owner: str, token: int) -> StaleTokenError:
    """The error of a write whose fencing token is no longer the lease's."""
    return StaleTokenError(
        f"lease lost: {owner} (token {token}) was taken over; this controller stops writing"
    )
