"""The control table: how its items are encoded, and how it is reached.

Called by the lease, the journal of runs and the automation switch, which each keep their own
items in the one DynamoDB global table the manifest names. This module knows the item codec
(plain values to DynamoDB attribute values and back), tries the control regions in order until
one answers, and writes in transactions that also check the writer's fencing token, so a
controller that lost its lease cannot write any more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from controller.aws import Clients, classify, error_code, explain, is_not_found, is_unreachable
from controller.errors import FailoverError, StaleTokenError
from controller.manifest import Manifest

log = logging.getLogger(__name__)

#: Items per journal transaction: DynamoDB takes 100 actions, one is the lease's token check.
PER_TRANSACTION = 99
#: The lease's item; its ``token`` attribute fences every guarded write.
LEASE_PK = LEASE_SK = "lease"


class ControlTable:
    """The control table, reached in the first of its regions that answers.

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

    def call(self, op: str, **kwargs: Any) -> Any:
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

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One item as plain values, read consistently; None when it does not exist."""
        item = self.call("get_item", Key=key(pk, sk), ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def query(self, pk: str) -> Iterator[dict[str, Any]]:
        """Every item of partition ``pk`` (as DynamoDB returns them), page after page."""
        kwargs: dict[str, Any] = {"KeyConditionExpression": "pk = :pk",
                                  "ExpressionAttributeValues": {":pk": {"S": pk}},
                                  "ConsistentRead": True}
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

    def write(self, owner: str, token: int, puts: Sequence[dict[str, Any]],
              updates: Sequence[dict[str, Any]] = (),
              deletes: Sequence[dict[str, Any]] = ()) -> None:
        """Write items in one transaction that also checks the lease's token is ``token``.

        Raises
        ------
        StaleTokenError
            The lease was taken over (its token moved on): nothing was written.
        """
        check = {"ConditionCheck": {
            "TableName": self.table, "Key": key(LEASE_PK, LEASE_SK),
            "ConditionExpression": "#t = :t",
            "ExpressionAttributeNames": {"#t": "token"},
            "ExpressionAttributeValues": {":t": {"N": str(token)}}}}
        items = [check, *({"Put": {"TableName": self.table, "Item": p}} for p in puts),
                 *({"Update": {"TableName": self.table, **u}} for u in updates),
                 *({"Delete": {"TableName": self.table, **d}} for d in deletes)]
        try:
            self.call("transact_write_items", TransactItems=items)
        except Exception as exc:
            if error_code(exc) in ("TransactionCanceledException",
                                   "ConditionalCheckFailedException"):
                raise stale(owner, token) from None
            raise classify(exc) from exc


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
        (kind, data), = value.items()
        out[name] = float(data) if kind == "N" else data
    return out


def as_float(value: Any) -> float | None:
    """``value`` as a float, None staying None."""
    return float(value) if value is not None else None


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in consecutive lists of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def stale(owner: str, token: int) -> StaleTokenError:
    """The error of a write whose fencing token is no longer the lease's."""
    return StaleTokenError(
        f"lease lost: {owner} (token {token}) was taken over; this controller stops writing")
