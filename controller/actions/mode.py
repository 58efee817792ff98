"""Region and component modes: the SSM parameters the functions read to know how to answer.

Called by the executor (a region's mode is the last word of a failover), by ``health`` (which
region is active) and by :mod:`controller.actions.base` (each component's own mode). A mode is
``active``, ``standby``, ``fenced`` or a degraded mode (``read_only``, ``queue_writes``, ...); a
component's mode may also be ``normal`` (as deployed: no opinion, the region's mode holds).
"""

from __future__ import annotations

import logging

from controller.actions.state import REGION_MODES
from controller.aws import Clients, classify
from controller.contract import Mode
from controller.errors import UsageError
from controller.topology import Topology
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)


def parameter_of(topology: Topology, manifest: Manifest, region: str) -> str:
    """The region's mode parameter: the manifest's name, else the topology's naming rule."""
    regional = manifest.regions.get(region)
    return regional.mode_parameter if regional else topology.mode_parameter(region)


def read_region_mode(clients: Clients, topology: Topology, manifest: Manifest, region: str) -> str:
    """The mode ``region`` serves in (``standby`` when the parameter was never written).

    Raises a :class:`~controller.errors.TransientStepError` when the region does not answer.
    """
    name = parameter_of(topology, manifest, region)
    try:
        value = get(clients, region, [name]).get(name)
    except Exception as exc:
        raise classify(exc, component="mode", region=region) from exc
    return value or Mode.STANDBY


def set_region_mode(
    clients: Clients, topology: Topology, manifest: Manifest, region: str, mode: Mode
) -> None:
    """Write ``region``'s mode (idempotent: writing the same value again changes nothing)."""
    if mode not in REGION_MODES:
        raise UsageError(f"unknown mode {mode!r} (one of: {', '.join(sorted(REGION_MODES))})")
    name = parameter_of(topology, manifest, region)
    try:
        put(clients, region, name, mode)
    except Exception as exc:
        raise classify(exc, component="mode", region=region) from exc
    log.info("region %s mode -> %s", region, mode)


def read_modes(
    clients: Clients, region: str, component_parameter: str, region_parameter: str
) -> tuple[str | None, str | None]:
    """``(component mode, region mode)`` in one call; None where a parameter does not exist."""
    values = get(clients, region, [component_parameter, region_parameter])
    return values.get(component_parameter), values.get(region_parameter)


def get(clients: Clients, region: str, names: list[str]) -> dict[str, str]:
    """The values of the SSM parameters ``names`` that exist (botocore errors pass through)."""
    response = clients.client("ssm", region).get_parameters(Names=names)
    return {p["Name"]: p["Value"] for p in response.get("Parameters", [])}


def put(clients: Clients, region: str, name: str, value: str) -> None:
    """Write one mode parameter (botocore errors pass through)."""
    clients.client("ssm", region).put_parameter(
        Name=name, Value=value, Type="String", Overwrite=True
    )
