"""Provision a whole sandbox (every region and the global process) and build its manifest.

Called by :mod:`sandbox.lifecycle` for ``up`` and ``reset``, and for one region when
a killed region is restarted. Regions are provisioned in parallel, each by
:func:`sandbox.regional.provision_region` in its own process, through one cached set
of clients that sends every call (a region's IAM calls too) to the right process.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import botocore.exceptions

from controller.aws import AwsSettings, Clients
from controller.contract import GLOBAL
from controller.errors import FailoverError
from controller.topology import Topology
from controller.topology.manifest import Manifest
from sandbox import global_, mrsc
from sandbox.regional import provision_region

log = logging.getLogger(__name__)

#: Creating is not idempotent: one attempt, and a generous read timeout for a busy emulator.
PROVISION_SETTINGS = AwsSettings(connect_timeout=2.0, read_timeout=30.0, max_attempts=1)


@dataclass
class SandboxClients(Clients):
    """Clients on a whole sandbox that also send a region's IAM calls to that region's server.

    moto's Lambda accepts only a role that exists in its own process, so each region's roles
    are made there; everything else is routed as :class:`~controller.aws.Clients` does.
    """

    def endpoint(self, service: str, region: str) -> str | None:
        """The region's own server for IAM in a region, else the usual endpoint."""
        if service == "iam" and region != GLOBAL and region in self.endpoints:
            return self.endpoints[region]
        return super().endpoint(service, region)


@functools.lru_cache(maxsize=8)
def _cached_clients(endpoints: tuple[tuple[str, str], ...]) -> SandboxClients:
    return SandboxClients(endpoints=dict(endpoints), settings=PROVISION_SETTINGS)


def sandbox_clients(urls: Mapping[str, str]) -> SandboxClients:
    """The provisioning clients of the servers at ``urls`` (each region and ``global``).

    Cached: making boto3 clients costs more CPU than provisioning a region, and ``reset``
    provisions the same servers again and again.
    """
    return _cached_clients(tuple(sorted(urls.items())))


def store_clients(topology: Topology, urls: Mapping[str, str]) -> SandboxClients:
    """Clients whose DynamoDB in the first control replica is the control store itself."""
    return sandbox_clients({topology.control_regions.replicas[0]: urls[mrsc.STORE]})


def endpoints_of(urls: Mapping[str, str]) -> dict[str, str]:
    """The manifest's endpoints: every server's but the control store's (the controller reaches
    the control table through its regions, never the store)."""
    return {name: url for name, url in urls.items() if name != mrsc.STORE}


def provision_all(topology: Topology, spec: str, urls: Mapping[str, str]) -> Manifest:
    """Create everything in fresh servers (``urls``: each region, the control regions, ``global``
    and the control store).

    Raises
    ------
    FailoverError
        A call to the emulator failed; the message names it.
    """
    started = time.monotonic()
    regions = topology.regions.all
    clients = sandbox_clients(endpoints_of(urls))
    with _errors(), ThreadPoolExecutor(len(regions) + 2, thread_name_prefix="prov") as pool:
        control = pool.submit(global_.provision_control, topology, store_clients(topology, urls))
        zone = pool.submit(global_.create_zone, topology, clients)
        futures = {
            region: pool.submit(
                provision_region,
                topology,
                region,
                urls[region],
                clients,
                active=region == topology.regions.primary,
            )
            for region in regions
        }
        manifests = {region: future.result() for region, future in futures.items()}
        manifest = Manifest(
            app=topology.app,
            primary=topology.regions.primary,
            spec=spec,
            control=control.result(),
            regions=manifests,
            endpoints=endpoints_of(urls),
        )
        zone_id = zone.result()
        if zone_id is not None:
            endpoints = {r: m.api_endpoint for r, m in manifests.items()}
            manifest.dns = global_.provision_dns(topology, clients, zone_id, endpoints)
            _add_dns_refs(topology, manifest)
    log.info("provisioned %d regions in %.2f s", len(regions), time.monotonic() - started)
    return manifest


def provision_standby(topology: Topology, manifest: Manifest, region: str) -> Manifest:
    """Re-create ``region`` in its restarted (empty) server, in the standby shape.

    The names are the same as before; what the emulator chose (mapping UUIDs) is new, so the
    returned manifest replaces that region's part.
    """
    with _errors():
        fresh = provision_region(
            topology,
            region,
            manifest.endpoints[region],
            sandbox_clients(manifest.endpoints),
            active=False,
        )
    old = manifest.regions.get(region)
    if old is not None and old.api_endpoint != fresh.api_endpoint:
        log.warning(
            "region %s came back with API %s (was %s): its health check probes the old host",
            region,
            fresh.api_endpoint,
            old.api_endpoint,
        )
    updated = manifest.model_copy(deep=True)
    updated.regions[region] = fresh
    _add_dns_refs(topology, updated)
    return updated


def provision_global(topology: Topology, manifest: Manifest) -> Manifest:
    """Re-create what the ``global`` server holds (the zone, the health checks and records) in
    its restarted, empty process; the manifest with the new ids. (The control table is not
    there: it survives, as a real one does.)"""
    clients = sandbox_clients(manifest.endpoints)
    updated = manifest.model_copy(deep=True)
    with _errors():
        zone_id = global_.create_zone(topology, clients)
        if zone_id is not None:
            endpoints = {r: m.api_endpoint for r, m in updated.regions.items()}
            updated.dns = global_.provision_dns(topology, clients, zone_id, endpoints)
            _add_dns_refs(topology, updated)
    return updated


def _add_dns_refs(topology: Topology, manifest: Manifest) -> None:
    found = global_.dns_component(topology)
    if found is None or manifest.dns is None:
        return
    for region, part in manifest.regions.items():
        part.components[found[0]] = global_.dns_ref(topology, manifest.dns, region)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn an emulator error during provisioning into one :class:`FailoverError`."""
    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise FailoverError(f"sandbox provisioning failed: {exc}") from exc
