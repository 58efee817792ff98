"""Which action class handles which kind: the one each kind's model declares.

Called by the executor and by ``health``: :func:`action_for` is the only way they make actions.
A kind's action is named in its model's ``declared`` (:class:`controller.topology.Declared`) and
imported the first time it is needed, so a run imports only the action modules it uses.
"""

from __future__ import annotations

import functools

from controller.actions.base import Action
from controller.aws import Clients
from controller.errors import PermanentStepError
from controller.topology import KINDS, Kind, Topology, resolve
from controller.topology.manifest import Manifest
from controller.topology.registry import ACTIONS_PACKAGE


@functools.cache
def action_class(kind: str) -> type[Action]:
    """The action class of ``kind``.

    Raises
    ------
    KeyError
        ``kind`` is not a kind (:class:`controller.topology.Kind`).
    """
    cls: type[Action] = resolve(KINDS[Kind(kind)].declared.action, ACTIONS_PACKAGE)
    return cls


def action_for(
    topology: Topology, manifest: Manifest, clients: Clients, component: str, region: str
) -> Action:
    """The action of ``component`` in ``region``.

    Raises
    ------
    PermanentStepError
        The component is not in the topology, or its kind has no action.
    """
    spec = topology.components.get(component)
    if spec is None:
        raise PermanentStepError("not in the topology", component=component, region=region)
    try:
        cls = action_class(str(spec.kind))
    except (KeyError, ValueError, ImportError, AttributeError) as exc:
        raise PermanentStepError(
            f"no action for kind {spec.kind!r}: {exc}", component=component, region=region
        ) from exc
    return cls(topology, manifest, clients, component, region)
