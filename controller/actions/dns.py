"""Traffic: the Route 53 failover records and each region's health check, in the global endpoint.

Fencing region S inverts S's health check, so Route 53 treats S as failed and answers with the
secondary record. Activating region T clears T's inversion, then points the PRIMARY failover
record at T's host (with T's check) and the SECONDARY record at the first other region, in the
topology's order, whose check is not inverted. Everything here talks to the global endpoint, so a
dead region can be fenced; only its mode parameter, written in the region, is then best effort.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, Literal

from controller.actions.base import Action, Observed, State, is_not_found, missing
from controller.contract import GLOBAL, DegradedMode, normalize_host
from controller.errors import PermanentStepError
from controller.topology.manifest import DnsManifest

if TYPE_CHECKING:
    from types_boto3_route53.client import Route53Client
    from types_boto3_route53.type_defs import (
        ChangeTypeDef,
        ResourceRecordSetOutputTypeDef,
        ResourceRecordSetTypeDef,
    )

    Record = ResourceRecordSetOutputTypeDef

log = logging.getLogger(__name__)

Role = Literal["PRIMARY", "SECONDARY"]
PRIMARY: Final = "PRIMARY"
SECONDARY: Final = "SECONDARY"
DEFAULT_IDS: dict[Role, str] = {PRIMARY: "primary", SECONDARY: "secondary"}


class DnsAction(Action):
    """Point the failover records at a region, or invert its health check."""

    kind = "dns"
    global_resource = True

    @property
    def r53(self) -> Route53Client:
        """The Route 53 client (global endpoint)."""
        return self.clients.client("route53", GLOBAL)

    @property
    def dns(self) -> DnsManifest:
        """The hosted zone, the record and the health checks."""
        if self.manifest.dns is None:
            raise PermanentStepError(
                "the manifest has no dns section", component=self.component, region=self.region
            )
        return self.manifest.dns

    def _read(self) -> Observed:
        try:
            inverted = self.inverted(self.region)
            records = self.records()
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"health check or zone of {self.dns.record}")
            raise
        primary = records.get(PRIMARY)
        points_at = _value(primary)
        host = self.host(self.region)
        facts = {
            "inverted": inverted,
            "host": host,
            "primary": points_at,
            "secondary": _value(records.get(SECONDARY)),
            "health_check": self.check_id(self.region),
        }
        if primary is None:
            return Observed(State.STANDBY, healthy=False, detail="no PRIMARY record", facts=facts)
        if inverted:
            return Observed(State.FENCED, facts=facts)
        return Observed(State.ACTIVE if points_at == host else State.STANDBY, facts=facts)

    def _activate(self, mode: DegradedMode | None) -> None:
        target = self.region
        if self.inverted(target):
            self.r53.update_health_check(HealthCheckId=self.check_id(target), Inverted=False)
        records = self.records()
        changes = [self._upsert(PRIMARY, target, records.get(PRIMARY))]
        standby = next(
            (r for r in self.topology.regions.all if r != target and not self.inverted(r)), None
        )
        if standby is not None:
            changes.append(self._upsert(SECONDARY, standby, records.get(SECONDARY)))
        else:
            log.warning("no healthy region left for the SECONDARY record: leaving it as is")
        self.r53.change_resource_record_sets(
            HostedZoneId=self.dns.zone_id,
            ChangeBatch={
                "Comment": f"failover: {self.topology.app} -> {target}",
                "Changes": changes,
            },
        )
        log.info("dns: PRIMARY -> %s, SECONDARY -> %s", target, standby)

    def _deactivate(self) -> None:
        """Invert the region's check (the fenced mark) and move every record off the region.

        Inverting alone is not enough: Route 53 reads an inverted check of a *dead* endpoint as
        healthy, so a record still pointing at a failed region would draw traffic back to it.
        The PRIMARY record moves to the region the SECONDARY named (or the next one in the
        topology's order), the SECONDARY to the next region after that.
        """
        fenced = self.region
        self.r53.update_health_check(HealthCheckId=self.check_id(fenced), Inverted=True)
        records = self.records()
        by_host = {self.host(r): r for r in self.topology.regions.all}
        others = [r for r in self.topology.regions.all if r != fenced and not self.inverted(r)]
        primary = by_host.get(_value(records.get(PRIMARY)) or "")
        secondary = by_host.get(_value(records.get(SECONDARY)) or "")
        changes = []
        if primary == fenced:
            primary = secondary if secondary in others else (others[0] if others else None)
            if primary is not None:
                changes.append(self._upsert(PRIMARY, primary, records.get(PRIMARY)))
            if secondary == primary:
                secondary = None
        if secondary in (None, fenced):
            candidates = [r for r in others if r != primary]
            if candidates:
                changes.append(self._upsert(SECONDARY, candidates[0], records.get(SECONDARY)))
        if changes:
            self.r53.change_resource_record_sets(
                HostedZoneId=self.dns.zone_id,
                ChangeBatch={
                    "Comment": f"fence {self.topology.app} in {fenced}",
                    "Changes": changes,
                },
            )
            log.info("dns: records moved off %s", fenced)

    # -- reading the global pieces -------------------------------------------------------------

    def check_id(self, region: str) -> str:
        """The id of ``region``'s health check."""
        found = self.dns.health_checks.get(region)
        if not found:
            regional = self.manifest.regions.get(region)
            ref = regional.components.get(self.component) if regional else None
            found = ref.health_check_id if ref else None
        if not found:
            raise PermanentStepError(
                f"the manifest has no health check for {region}",
                component=self.component,
                region=self.region,
            )
        return found

    def inverted(self, region: str) -> bool:
        """True when ``region``'s health check is inverted (the region is fenced)."""
        check = self.r53.get_health_check(HealthCheckId=self.check_id(region))["HealthCheck"]
        return bool(check["HealthCheckConfig"].get("Inverted", False))

    def records(self) -> dict[str, Record]:
        """The failover records of the application's name, by ``PRIMARY``/``SECONDARY``."""
        name = self.dns.record.rstrip(".") + "."
        page = self.r53.list_resource_record_sets(
            HostedZoneId=self.dns.zone_id, StartRecordName=name, MaxItems="20"
        )
        return {
            r["Failover"]: r
            for r in page.get("ResourceRecordSets", [])
            if r.get("Name", "").lower() == name.lower() and r.get("Failover")
        }

    def host(self, region: str) -> str:
        """The host ``region``'s API answers on: what the failover records point at."""
        regional = self.manifest.regions.get(region)
        candidates: list[str | None] = []
        if regional is not None:
            own = regional.components.get(self.component)
            target = getattr(self.spec, "target", None)
            api = regional.components.get(target) if target else None
            candidates = [
                own.endpoint if own else None,
                regional.api_endpoint,
                api.endpoint if api else None,
            ]
        for candidate in candidates:
            if candidate:
                return normalize_host(candidate)
        config = self.r53.get_health_check(HealthCheckId=self.check_id(region))["HealthCheck"][
            "HealthCheckConfig"
        ]
        return normalize_host(
            str(config.get("FullyQualifiedDomainName") or config.get("IPAddress", ""))
        )

    def _upsert(self, failover: Role, region: str, current: Record | None) -> ChangeTypeDef:
        record: ResourceRecordSetTypeDef = {
            "Name": self.dns.record,
            "Type": current["Type"] if current else "CNAME",
            "SetIdentifier": current.get("SetIdentifier", DEFAULT_IDS[failover])
            if current
            else DEFAULT_IDS[failover],
            "Failover": failover,
            "TTL": int(getattr(self.spec, "ttl", 60)),
            "ResourceRecords": [{"Value": self.host(region)}],
            "HealthCheckId": self.check_id(region),
        }
        return {"Action": "UPSERT", "ResourceRecordSet": record}


def _value(record: Record | None) -> str | None:
    if not record or not record.get("ResourceRecords"):
        return None
    return normalize_host(str(record["ResourceRecords"][0]["Value"]))
