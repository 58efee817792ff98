"""What is deployed already, read from the control table before anything is created.

Called by :func:`infra.program.deploy` first. Two items of the control table say what a
``pulumi up`` must not ignore:

- the lease item's desired state (``active``, written by every failover): the region that
  serves now. Whatever the program adds or replaces (a mapping, a rule, a mode parameter) is
  created serving in that region and standing by elsewhere, not as if the deploy-time primary
  were active (two consumers). A failover in progress, or a control table that does not answer,
  stops the deployment with one line: it cannot know who serves;
- the manifest item's ``pins`` (written by the last ``pulumi up``): what cannot change once
  deployed. The control table's regions (a witness never becomes a replica, replicas are not
  added to a strongly consistent table, its consistency mode never changes) and each health
  check's interval (Route 53 replaces the check, and the new one is not inverted: a fenced
  region would serve again). A change is refused with one line naming the field.

A control table that does not exist yet (or holds neither item) is a first deployment.

Called again by :meth:`infra.watchers.Watchers.publish` right before the manifest item is
written (:func:`still_as_read`, once everything else is deployed): a failover that started
during the deployment, or a manifest item that another writer changed since the first read,
stops the write with one line. The check narrows the race to the moment between that read and
the write, and does not close it: ``aws.dynamodb.TableItem`` updates with an unconditional
UpdateItem (terraform-provider-aws ``table_item.go``: only its create is conditional), and a
conditional write would need a provider of our own (its own credentials and a state
migration of the deployed item).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from controller import contract
from controller.topology import Kind, Topology
from infra import aws
from infra.common import Settings, provider_settings

#: What the invoke says when the table or the item does not exist (the provider's words, from
#: ResourceNotFoundException and an empty GetItem): a first deployment, nothing to honour.
_ABSENT = ("couldn't find resource", "empty result", "resourcenotfoundexception", "not found")


class DeployedError(pulumi.RunError):
    """The deployed state forbids this deployment: one line saying why (no stack trace)."""


@dataclass(frozen=True)
class Deployed:
    """What the control table says: the serving region, a run in progress, the pins."""

    active: str | None = None
    #: the lease's holder while it holds it (a failover in progress), else None
    holder: str | None = None
    pins: Mapping[str, Any] = field(default_factory=dict)
    #: a digest of the manifest item as read (None: there was none)
    manifest: str | None = None


def pins(topology: Topology) -> dict[str, Any]:
    """What this deployment pins for the next: the control regions, the checks' intervals."""
    control = topology.control_regions
    return {
        "control": {"replicas": list(control.replicas), "witness": control.witness},
        "health_checks": {
            name: spec.health_check.interval for name, spec in topology.of_kind(Kind.DNS)
        },
    }


def read(
    topology: Topology,
    providers: Mapping[str, aws.Provider],
    settings: Settings | None = None,
) -> Deployed:
    """The deployed state, from the first control region (then application region) whose
    control table answers; an empty :class:`Deployed` when none has one.

    A control region that is no application region is read through a provider of its own,
    with the stack's endpoints (``settings``) as every other provider of the program has them.

    Raises
    ------
    DeployedError
        A control table exists but cannot be read.
    """
    control = topology.control_regions
    candidates = [r for r in dict.fromkeys((*control.replicas, *topology.regions.all))]
    for region in candidates:
        provider = providers.get(region)
        if provider is None:
            if region not in control.replicas:
                continue
            provider = aws.Provider(
                f"{topology.prefix}-deployed-{region}",
                region=region,
                **provider_settings(settings or Settings(), region),
            )
        manifest = _item(topology, provider, region, contract.MANIFEST_ITEM)
        if manifest is None:
            continue
        lease = _item(topology, provider, region, contract.LEASE_ITEM) or {}
        return Deployed(
            active=lease.get(contract.DESIRED_ACTIVE, {}).get("S"),
            holder=_holder(lease),
            pins=json.loads(manifest.get("pins", {}).get("S", "{}")),
            manifest=_digest(manifest),
        )
    return Deployed()


async def still_as_read(
    topology: Topology, provider: aws.Provider, region: str, deployed: Deployed
) -> None:
    """Refuse to write the manifest item when the control table changed since :func:`read`.

    Raises
    ------
    DeployedError
        One line: a failover holds the lease now, the manifest item is not the one read at the
        start (another writer), or the control table cannot be read.
    """
    lease = await _item_async(topology, provider, region, contract.LEASE_ITEM) or {}
    holder = _holder(lease)
    if holder is not None:
        raise DeployedError(
            f"control: a failover started during this deployment (the lease is held by "
            f"{holder}): the manifest item was not written, everything else is deployed; "
            "deploy again once it has ended (failover runs)"
        )
    now = _digest(await _item_async(topology, provider, region, contract.MANIFEST_ITEM))
    if now != deployed.manifest:
        raise DeployedError(
            f"control: the manifest item in {topology.control_table} changed during this "
            "deployment (another deployment wrote it): not overwritten; deploy again from the "
            "newest topology"
        )


