"""A deployed watcher's surroundings: Lambda's context with a clock the test moves, and an
in-memory stand-in for the control table's watcher items (its states across invocations)."""

from __future__ import annotations

from typing import Any

from controller.controltable.watchstate import WatchState
from controller.errors import FailoverError


class Context:
    """Lambda's context with a clock the test moves."""

    aws_request_id = "req-1234"

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.left * 1000)


class Memory:
    """An in-memory stand-in for the control table's watcher items."""

    def __init__(
        self,
        state: WatchState | None = None,
        *,
        reachable: bool = True,
        others: dict[str, WatchState] | None = None,
    ) -> None:
        self.state = state
        self.reachable = reachable
        self.others = others or {}
        self.written: list[WatchState] = []

    def __call__(self, table: Any) -> Memory:
        return self

    def read(self, region: str) -> WatchState:
        if not self.reachable:
            raise FailoverError("control table x unreachable in every region (global)")
        return self.state or WatchState(region)

    def write(self, state: WatchState) -> None:
        self.written.append(state)

    def all(self) -> dict[str, WatchState]:
        """Every watcher's item: the other regions' given, and this one's last written (or the
        one it was given)."""
        if not self.reachable:
            raise FailoverError("control table x unreachable in every region (global)")
        last = self.written[-1] if self.written else self.state
        return self.others | ({last.region: last} if last else {})
