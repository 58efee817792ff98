"""The whole program as one function: a topology in, the stack's ``manifest`` output out.

``infra/__main__.py`` calls :func:`deploy` with the topology named in the stack config; tests call
it under ``pulumi.runtime.set_mocks``. Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from controller.topology import Kind, Topology
from controller.topology.kinds import DnsSpec
from infra import aws
from infra.alarms import RegionAlarms, RegionAlarmsArgs, alarm_topic
from infra.bundle import BundleError, function_bundle
from infra.common import Account, InfraError, Settings, provider_settings
from infra.deployed import pins, read, serving_region
from infra.global_ import (
    AccessRoles,
    AccessRolesArgs,
    Endpoint,
    GlobalData,
    GlobalDataArgs,
    Operated,
    Traffic,
    TrafficArgs,
)
from infra.regional import Region, RegionArgs
from infra.watchers import Watchers, WatchersArgs


def providers_for(
    topology: Topology,
    given: Mapping[str, aws.Provider] | None = None,
    opts: pulumi.ResourceOptions | None = None,
    settings: Settings | None = None,
) -> dict[str, aws.Provider]:
    """One explicit provider per region, tagging everything it creates with app and region.

    A provider in ``given`` is used for its region as it is (the caller's: an assumed role,
    other credentials); the others are created here, under ``opts``' parent if it has one, and
    pointed at the emulator's endpoints when ``settings`` names some.
    """
    given = given or {}
    settings = settings or Settings()
    return {
        region: given.get(region)
        or aws.Provider(
            f"aws-{region}",
            region=region,
            default_tags=aws.ProviderDefaultTagsArgs(
                tags={"failover:app": topology.app, "failover:region": region}
            ),
            opts=pulumi.ResourceOptions(parent=opts.parent if opts else None),
            **provider_settings(settings, region),
        )
        for region in topology.regions.all
    }


def deploy(
    topology: Topology,
    settings: Settings | None = None,
    opts: pulumi.ResourceOptions | None = None,
    providers: Mapping[str, aws.Provider] | None = None,
) -> pulumi.Output[dict[str, Any]]:
    """Create every resource of ``topology`` in every region; return the manifest output.

    The manifest has the shape of ``controller.topology.manifest.Manifest`` (documented in
    ``docs/manifest.md``): the controller finds every real resource through it.

    Every component is built in Pulumi's ``(name, args, opts)`` shape. ``opts`` is given to each
    top-level one (``protect=True``, a ``parent`` to nest the whole application in a component
    of the caller's, a name-less ``Alias(parent=...)`` to move it there): their children inherit
    it. ``providers`` replace the program's own provider for the regions they name.
    """
    settings = settings or Settings()
    topology = topology.for_stack(settings.stack)
    providers = providers_for(topology, providers, opts, settings)
    primary = providers[topology.regions.primary]
    # who serves now, and what cannot change: before anything is created
    deployed = read(topology, providers, settings)
    active = serving_region(topology, deployed)

    def top(provider: aws.Provider | None = None) -> pulumi.ResourceOptions:
        """A top-level component's options: the caller's ``opts`` and its region's provider."""
        return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=provider))

    invoke = pulumi.InvokeOutputOptions(provider=primary)
    identity = aws.get_caller_identity_output(opts=invoke)
    partition = aws.get_partition_output(opts=invoke)
    account = Account(partition=partition.partition, account_id=identity.account_id)

    app = topology.app
    data = GlobalData(f"{app}-data", GlobalDataArgs(topology, settings, providers, account), top())
    bundles = build_bundles(topology, settings)
    topics = {
        region: alarm_topic(topology, region, account, top(providers[region]))
        for region in topology.regions.all
    }
    regions = {
        region: Region(
            f"{app}-{region}",
            RegionArgs(
                topology=topology,
                region=region,
                settings=settings,
                data=data,
                account=account,
                bundles=bundles,
                alarm_topic=topics[region].arn,
                active=active,
            ),
            top(providers[region]),
        )
        for region in topology.regions.all
    }
    for region, stack in regions.items():
        RegionAlarms(
            f"{app}-alarms-{region}",
            RegionAlarmsArgs(topology, stack, data.tables, topics[region]),
            top(providers[region]),
        )
    traffic = {
        name: Traffic(
            topology.physical_name(name, "global"),
            TrafficArgs(topology, name, spec, data.zone_ids[spec.zone], _endpoints(spec, regions)),
            top(primary),
        )
        for name, spec in topology.of_kind(Kind.DNS)
    }
    operated = _operated(topology, data, regions, traffic, account)
    AccessRoles(
        f"{app}-access", AccessRolesArgs(topology, settings, account, operated), top(primary)
    )
    watchers = Watchers(
        f"{topology.prefix}-watchers",
        WatchersArgs(
            topology=topology,
            settings=settings,
            account=account,
            operated=operated,
            providers=providers,
            control_table=data.control_table.name,
            control_home=data.control_home,
            alarm_topics={r: t.arn for r, t in topics.items()},
        ),
        top(),
    )
    manifest = _manifest(topology, settings, regions, traffic, data, account.partition)
    for region, watcher in watchers.names().items():
        manifest["regions"][region]["watcher"] = watcher
    # the watchers read the manifest from the control table; the next `pulumi up` the pins
    watchers.publish(manifest, pins(topology), deployed)
    return pulumi.Output.from_input(manifest)