def _holder(lease: Mapping[str, Any]) -> str | None:
    """The lease's owner while it holds it (a failover in progress), else None."""
    expires = float(lease.get("expires_at", {}).get("N", 0) or 0)
    owner: str | None = lease.get("owner", {}).get("S")
    return owner if expires > time.time() else None


def _digest(item: Mapping[str, Any] | None) -> str | None:
    if item is None:
        return None
    return hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()


def _key(key: str) -> str:
    return json.dumps({"pk": {"S": key}, "sk": {"S": key}})


def _item(
    topology: Topology, provider: aws.Provider, region: str, key: str
) -> dict[str, Any] | None:
    """One item of the control table in ``region`` as DynamoDB JSON; None when absent."""
    try:
        got = aws.dynamodb.get_table_item(
            table_name=topology.control_table,
            key=_key(key),
            opts=pulumi.InvokeOptions(provider=provider),
        )
    except Exception as exc:  # the invoke's error type is the engine's; its text says why
        _absent_or_raise(topology, region, exc)
        return None
    item: dict[str, Any] = json.loads(got.item or "{}")
    return item


async def _item_async(
    topology: Topology, provider: aws.Provider, region: str, key: str
) -> dict[str, Any] | None:
    """:func:`_item` inside an apply (a synchronous invoke there would stall the engine)."""
    try:
        got = await pulumi.runtime.invoke_async(
            "aws:dynamodb/getTableItem:getTableItem",
            {"tableName": topology.control_table, "key": _key(key)},
            pulumi.InvokeOptions(provider=provider),
        )
    except Exception as exc:  # as in _item
        _absent_or_raise(topology, region, exc)
        return None
    item: dict[str, Any] = json.loads((got or {}).get("item") or "{}")
    return item


def _absent_or_raise(topology: Topology, region: str, exc: Exception) -> None:
    """Return when the invoke's error says the table or item does not exist; else refuse."""
    text = str(exc)
    if any(word in text.lower() for word in _ABSENT):
        return
    raise DeployedError(
        f"control: cannot read the control table {topology.control_table} in {region}, "
        "so which region serves is unknown and whatever this deployment creates could "
        "serve beside it: make the control table answer (credentials, "
        f"dynamodb:GetItem, a majority of its regions), then deploy again "
        f"({text.splitlines()[0] if text else type(exc).__name__})"
    ) from exc


def serving_region(topology: Topology, deployed: Deployed) -> str:
    """The region this deployment creates as serving; refuse what cannot be deployed.

    Raises
    ------
    DeployedError
        One line: a failover holds the lease, the serving region left the topology, or a
        pinned value changed.
    """
    if deployed.holder is not None:
        raise DeployedError(
            f"control: a failover is in progress (the lease is held by {deployed.holder}): "
            "deploy once it has ended (failover runs)"
        )
    _check_pins(topology, deployed.pins)
    active = deployed.active or topology.regions.primary
    if active not in topology.regions.all:
        raise DeployedError(
            f"regions: {active} serves now (the control table's active region) but is no longer "
            "a region of the topology: fail over to a region that stays, then deploy"
        )
    if active != topology.regions.primary:
        pulumi.log.warn(
            f"{active} serves now, not the primary {topology.regions.primary}: what this "
            f"deployment adds is created serving in {active} and standing by elsewhere"
        )
    return active


def _check_pins(topology: Topology, pinned: Mapping[str, Any]) -> None:
    now = pins(topology)
    control = pinned.get("control")
    if control and control != now["control"]:
        witness = f", witness {control['witness']}" if control.get("witness") else ""
        raise DeployedError(
            f"control: the control table is deployed in {', '.join(control['replicas'])}"
            f"{witness}, not {', '.join(now['control']['replicas'])}"
            f"{', witness ' + now['control']['witness'] if now['control']['witness'] else ''}: "
            "a strongly consistent table's regions cannot change (a witness never becomes a "
            "replica, no replica is added); keep them with a `control:` section in the topology"
        )
    for name, interval in (pinned.get("health_checks") or {}).items():
        wanted = now["health_checks"].get(name)
        if wanted is not None and wanted != interval:
            raise DeployedError(
                f"components.{name}.health_check.interval: is {interval} s as deployed, not "
                f"{wanted}: Route 53 replaces a check whose interval changes, and the new one is "
                "not inverted (a fenced region would serve again); keep it at "
                f"{interval}"
            )
