"""What a switch could lose (its RPO), as a run records it: each table's replication lag at the
switch, as read, and how old that reading was.

Called by the executor's prechecks (which read the lags just before a run acts), the journal
(which keeps them with the run) and the interfaces (``failover runs``, the demo's report). The
lag is CloudWatch's ``ReplicationLatency`` from the source to the target, worst over the window
read; unknown (None) when there was no datapoint or the source did not answer, which is not 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TableLag:
    """One table's replication lag from the run's source to its target, as read at the switch.

    ``read_at``: when the controller read it (epoch seconds). ``as_of``: the newest datapoint's
    timestamp (None without one): ``read_at - as_of`` is how old the figure was. ``error``: why
    it is unknown, when it is.
    """

    table: str
    lag_seconds: float | None
    read_at: float
    as_of: float | None = None
    error: str = ""

    @property
    def age_seconds(self) -> float | None:
        """How old the newest datapoint was when read (None without one).

        >>> TableLag("t", 0.5, read_at=100.0, as_of=70.0).age_seconds
        30.0
        """
        return None if self.as_of is None else round(self.read_at - self.as_of, 3)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as the journal keeps it and ``failover runs --json`` prints it."""
        return asdict(self) | {"age_seconds": self.age_seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableLag:
        """Back from :meth:`to_dict` (an unknown key is ignored: a newer writer's field).

        >>> lag = TableLag("t", None, 5.0, error="no datapoint")
        >>> TableLag.from_dict(lag.to_dict()) == lag
        True
        """
        as_of = data.get("as_of")
        lag = data.get("lag_seconds")
        return cls(
            str(data["table"]),
            None if lag is None else float(lag),
            float(data["read_at"]),
            None if as_of is None else float(as_of),
            str(data.get("error", "")),
        )


def describe(lags: Sequence[TableLag]) -> str:
    """The lags in one line for an operator; "" when none were read.

    >>> describe([TableLag("orders", 0.4, 100.0, 88.0), TableLag("carts", None, 100.0,
    ...           error="us-east-1 unreachable")])
    'orders 0.4s (read 12s after its datapoint); carts unknown (us-east-1 unreachable)'
    """
    parts = []
    for lag in lags:
        if lag.lag_seconds is None:
            parts.append(f"{lag.table} unknown ({lag.error or 'no datapoint'})")
        else:
            age = lag.age_seconds
            parts.append(
                f"{lag.table} {lag.lag_seconds:.1f}s"
                + ("" if age is None else f" (read {age:.0f}s after its datapoint)")
            )
    return "; ".join(parts)


def worst(lags: Sequence[TableLag]) -> str:
    """The largest lag in a few characters, for a table's column: ``unknown`` when any table's
    is; "-" when no table was read.

    >>> worst([TableLag("a", 0.4, 1.0), TableLag("b", 2.25, 1.0)]), worst([])
    ('2.2s', '-')
    >>> worst([TableLag("a", 0.4, 1.0), TableLag("b", None, 1.0)])
    'unknown'
    """
    if not lags:
        return "-"
    known = [lag.lag_seconds for lag in lags if lag.lag_seconds is not None]
    return "unknown" if len(known) < len(lags) else f"{max(known):.1f}s"


def to_plain(lags: Iterable[TableLag]) -> list[dict[str, Any]]:
    """The lags as plain data, in the order read."""
    return [lag.to_dict() for lag in lags]


def from_plain(data: Iterable[dict[str, Any]]) -> tuple[TableLag, ...]:
    """The lags back from :func:`to_plain`."""
    return tuple(TableLag.from_dict(d) for d in data)