def build_bundles(topology: Topology, settings: Settings) -> dict[str, Path]:
    """Each function code folder's bundle (its files and requirements), built once: code -> zip."""
    out: dict[str, Path] = {}
    for name, spec in topology.of_kind(Kind.FUNCTION):
        if spec.code not in out:
            folder = settings.code_root / spec.code  # an absolute code stays as it is
            try:
                out[spec.code] = function_bundle(folder, settings.bundle_dir).path
            except BundleError as exc:
                raise InfraError(name, str(exc)) from exc
    return out


def _endpoints(spec: DnsSpec, regions: dict[str, Region]) -> dict[str, Endpoint]:
    """Each region's endpoint of the api a dns record points at."""
    out = {}
    for region, stack in regions.items():
        api = stack.apis[spec.target]
        if api.domain is None:
            continue
        config = api.domain.domain_name_configuration
        out[region] = Endpoint(
            host=api.endpoint.apply(lambda url: url.removeprefix("https://").split("/")[0]),
            target_domain=config.target_domain_name.apply(lambda v: v or ""),
        )
    return out


def _operated(
    topology: Topology,
    data: GlobalData,
    regions: dict[str, Region],
    traffic: dict[str, Traffic],
    account: Account,
) -> Operated:
    """What the controller and the deployer act on, as ARNs and ARN patterns.

    Named resources (functions and their aliases, rules, queues, streams, tables, parameters)
    as one pattern per region on the deployment's prefix (``function:orders-prod-*``): an
    exact list grows with the topology and a 50-function one is over IAM's policy size limits
    (10,240 characters inline per role, 6,144 per managed policy). Event source mappings are
    named by a UUID only: the pattern is the region's mappings. Buckets, APIs, zones and health
    checks, few and named by AWS, stay exact. The watchers' own functions match the prefix:
    :attr:`Operated.protected` names them for a Deny.
    """
    prefix = topology.prefix
    operated = Operated(control_tables=list(data.control_arns()))
    kinds = {str(spec.kind) for spec in topology.components.values()}

    def per_region(service: str, resource: str, kind: str | None = None) -> list[Any]:
        if kind is not None and kind not in kinds:
            return []
        return [account.arn(service, r, resource) for r in topology.regions.all]

    operated.functions = per_region("lambda", f"function:{prefix}-*", Kind.FUNCTION)
    if any(fn.mappings for stack in regions.values() for fn in stack.functions.values()):
        operated.mappings = per_region("lambda", "event-source-mapping:*")
    if any(stack.rules for stack in regions.values()):
        operated.rules = per_region("events", f"rule/{prefix}-*")
    operated.queues = per_region("sqs", f"{prefix}-*", Kind.QUEUE)
    operated.streams = per_region("kinesis", f"stream/{prefix}-*", Kind.STREAM)
    operated.parameters = per_region("ssm", f"parameter/{prefix}-*", Kind.PARAMETER)
    operated.tables = per_region("dynamodb", f"table/{prefix}-*", Kind.TABLE)
    for stack in regions.values():
        refs = stack.refs.values()
        operated.buckets += [ref.arn for ref in refs if ref.kind == "bucket"]
        operated.apis += [api.api.arn for api in stack.apis.values()]
    operated.protected = [
        account.arn("lambda", r, f"function:{topology.watcher_function(r)}{suffix}")
        for r in topology.regions.all
        for suffix in ("", ":*")
    ]
    zones = {t.spec.zone: t.zone_id for t in traffic.values()}
    operated.zones = [
        pulumi.Output.concat("arn:", account.partition, ":route53:::hostedzone/", z)
        for z in zones.values()
    ]
    for t in traffic.values():
        operated.health_checks += [hc.arn for hc in t.health_checks.values()]
    return operated


def _manifest(
    topology: Topology,
    settings: Settings,
    regions: dict[str, Region],
    traffic: dict[str, Traffic],
    data: GlobalData,
    partition: pulumi.Input[str],
) -> dict[str, Any]:
    """The stack output the controller reads, as a plain dict of outputs."""
    dns_entries: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in regions}
    for name, t in traffic.items():
        zone_arn = pulumi.Output.concat("arn:", partition, ":route53:::hostedzone/", t.zone_id)
        for region, stack in regions.items():
            hc = t.health_checks.get(region)
            endpoint = t.endpoints.get(region)
            dns_entries[region][name] = {
                "kind": "dns",
                "name": t.spec.name,
                "arn": zone_arn,
                # the host the failover records point at when this region serves the name
                "endpoint": (
                    pulumi.Output.concat("https://", endpoint.target_domain)
                    if endpoint
                    else stack.apis[t.spec.target].endpoint
                ),
                "health_check_id": hc.id if hc else None,
                "set_identifier": t.set_identifiers.get(region),
            }
    first = next(iter(traffic.values()), None)
    return {
        "app": topology.app,
        "primary": topology.regions.primary,
        "spec": settings.spec_path,
        "control": {
            "table": data.control_table.name,
            "regions": list(topology.control_regions.replicas),
        },
        "dns": None
        if first is None
        else {
            "zone_id": first.zone_id,
            "zone": first.spec.zone,
            "record": first.spec.name,
            "health_checks": {r: hc.id for r, hc in first.health_checks.items()},
        },
        "regions": {
            region: stack.manifest(dns_entries[region]) for region, stack in regions.items()
        },
        "endpoints": dict(settings.endpoints),
    }
