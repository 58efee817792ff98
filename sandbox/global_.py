"""What spans regions: the control table (in the control store) and Route 53 (in ``global``).

Called by :mod:`sandbox.provision`. The DNS shape is the one the traffic actions move
on failover: a health check per region (``CallerReference`` ``<app>-<region>``) and two failover
CNAME records for the application's name, ``primary`` (PRIMARY, the primary region's API host)
and ``secondary`` (SECONDARY, the first standby's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from controller.aws import Clients
from controller.contract import GLOBAL, normalize_host
from controller.topology import Kind, Topology
from controller.topology.kinds import DnsSpec
from controller.topology.manifest import ComponentRef, ControlManifest, DnsManifest

if TYPE_CHECKING:
    from types_boto3_route53.type_defs import ChangeTypeDef, HealthCheckConfigTypeDef

PRIMARY_ID = "primary"
SECONDARY_ID = "secondary"
#: As the Pulumi program does: the regional API answers HTTPS only.
HEALTH_CHECK_TYPE: Literal["HTTPS"] = "HTTPS"
HEALTH_CHECK_PORT = 443


def provision_control(topology: Topology, clients: Clients) -> ControlManifest:
    """The control table that holds the journal and the lease (``pk``/``sk``, on demand).

    It is made once, in the control store (``clients`` reach it as the first control replica's
    DynamoDB; :mod:`sandbox.mrsc`), and served through every control replica's region.
    """
    control = topology.control_regions
    clients.client("dynamodb", control.replicas[0]).create_table(
        TableName=topology.control_table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    return ControlManifest(table=topology.control_table, regions=list(control.replicas))


def dns_component(topology: Topology) -> tuple[str, DnsSpec] | None:
    """The topology's DNS component, if it has one."""
    return next(iter(topology.of_kind(Kind.DNS)), None)


def create_zone(topology: Topology, clients: Clients) -> str | None:
    """The hosted zone of the DNS component's zone; its id (None without a DNS component)."""
    found = dns_component(topology)
    if found is None:
        return None
    zone = clients.client("route53", GLOBAL).create_hosted_zone(
        Name=found[1].zone, CallerReference=f"{topology.app}-zone"
    )["HostedZone"]
    return str(zone["Id"]).rsplit("/", 1)[-1]


def provision_dns(
    topology: Topology, clients: Clients, zone_id: str, endpoints: Mapping[str, str]
) -> DnsManifest:
    """A health check per region and the two failover records, pointing at the primary.

    ``endpoints`` maps every region to its API endpoint URL.
    """
    found = dns_component(topology)
    assert found is not None
    _, spec = found
    route53 = clients.client("route53", GLOBAL)
    checks = {}
    for region in topology.regions.all:
        config: HealthCheckConfigTypeDef = {
            "Type": HEALTH_CHECK_TYPE,
            "FullyQualifiedDomainName": normalize_host(endpoints[region]),
            "Port": HEALTH_CHECK_PORT,
            "ResourcePath": spec.health_check.path,
            "RequestInterval": spec.health_check.interval,
            "FailureThreshold": spec.health_check.threshold,
        }
        checks[region] = str(
            route53.create_health_check(
                CallerReference=f"{topology.app}-{region}",
                HealthCheckConfig=config,
            )["HealthCheck"]["Id"]
        )
    primary, secondary = topology.regions.primary, topology.regions.standby[0]
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                _record(spec, PRIMARY_ID, "PRIMARY", endpoints[primary], checks[primary]),
                _record(spec, SECONDARY_ID, "SECONDARY", endpoints[secondary], checks[secondary]),
            ]
        },
    )
    return DnsManifest(zone_id=zone_id, zone=spec.zone, record=spec.name, health_checks=checks)


def _record(
    spec: DnsSpec,
    identifier: str,
    failover: Literal["PRIMARY", "SECONDARY"],
    endpoint: str,
    check: str,
) -> ChangeTypeDef:
    return {
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": spec.name,
            "Type": "CNAME",
            "SetIdentifier": identifier,
            "Failover": failover,
            "TTL": spec.ttl,
            "HealthCheckId": check,
            "ResourceRecords": [{"Value": normalize_host(endpoint)}],
        },
    }


def dns_ref(topology: Topology, dns: DnsManifest, region: str) -> ComponentRef:
    """The DNS component's reference in ``region``: its health check and its record, if any."""
    found = dns_component(topology)
    assert found is not None
    name = found[0]
    identifier = {
        topology.regions.primary: PRIMARY_ID,
        topology.regions.standby[0]: SECONDARY_ID,
    }.get(region)
    return ComponentRef(
        kind="dns",
        name=dns.record,
        arn=f"arn:aws:route53:::hostedzone/{dns.zone_id}",
        health_check_id=dns.health_checks[region],
        set_identifier=identifier,
        mode_parameter=topology.component_mode_parameter(name, region),
    )
