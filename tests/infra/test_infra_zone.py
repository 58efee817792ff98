"""The hosted zone: the account's existing public zone, looked up by name, or one clear line.

A zone the program created would have name servers nobody delegates to: the certificates' DNS
validation would never complete and ``pulumi up`` would wait until it timed out.
"""

from __future__ import annotations

import dataclasses

import pytest

from controller.topology import EXAMPLE_SPEC, Kind, load
from infra.common import InfraError
from tests.kit.pulumi_mocks import SETTINGS, ZONES, Run, run_program


def test_the_program_creates_no_zone_and_uses_the_existing_one(run: Run) -> None:
    assert run.of("aws:route53/zone:Zone") == []
    ((_, dns),) = run.topology.of_kind(Kind.DNS)
    records = run.of("aws:route53/record:Record")
    assert records and {r.inputs["zoneId"] for r in records} == {ZONES[dns.zone]}


def test_a_missing_zone_stops_the_program_with_one_line() -> None:
    with pytest.raises(InfraError) as info:
        run_program(load(EXAMPLE_SPEC), SETTINGS["example"](), zones={})
    message = str(info.value)
    assert "\n" not in message
    assert "no public hosted zone 'orders.example.com'" in message
    assert "failover:zoneIds" in message


def test_a_zone_id_from_config_is_used_without_a_lookup() -> None:
    settings = dataclasses.replace(
        SETTINGS["example"](), zone_ids={"orders.example.com": "ZFROMCONFIG"}
    )
    run = run_program(load(EXAMPLE_SPEC), settings, zones={})
    assert {r.inputs["zoneId"] for r in run.of("aws:route53/record:Record")} == {"ZFROMCONFIG"}


def test_one_validation_record_serves_every_regional_certificate(run: Run) -> None:
    certs = run.of("aws:acm/certificate:Certificate")
    assert len(certs) == len(run.topology.regions.all)
    records = [
        r
        for r in run.of("aws:route53/record:Record")
        if not r.inputs.get("failoverRoutingPolicies")
    ]
    assert len(records) == 1, "one record per name, not one per region"
    (record,) = records
    assert not record.inputs.get("allowOverwrite"), "nobody else writes it"
    assert record.region == run.topology.regions.primary
    assert not any(region in record.name for region in run.topology.regions.all), (
        "the stack owns it, not a region that can be removed"
    )
    validations = run.of("aws:acm/certificateValidation:CertificateValidation")
    assert len(validations) == len(certs)
    assert {tuple(v.inputs["validationRecordFqdns"]) for v in validations} == {
        (record.state["fqdn"],)
    }
