"""What the sandbox's account has before ``pulumi up``, as the README's deploy section asks.

Called by :mod:`sandbox.lifecycle` before it runs the program, and again when a restarted global
server comes back empty. On AWS an operator does these once, by hand, before the first
``pulumi up``; the program relies on them and creates neither:

- each DNS component's **public hosted zone** (``aws route53 create-hosted-zone``; delegated
  from the parent domain, which the emulator has no need of): the program looks it up by name;
- the **control table's region set**: multi-Region strong consistency is AWS's, in three regions
  of one set; the sandbox's servers play it once told which regions are the control table's
  replicas and witness (:func:`control_config`, given to every server's gate by the life cycle,
  again whenever a region fails or heals).

Nothing else in the sandbox creates a resource outside the program's run
(:mod:`sandbox.deploy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from controller.contract import GLOBAL
from controller.topology import Kind, Topology
from sandbox import mrsc

if TYPE_CHECKING:  # the clients are the caller's: importing botocore is its cost
    from controller.aws import Clients


def zones(topology: Topology) -> list[str]:
    """The public hosted zones the topology's DNS components live in, each once."""
    return list(dict.fromkeys(spec.zone for _, spec in topology.of_kind(Kind.DNS)))


def create_zones(topology: Topology, clients: Clients) -> dict[str, str]:
    """Create each hosted zone the program will look up, as an operator does once; their ids."""
    route53 = clients.client("route53", GLOBAL)
    made = {}
    for zone in zones(topology):
        created = route53.create_hosted_zone(
            Name=zone, CallerReference=f"{topology.app}-{zone}-precondition"
        )["HostedZone"]
        made[zone] = str(created["Id"]).rsplit("/", 1)[-1]
    return made


def control_config(
    topology: Topology,
    urls: Mapping[str, str],
    secret: str,
    partitioned: frozenset[str] = frozenset(),
    stopped: frozenset[str] = frozenset(),
) -> mrsc.Config:
    """The control table's region set as every server's gate plays it (:mod:`sandbox.mrsc`);
    ``partitioned`` and ``stopped`` (hung or down): the regions the sandbox made fail."""
    control = topology.control_regions
    return mrsc.Config(
        table=topology.control_table,
        replicas=control.replicas,
        members=control.all,
        urls=dict(urls),
        store_region=control.replicas[0],
        partitioned=partitioned,
        stopped=stopped,
        secret=secret,
    )
