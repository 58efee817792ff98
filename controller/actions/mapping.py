"""Event source mappings: enable or disable a function's pollers, and read their state back.

Used by :mod:`controller.actions.function` (a function's mappings are switched with it). AWS
moves a mapping through ``Enabling``/``Disabling`` (and ``Updating``) before it settles; a set
waits for the settled state with a deadline, and a mapping still moving is reported as such so
that the caller's read-back asks for a retry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller import clock

log = logging.getLogger(__name__)

ENABLED = "Enabled"
DISABLED = "Disabled"
#: States from which a mapping is already on its way to the wanted one.
TOWARDS = {True: frozenset({ENABLED, "Enabling"}), False: frozenset({DISABLED, "Disabling"})}


@dataclass(frozen=True)
class MappingStates:
    """The state of each mapping, by UUID."""

    states: dict[str, str]

    @property
    def all_enabled(self) -> bool:
        """True when every mapping is enabled (vacuously, when there are none)."""
        return all(s == ENABLED for s in self.states.values())


def read(client: Any, uuids: Sequence[str]) -> MappingStates:
    """Read each mapping's state (``get_event_source_mapping``; botocore errors pass through)."""
    return MappingStates({u: str(client.get_event_source_mapping(UUID=u)["State"]) for u in uuids})


def set_enabled(
    client: Any,
    uuids: Sequence[str],
    enabled: bool,
    *,
    known: dict[str, str] | None = None,
    settle_seconds: float = 5.0,
    poll: float = 0.2,
) -> MappingStates:
    """Enable (or disable) every mapping, then wait up to ``settle_seconds`` for it to settle.

    A mapping already in, or on its way to, the wanted state is not touched (idempotent).
    ``known`` is each mapping's state as just read, which saves reading it again.
    """
    wanted = ENABLED if enabled else DISABLED
    states = (
        dict(known)
        if known is not None and set(known) == set(uuids)
        else read(client, uuids).states
    )
    for uuid, state in states.items():
        if state not in TOWARDS[enabled]:
            log.info("mapping %s: %s -> %s", uuid, state, wanted)
            answer = client.update_event_source_mapping(UUID=uuid, Enabled=enabled)
            states[uuid] = str(answer.get("State", "Updating"))
    deadline = clock.monotonic() + settle_seconds
    while not all(s == wanted for s in states.values()) and clock.monotonic() < deadline:
        clock.sleep(poll)
        states = read(client, uuids).states
    return MappingStates(states)
