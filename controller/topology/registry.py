"""What a kind declares besides its fields, and how a name it declares is found.

Called by the kinds' models (:mod:`controller.topology.kinds`: each model's ``declared``), the
actions' registry, the sandbox and ``infra``, which each resolve the code a kind names for them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Tier(StrEnum):
    """The layer a component belongs to; traffic is always shifted last."""

    DATA = "data"
    EVENTS = "events"
    COMPUTE = "compute"
    TRAFFIC = "traffic"


@dataclass(frozen=True)
class Declared:
    """What a kind declares besides its fields: the one registry entry of a kind.

    The two code paths are ``"module:attribute"`` names, each inside the package of the side
    that runs it, which resolves it with :func:`resolve` when it needs it: the controller names
    no module of ``infra`` (it imports none), and each side finds its own.

    - ``action``, in :mod:`controller.actions`: the :class:`controller.actions.base.Action`
      subclass that reads, activates and fences the component in one region;
    - ``deployer``, in ``infra``'s package: the Pulumi function ``(Region, name, spec) -> None``
      that creates it in one region, or ``None`` for a kind that is global only. The sandbox
      deploys it by running the same program against the emulator.

    A new kind is its model here, its action module and its deployer: three files
    (``tests/unit/test_kinds.py`` checks every kind resolves them); a new AWS resource type the
    deployer creates is one function in the sandbox's mapping of resource types.
    """

    tier: Tier
    action: str
    deployer: str | None
    #: What fencing and activating do to the resource, in words (for readers of the registry).
    switch: str = "nothing to switch: its mode parameter says whether it serves"
    #: What ``infra`` and the sandbox create of it across regions, in words.
    global_part: str | None = None


#: Where each slot of :class:`Declared` names its code.
ACTIONS_PACKAGE = "controller.actions"


def resolve(path: str, package: str | None = None) -> Any:
    """The object a ``"module:attribute"`` name points at (``Class.method`` allowed), the
    module inside ``package`` when one is given.

    >>> resolve("controller.topology:Kind.QUEUE"), resolve("queue:QueueAction", ACTIONS_PACKAGE)
    (<Kind.QUEUE: 'queue'>, <class 'controller.actions.queue.QueueAction'>)
    """
    module, _, attribute = path.partition(":")
    found: Any = importlib.import_module(f"{package}.{module}" if package else module)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found
