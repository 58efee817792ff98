"""What each region's watcher remembers between invocations, and its last decision.

Called by the deployed watcher (:mod:`controller.watchers.lambda_entry`) and ``failover watchers``.
A Lambda invocation lives at most a few minutes, so the watcher's hysteresis (how many bad
evaluations in a row, the recent ones for the flap detector, when it last acted, how long the
primary has looked good) cannot live in memory: it is one item per watching region in the
control table (``watcher``, ``<region>``), written with one single-item put after every
evaluation (each region writes only its own item; the table is multi-Region strongly consistent
and takes no transactions), conditional on the item holding fewer evaluations: a write whose
answer was lost, landing late, cannot put an older hysteresis over a newer one. The same item
carries the last decision, so it also answers "what did each region's watcher last decide, and
when".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from controller.aws import error_code
from controller.controltable.items import as_float, item, plain
from controller.controltable.table import ControlTable
from controller.errors import ConflictError, OutcomeUnknownError

PK = "watcher"


@dataclass(frozen=True)
class WatchState:
    """One region's watcher: its hysteresis and its last evaluation."""

    region: str
    consecutive_bad: int = 0
    history: tuple[bool, ...] = ()
    last_action: float | None = None
    good_primary: int = 0
    evaluations: int = 0
    updated: float | None = None
    owner: str = ""
    decision: dict[str, Any] = field(default_factory=dict)
    #: The regions owed a full read (:mod:`controller.watchers.owed`); None: not recorded (an item
    #: saved before it kept them, or none saved).
    unsettled: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The item as ``failover watchers --json`` shows it."""
        return {
            "region": self.region,
            "updated": self.updated,
            "owner": self.owner,
            "evaluations": self.evaluations,
            "consecutive_bad": self.consecutive_bad,
            "history": "".join("1" if b else "0" for b in self.history),
            "last_action": self.last_action,
            "good_primary": self.good_primary,
            "decision": self.decision,
            "unsettled": None if self.unsettled is None else list(self.unsettled),
        }


class WatchStates:
    """Read and write the watcher items of ``table``."""

    def __init__(self, table: ControlTable) -> None:
        self.table = table

    def read(self, region: str) -> WatchState:
        """``region``'s watcher item (a fresh state when it never evaluated)."""
        got = self.table.get(PK, region)
        return _state(got) if got else WatchState(region)

    def write(self, state: WatchState) -> None:
        """Save ``state``, unless the item already holds as many evaluations or more.

        Raises
        ------
        ConflictError
            The item holds a newer evaluation (another invocation of the same watcher, or this
            one's lost write that landed): this state was not saved.
        OutcomeUnknownError
            The put was sent and its answer lost.
        """
        try:
            self.table.call(
                "put_item",
                Item=item(
                    PK,
                    state.region,
                    region=state.region,
                    consecutive_bad=state.consecutive_bad,
                    history="".join("1" if b else "0" for b in state.history),
                    last_action=state.last_action,
                    good_primary=state.good_primary,
                    evaluations=state.evaluations,
                    updated=state.updated,
                    owner=state.owner,
                    decision=json.dumps(state.decision, sort_keys=True),
                    unsettled=None if state.unsettled is None else ",".join(state.unsettled),
                ),
                ConditionExpression="attribute_not_exists(#n) OR #n < :n",
                ExpressionAttributeNames={"#n": "evaluations"},
                ExpressionAttributeValues={":n": {"N": str(state.evaluations)}},
            )
        except OutcomeUnknownError as unknown:
            raise unknown.checked_with(
                f"saving {state.region}'s watcher state", "`failover watchers`"
            ) from None
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConflictError(
                    f"{state.region}'s watcher item holds evaluation {state.evaluations} or a "
                    "later one: this one is not saved"
                ) from None
            raise

    def all(self) -> dict[str, WatchState]:
        """Every region's watcher item, by region."""
        return {s.region: s for s in (_state(plain(raw)) for raw in self.table.query(PK))}


def _state(got: dict[str, Any]) -> WatchState:
    try:
        decision = json.loads(got.get("decision") or "{}")
    except ValueError:
        decision = {}
    unsettled = got.get("unsettled")
    return WatchState(
        region=str(got.get("region") or got["sk"]),
        consecutive_bad=int(got.get("consecutive_bad") or 0),
        history=tuple(c == "1" for c in str(got.get("history") or "")),
        last_action=as_float(got.get("last_action")),
        good_primary=int(got.get("good_primary") or 0),
        evaluations=int(got.get("evaluations") or 0),
        updated=as_float(got.get("updated")),
        owner=str(got.get("owner") or ""),
        decision=decision if isinstance(decision, dict) else {},
        unsettled=None if unsettled is None else tuple(r for r in str(unsettled).split(",") if r),
    )
