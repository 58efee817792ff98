"""What fences a journal write: every item carries its last writer's lease token and sequence
number, and every write is conditional on not being older than what the item carries.

Called by the control table (:meth:`~controller.controltable.table.ControlTable.write`), which
sends the requests made here and, when an answer was lost, reads the item back and asks
:func:`last_write` whose it is. Pure request building, no I/O.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

#: The attribute of every journal item that holds its last writer's fencing token.
WRITER = "writer_token"
#: The attribute of every journal item that holds its last write's sequence number: writes of
#: one token holder carry numbers that only grow (:func:`next_seq`).
SEQ = "writer_seq"
#: The condition of every journal write: the item is new, or it was last written by an older
#: token, or by this token in an earlier write. A write whose answer was lost and that lands
#: late (a hung server resumed) cannot overwrite a newer write of the same holder.
NOT_NEWER = (
    "(attribute_not_exists(pk) OR #tok < :tok OR "
    "(#tok = :tok AND (attribute_not_exists(#seq) OR #seq < :seq)))"
)
_NAMES = {"#tok": WRITER, "#seq": SEQ}
#: Sequence numbers of this process's journal writes (one lease token is held by one process).
_SEQUENCE = itertools.count(1)
_SEQUENCE_LOCK = threading.Lock()


def next_seq() -> int:
    """The next sequence number of this process's journal writes."""
    with _SEQUENCE_LOCK:
        return next(_SEQUENCE)


def put(item: dict[str, Any], token: int, seq: int) -> tuple[str, dict[str, Any]]:
    """A fenced ``put_item`` of ``item``.

    >>> op, kw = put({"pk": {"S": "a"}, "sk": {"S": "b"}}, 7, 1)
    >>> op, kw["Item"]["writer_token"], kw["ConditionExpression"] == NOT_NEWER
    ('put_item', {'N': '7'}, True)
    """
    return "put_item", {
        "Item": {**item, WRITER: {"N": str(token)}, SEQ: {"N": str(seq)}},
        "ConditionExpression": NOT_NEWER,
        "ExpressionAttributeNames": _NAMES,
        "ExpressionAttributeValues": _values(token, seq),
    }


def update(request: dict[str, Any], token: int, seq: int) -> tuple[str, dict[str, Any]]:
    """A fenced ``update_item`` (journal updates only ``SET``): it also sets the token and
    sequence number it is conditional on."""
    expression = str(request["UpdateExpression"])
    assert expression.startswith("SET "), "journal updates only SET"
    return "update_item", {
        **_guarded(request, token, seq),
        "UpdateExpression": f"{expression}, #tok = :tok, #seq = :seq",
    }


def delete(request: dict[str, Any], token: int, seq: int) -> tuple[str, dict[str, Any]]:
    """A fenced ``delete_item``."""
    return "delete_item", _guarded(request, token, seq)


def sent_seq(kwargs: dict[str, Any]) -> int:
    """The sequence number a fenced request carries."""
    return int(kwargs["ExpressionAttributeValues"][":seq"]["N"])


def key_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The key of the item a fenced request writes, as DynamoDB takes it."""
    if "Key" in kwargs:
        return dict(kwargs["Key"])
    return {"pk": kwargs["Item"]["pk"], "sk": kwargs["Item"]["sk"]}


def last_write(raw: dict[str, Any]) -> tuple[int, int]:
    """The token and sequence number of the write an item (as DynamoDB gives it) last took."""
    return int(raw.get(WRITER, {}).get("N", "0")), int(raw.get(SEQ, {}).get("N", "0"))


def _values(token: int, seq: int) -> dict[str, Any]:
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
        "ExpressionAttributeNames": {**request.get("ExpressionAttributeNames", {}), **_NAMES},
        "ExpressionAttributeValues": {
            **request.get("ExpressionAttributeValues", {}),
            **_values(token, seq),
        },
    }
