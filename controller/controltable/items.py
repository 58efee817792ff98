"""The control table's item codec: plain values to DynamoDB attribute values and back.

Called by every item's module (the lease, the desired state, the automation switch, the journal,
the watchers' states) and by the table itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def key(pk: str, sk: str) -> dict[str, Any]:
    """An item's key as DynamoDB takes it.

    >>> key("run#1", "run")
    {'pk': {'S': 'run#1'}, 'sk': {'S': 'run'}}
    """
    return {"pk": {"S": pk}, "sk": {"S": sk}}


#: The key of the mark naming the run in progress (its ``run_id``, "" once the run ended).
RUN_MARK = ("current", "run")


def marked_run(mark: dict[str, Any] | None) -> str | None:
    """The run the ``current`` mark names (read as plain values), None when there is none: no
    mark, or one a run's end emptied (``run_id`` "", so that no late copy of it lands after).

    >>> marked_run({"run_id": "r-1"}), marked_run({"run_id": ""}), marked_run(None)
    ('r-1', None, None)
    """
    return str(mark.get("run_id", "")) or None if mark else None


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
