"""The control table: how its items are encoded, and how it is reached.

Called by the lease, the journal of runs and the automation switch, which each keep their own
items in the one DynamoDB global table the manifest names. This module knows the item codec
(plain values to DynamoDB attribute values and back), tries the control regions (its own region
first) until one answers with a majority behind it, raises
:class:`~controller.errors.NoMajorityError` when none does, and writes each item with a
single-item conditional write on its last writer's fencing token (a multi-Region strongly
consistent table takes no transactions, no TTL and no local secondary index, so nothing here
uses them), so that a controller that lost its lease
cannot overwrite what the new holder wrote.

A write's outcome is one of :class:`WriteOutcome`: done, refused (every attempt was refused
before it was sent, or answered with an error: :class:`~controller.errors.NoMajorityError`), or
unknown (an attempt was sent and its answer lost: it may land later, when a hung server resumes;
:class:`~controller.errors.OutcomeUnknownError`). Every writer makes its write conditional on
what it last read (a token, an epoch, a version, a sequence number that only grow), so a late
one cannot land over a newer decision, and trying the next region after a lost answer is safe:
at most one attempt lands.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from controller import contract
from controller.aws import Clients, classify, decode, error_code, explain, is_not_found
from controller.errors import (
    FailoverError,
    NoMajorityError,
    OutcomeUnknownError,
    StaleTokenError,
)
from controller.manifest import Manifest

log = logging.getLogger(__name__)

#: Items per journal write batch (written in parallel, one conditional write each).
PER_TRANSACTION = 99
#: Threads writing one batch of journal items.
WRITERS = 8
#: The attribute of every journal item that holds its last writer's fencing token.
WRITER = "writer_token"
#: The attribute of every journal item that holds its last write's sequence number: writes of
#: one token holder carry numbers that only grow (:data:`_SEQUENCE`).
SEQ = "writer_seq"
#: The condition of every journal write: the item is new, or it was last written by an older
#: token, or by this token in an earlier write. A write whose answer was lost and that lands
#: late (a hung server resumed) cannot overwrite a newer write of the same holder.
NOT_NEWER = (
    "(attribute_not_exists(pk) OR #tok < :tok OR "
    "(#tok = :tok AND (attribute_not_exists(#seq) OR #seq < :seq)))"
)
#: The operations that change the control table: a lost answer to one is an unknown outcome.
WRITES = frozenset({"put_item", "update_item", "delete_item"})
#: Sequence numbers of this process's journal writes (one lease token is held by one process).
_SEQUENCE = itertools.count(1)
_SEQUENCE_LOCK = threading.Lock()
#: The lease's item; its ``token`` attribute fences every guarded write.
LEASE_PK = LEASE_SK = contract.LEASE_ITEM
#: Seconds a control region that failed is tried after the others.
SUSPECT_SECONDS = 30.0
#: When each (table, region, endpoint) last failed, for every control table of this process.
_SUSPECT: dict[tuple[str, str, str], float] = {}
_SUSPECT_LOCK = threading.Lock()


class WriteOutcome(StrEnum):
    """What became of a write to the control table."""

    #: Applied: its answer said so, or a read since shows it.
    DONE = "done"
    #: Not applied, and it cannot be any more (refused before it was sent, answered with an
    #: error, or its condition can no longer hold).
    REFUSED = "refused"
    #: Sent and its answer lost, and nothing read since says whether it landed.
    UNKNOWN = "unknown"


def suspects_path() -> Path:
    """Where failed control regions are remembered across processes (a hint, never a verdict).

    An operator types a dozen commands in an incident, each a new process: without this, each
    would wait out one timeout on the lost region before trying the next. The file only orders
    the attempts (every region is still tried), so a stale or foreign entry costs time, never a
    wrong answer. ``$FAILOVER_CACHE_DIR``, else ``$XDG_CACHE_HOME/failover``, else
    ``~/.cache/failover``.
    """
    folder = os.environ.get("FAILOVER_CACHE_DIR")
    if not folder:
        cache = os.environ.get("XDG_CACHE_HOME")
        if not cache:
            try:
                cache = str(Path.home() / ".cache")
            except RuntimeError:  # no home at all (a function's sandbox): its temporary folder
                cache = tempfile.gettempdir()
        folder = str(Path(cache) / "failover")
    return Path(folder) / "control-suspects.json"


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


def _known(now: float) -> dict[tuple[str, str, str], float]:
    """Every recent failure, this process's and the others', the latest of each (lock held)."""
    known = _load_suspects(now)
    for key_, when in _SUSPECT.items():
        known[key_] = max(when, known.get(key_, when))
    return known


def _load_suspects(now: float) -> dict[tuple[str, str, str], float]:
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


def _save_suspects(entries: dict[tuple[str, str, str], float]) -> None:
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


class ControlTable:
    """The control table, reached in the first of its regions that answers.

    Parameters
    ----------
    clients : the client cache (the control table's region comes from the manifest).
    manifest : names the control table and the regions that serve it.
    clock : seconds since the epoch; tests may pass their own.
    """

    def __init__(
        self, clients: Clients, manifest: Manifest, clock: Callable[[], float] = time.time
    ) -> None:
        # One attempt per region: trying the next control region is the retry, and a region
        # that does not answer costs one timeout, not three.
        self.clients = Clients(
            endpoints=clients.endpoints,
            settings=replace(clients.settings, max_attempts=1),
            hooks=clients.hooks,
            home=clients.home,
        )
        self.table = manifest.control.table
        self.regions = list(manifest.control.regions)
        self.clock = clock
        self.home = clients.home

    def call(self, op: str, **kwargs: Any) -> Any:
        """Call DynamoDB in the first control region that answers with a majority behind it.

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
        for region in self.order():
            client = self.clients.client("dynamodb", region)
            try:
                return getattr(client, op)(TableName=self.table, **kwargs)
            except Exception as exc:
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
                    raise
                log.warning("control table in %s: %s; trying the next region", region, why)
                failed.append(f"{region} {why}")
                lost = lost or (op in WRITES and _answer_lost(exc))
                self.suspect(region)
        if lost:
            raise OutcomeUnknownError(
                f"the control table {self.table} did not confirm the write: {'; '.join(failed)}"
            )
        raise NoMajorityError(
            f"the control table {self.table} has no majority: {'; '.join(failed)}"
            + ("; nothing was written" if op in WRITES else "")
        )

    def order(self) -> list[str]:
        """The regions in the order they are tried: this controller's own region first, then
        the others; a region that failed within :data:`SUSPECT_SECONDS` (in this process or, by
        :func:`suspects_path`, in another) goes after those that did not, so one lost region
        costs one timeout, not one per call or per command."""
        now = time.time()
        with _SUSPECT_LOCK:
            known = _known(now)
        suspect = {
            r
            for r in self.regions
            if now - known.get(self._key(r), -SUSPECT_SECONDS) < SUSPECT_SECONDS
        }
        return sorted(nearest_first(self.regions, self.home), key=lambda r: r in suspect)

    def _key(self, region: str) -> tuple[str, str, str]:
        """Which replica: the table, its region and where that region is reached (the
        emulator's address, or AWS), so two sandboxes' tables of one name stay apart."""
        return (self.table, region, self.clients.endpoints.get(region, "aws"))

    def suspect(self, region: str) -> None:
        """Remember that ``region`` did not answer, here and for the next processes."""
        now = time.time()
        with _SUSPECT_LOCK:
            _SUSPECT[self._key(region)] = now
            _save_suspects(_known(now))

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One item as plain values, read consistently; None when it does not exist."""
        item = self.call("get_item", Key=key(pk, sk), ConsistentRead=True).get("Item")
        return plain(item) if item else None

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
        callers also check the lease's expiry just before (:class:`~controller.lease.
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
            *(self._put(p, token, _next_seq()) for p in puts),
            *(self._update(u, token, _next_seq()) for u in updates),
            *(self._delete(d, token, _next_seq()) for d in deletes),
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
            self.call(op, **kwargs)
        except OutcomeUnknownError as unknown:
            outcome = self._settle(op, kwargs, token)
            if outcome is WriteOutcome.DONE:
                return
            if outcome is WriteOutcome.REFUSED:
                raise stale(owner, token) from None
            raise unknown.checked_with(
                f"journal write by {owner} (token {token})", "`failover runs`"
            ) from None
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise stale(owner, token) from None
            raise classify(exc) from exc

    def _settle(self, op: str, kwargs: dict[str, Any], token: int) -> WriteOutcome:
        """What became of a journal write whose answer was lost, as its item says now: done
        (it holds this write's token and sequence number, or, for a delete, is gone), refused
        (a newer write holds it: this one's condition can never hold again), else unknown."""
        seq = int(kwargs["ExpressionAttributeValues"][":seq"]["N"])
        try:
            got = self.call(
                "get_item", Key=kwargs.get("Key") or _key_of(kwargs["Item"]), ConsistentRead=True
            ).get("Item")
        except FailoverError as exc:
            log.warning("cannot settle a journal write whose answer was lost: %s", exc)
            return WriteOutcome.UNKNOWN
        if got is None:
            return WriteOutcome.DONE if op == "delete_item" else WriteOutcome.UNKNOWN
        last = (int(got.get(WRITER, {}).get("N", "0")), int(got.get(SEQ, {}).get("N", "0")))
        if last == (token, seq) and op != "delete_item":
            return WriteOutcome.DONE
        return WriteOutcome.REFUSED if last > (token, seq) else WriteOutcome.UNKNOWN

    @staticmethod
    def _put(put: dict[str, Any], token: int, seq: int) -> tuple[str, dict[str, Any]]:
        return "put_item", {
            "Item": {**put, WRITER: {"N": str(token)}, SEQ: {"N": str(seq)}},
            "ConditionExpression": NOT_NEWER,
            "ExpressionAttributeNames": _GUARD_NAMES,
            "ExpressionAttributeValues": _guard_values(token, seq),
        }

    @staticmethod
    def _update(update: dict[str, Any], token: int, seq: int) -> tuple[str, dict[str, Any]]:
        expression = str(update["UpdateExpression"])
        assert expression.startswith("SET "), "journal updates only SET"
        return "update_item", {
            **_guarded(update, token, seq),
            "UpdateExpression": f"{expression}, #tok = :tok, #seq = :seq",
        }

    @staticmethod
    def _delete(delete: dict[str, Any], token: int, seq: int) -> tuple[str, dict[str, Any]]:
        return "delete_item", _guarded(delete, token, seq)


_GUARD_NAMES = {"#tok": WRITER, "#seq": SEQ}


def _guard_values(token: int, seq: int) -> dict[str, Any]:
    return {":tok": {"N": str(token)}, ":seq": {"N": str(seq)}}


def _guarded(request: dict[str, Any], token: int, seq: int) -> dict[str, Any]:
    """``request`` with :data:`NOT_NEWER` added to its own condition, if any."""
    condition = (
        f"({request['ConditionExpression']}) AND {NOT_NEWER}"
        if "ConditionExpression" in request
        else NOT_NEWER
    )
    return {
        **request,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {**request.get("ExpressionAttributeNames", {}), **_GUARD_NAMES},
        "ExpressionAttributeValues": {
            **request.get("ExpressionAttributeValues", {}),
            **_guard_values(token, seq),
        },
    }


def _next_seq() -> int:
    """The next sequence number of this process's journal writes."""
    with _SEQUENCE_LOCK:
        return next(_SEQUENCE)


def _key_of(raw: dict[str, Any]) -> dict[str, Any]:
    """The key of an item as DynamoDB takes it."""
    return {"pk": raw["pk"], "sk": raw["sk"]}


# -- the item codec ----------------------------------------------------------------------------


def key(pk: str, sk: str) -> dict[str, Any]:
    """An item's key as DynamoDB takes it.

    >>> key("run#1", "run")
    {'pk': {'S': 'run#1'}, 'sk': {'S': 'run'}}
    """
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def item(pk: str, sk: str, **fields: Any) -> dict[str, Any]:
    """An item from plain values: bools, numbers and strings; None leaves the field out.

    >>> item("a", "b", n=2, ok=True, s="x", gone=None)["n"], item("a", "b", ok=True)["ok"]
    ({'N': '2'}, {'BOOL': True})
    """
    out = key(pk, sk)
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[name] = {"BOOL": value}
        elif isinstance(value, int | float):
            out[name] = {"N": repr(value)}
        else:
            out[name] = {"S": str(value)}
    return out


def plain(raw: dict[str, Any]) -> dict[str, Any]:
    """An item's plain values: numbers as floats, the rest as DynamoDB gave them.

    >>> plain(item("a", "b", n=2, s="x"))
    {'pk': 'a', 'sk': 'b', 'n': 2.0, 's': 'x'}
    """
    out: dict[str, Any] = {}
    for name, value in raw.items():
        ((kind, data),) = value.items()
        out[name] = float(data) if kind == "N" else data
    return out


def as_float(value: Any) -> float | None:
    """``value`` as a float, None staying None."""
    return float(value) if value is not None else None


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in consecutive lists of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


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
