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

    The three code paths are ``"module:attribute"`` names, each inside the package of the side
    that runs it, which resolves it with :func:`resolve` when it needs it: the controller names
    no module of the sandbox or of ``infra`` (it imports neither), and each side finds its own.

    - ``action``, in :mod:`controller.actions`: the :class:`controller.actions.base.Action`
      subclass that reads, activates and fences the component in one region;
    - ``provisioner``, in the sandbox's package: the function ``(Provisioning, name, spec) ->
      ComponentRef`` that creates it in one region of the emulator, or ``None`` for a kind that
      is global only;
    - ``deployer``, in ``infra``'s package: the Pulumi function ``(Region, name, spec) -> None``
      that creates it in one region, or ``None`` for a kind that is global only.

    A new kind is its model here, its action module, its provisioner and its deployer: four
    files (``tests/unit/test_kinds.py`` checks every kind resolves all of them).
    """

    tier: Tier
    action: str
    provisioner: str | None
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
