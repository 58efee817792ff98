"""The vocabulary of a component in a region: what it is doing (:class:`State`), and which
state a mode parameter stands for (:func:`state_of`).

Called by the actions (a read's state), health (a component's status), the reconciler (what
serves) and the executor (what a fence leaves).
"""

from __future__ import annotations

from enum import StrEnum

from controller.contract import Mode


class State(StrEnum):
    """What a component is doing in a region."""

    ACTIVE = "active"
    STANDBY = "standby"
    FENCED = "fenced"
    DEGRADED = "degraded"
    MISSING = "missing"
    UNREACHABLE = "unreachable"
    #: Read, but the read failed in a way that says nothing of the resource (health only).
    UNKNOWN = "unknown"


#: The modes a region's parameter can hold (a component's may also be ``normal``).
REGION_MODES = frozenset(m for m in Mode if m is not Mode.NORMAL)
#: The states (and the modes, through :func:`state_of`) of a component that serves or writes.
SERVING = frozenset({State.ACTIVE, State.DEGRADED})


def state_of(mode: str) -> State:
    """The component state a mode stands for: a degraded mode is ``degraded``.

    >>> state_of("read_only").value, state_of("fenced").value, state_of("nonsense").value
    ('degraded', 'fenced', 'standby')
    """
    if mode in (Mode.ACTIVE, Mode.STANDBY, Mode.FENCED):
        return State(mode)
    return State.DEGRADED if mode in REGION_MODES else State.STANDBY
