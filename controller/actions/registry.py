"""Which action class handles which kind: a new kind is one module and one line here.

Called by the executor and by ``health``: :func:`action_for` is the only way they make actions.
"""

from __future__ import annotations

from controller.actions.api import ApiAction
from controller.actions.base import Action
from controller.actions.bucket import BucketAction
from controller.actions.dns import DnsAction
from controller.actions.function import FunctionAction
from controller.actions.parameter import ParameterAction
from controller.actions.queue import QueueAction
from controller.actions.schedule import ScheduleAction
from controller.actions.stream import StreamAction
from controller.actions.table import TableAction
from controller.aws import Clients
from controller.errors import PermanentStepError
from controller.manifest import Manifest
from controller.spec import Topology

ACTIONS: dict[str, type[Action]] = {
    "api": ApiAction,
    "bucket": BucketAction,
    "dns": DnsAction,
    "function": FunctionAction,
    "parameter": ParameterAction,
    "queue": QueueAction,
    "schedule": ScheduleAction,
    "stream": StreamAction,
    "table": TableAction,
}


def action_for(topology: Topology, manifest: Manifest, clients: Clients, component: str,
               region: str) -> Action:
    """The action of ``component`` in ``region``.

    Raises
    ------
    PermanentStepError
        The component is not in the topology, or its kind has no action.
    """
    spec = topology.components.get(component)
    if spec is None:
        raise PermanentStepError("not in the topology", component=component, region=region)
    cls = ACTIONS.get(str(spec.kind))
    if cls is None:
        raise PermanentStepError(f"no action for kind {spec.kind!r}", component=component,
                                 region=region)
    return cls(topology, manifest, clients, component, region)
