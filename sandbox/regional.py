"""Provision one region's moto process with every component of the topology.

Called by :mod:`sandbox.provision` for ``up``, ``reset`` and a restarted region. The API
comes first (right after seeding the server's id generator, so that a restarted region gets the
same API host the Route 53 health check probes); then the components level by level in the
topology's activation order (dependencies first), those of a level in parallel, each by the
provisioner its kind declares (:class:`controller.topology.Declared`).
"""

from __future__ import annotations

import functools
import logging
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from controller.aws import Clients
from controller.plan.graph import activation_levels, build
from controller.topology import Kind, Topology, declared, resolve
from controller.topology.manifest import ComponentRef, RegionManifest
from sandbox import resources, servers
from sandbox.resources import Provisioning

log = logging.getLogger(__name__)

WORKERS = 8


@functools.cache
def provisioner(kind: str) -> Callable[[Provisioning, str, Any], ComponentRef] | None:
    """The sandbox provisioner ``kind`` declares; ``None`` for a kind that is global only."""
    path = declared(kind).provisioner
    if path is None:
        return None
    found: Callable[[Provisioning, str, Any], ComponentRef] = resolve(path, "sandbox")
    return found


def stable_seed(app: str, region: str) -> int:
    """The id seed of ``region``'s server: the same on every start, different per region.

    >>> stable_seed("orders", "us-east-1") == stable_seed("orders", "us-east-1")
    True
    """
    return zlib.crc32(f"{app}/{region}".encode())


def provision_region(
    topology: Topology, region: str, url: str, clients: Clients, *, active: bool
) -> RegionManifest:
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
    ctx = Provisioning(topology, region, clients, active)
    for name, _ in topology.of_kind(Kind.API):
        ctx.refs[name] = resources.create_api(clients, region, ctx.physical(name))
    with ThreadPoolExecutor(WORKERS, thread_name_prefix=f"prov-{region}") as pool:
        modes = [
            pool.submit(resources.put_mode, clients, region, parameter, active)
            for parameter in _mode_parameters(topology, region)
        ]
        for level in activation_levels(build(topology)):
            futures = {}
            for name in level:
                spec = topology.components[name]
                make = provisioner(str(spec.kind))
                if make is not None:
                    futures[name] = pool.submit(make, ctx, name, spec)
            ctx.refs.update({name: future.result() for name, future in futures.items()})
        for done in modes:
            done.result()
    refs = ctx.refs
    for name, ref in refs.items():
        ref.mode_parameter = topology.component_mode_parameter(name, region)
    api = next((refs[n] for n, _ in topology.of_kind(Kind.API)), None)
    return RegionManifest(
        mode_parameter=topology.mode_parameter(region),
        api_endpoint=api.endpoint or "" if api else "",
        components=refs,
    )


def _mode_parameters(topology: Topology, region: str) -> list[str]:
    return [
        topology.mode_parameter(region),
        *(topology.component_mode_parameter(name, region) for name in topology.components),
    ]
