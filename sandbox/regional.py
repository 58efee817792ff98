"""Provision one region's moto process with every component of the topology.

Called by :mod:`sandbox.provision` for ``up``, ``reset`` and a restarted region. Runs
in three phases: the API first (right after seeding the server's id generator, so that a
restarted region gets the same API host the Route 53 health check probes), then every
independent resource in parallel, then what needs them (event source mappings, schedules,
routes).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from controller.aws import Clients
from controller.manifest import ComponentRef, RegionManifest
from controller.spec import ApiSpec, FunctionSpec, Kind, ScheduleSpec, Topology
from sandbox import resources, servers
from sandbox.functions import provision_function

log = logging.getLogger(__name__)

WORKERS = 8

_BUILDERS: dict[Kind, Callable[..., ComponentRef]] = {
    Kind.PARAMETER: resources.provision_parameter,
    Kind.TABLE: resources.provision_table,
    Kind.BUCKET: resources.provision_bucket,
    Kind.QUEUE: resources.provision_queue,
    Kind.STREAM: resources.provision_stream,
}


def stable_seed(app: str, region: str) -> int:
    """The id seed of ``region``'s server: the same on every start, different per region.

    >>> stable_seed("orders", "us-east-1") == stable_seed("orders", "us-east-1")
    True
    """
    return zlib.crc32(f"{app}/{region}".encode())


def provision_region(topology: Topology, region: str, url: str, clients: Clients, *,
                     active: bool) -> RegionManifest:
    """Create every component of ``topology`` in the fresh moto server of ``region``.

    Parameters
    ----------
    topology : what to create.
    region : the region; ``url`` is its server and ``clients`` send every call (IAM too) there.
    active : the primary's shape (mappings and schedules enabled, modes ``active``) or a
        standby's.

    Returns
    -------
    The region's part of the manifest (DNS references are added by the caller).
    """
    servers.seed(url, stable_seed(topology.app, region))
    refs: dict[str, ComponentRef] = {}
    for name, _ in topology.of_kind(Kind.API):
        refs[name] = resources.create_api(clients, region, topology.physical_name(name, region))
    with ThreadPoolExecutor(WORKERS, thread_name_prefix=f"prov-{region}") as pool:
        futures: dict[str, Any] = {}
        for name, spec in topology.components.items():
            physical = topology.physical_name(name, region)
            if isinstance(spec, FunctionSpec):
                futures[name] = pool.submit(provision_function, topology, region, name, spec,
                                            clients)
            elif Kind(spec.kind) in _BUILDERS:
                futures[name] = pool.submit(_BUILDERS[Kind(spec.kind)], clients, region,
                                            physical, spec)
        modes = [pool.submit(resources.put_mode, clients, region, parameter, active)
                 for parameter in _mode_parameters(topology, region)]
        refs.update({name: future.result() for name, future in futures.items()})
        for done in modes:
            done.result()
        _second_phase(topology, region, clients, refs, active, pool)
    for name, ref in refs.items():
        ref.mode_parameter = topology.component_mode_parameter(name, region)
    api = next((refs[n] for n, _ in topology.of_kind(Kind.API)), None)
    return RegionManifest(mode_parameter=topology.mode_parameter(region),
                          api_endpoint=api.endpoint or "" if api else "", components=refs)


def _mode_parameters(topology: Topology, region: str) -> list[str]:
    return [topology.mode_parameter(region),
            *(topology.component_mode_parameter(name, region) for name in topology.components)]


def _second_phase(topology: Topology, region: str, clients: Clients,
                  refs: dict[str, ComponentRef], active: bool, pool: ThreadPoolExecutor) -> None:
    """Mappings, schedules and routes: the resources that need the first phase's."""
    jobs: list[Any] = []
    for name, spec in topology.components.items():
        if isinstance(spec, FunctionSpec) and spec.events:
            jobs.append((name, pool.submit(resources.provision_mappings, clients, region, spec,
                                           refs[name], refs, active)))
        elif isinstance(spec, ScheduleSpec):
            jobs.append((name, pool.submit(
                resources.provision_schedule, clients, region,
                topology.physical_name(name, region), spec, refs[spec.target], active)))
        elif isinstance(spec, ApiSpec):
            jobs.append((None, pool.submit(resources.provision_routes, clients, region,
                                           refs[name], spec, refs)))
    for name, future in jobs:
        result = future.result()
        if name is None:
            continue
        if isinstance(result, ComponentRef):
            refs[name] = result
        else:
            refs[name].mappings = list(result)
