"""The stack's ``manifest`` output: the shape the controller reads, naming every resource.

It must validate as ``controller.topology.manifest.Manifest``, name every component in every region,
and point each region's entries at that region's resources.
"""

from __future__ import annotations

import pytest

from controller.topology import Kind, loads
from controller.topology.manifest import Manifest
from infra.common import InfraError
from tests.kit.pulumi_mocks import ACCOUNT, SETTINGS, ZONES, Run, run_program


@pytest.fixture
def manifest(run: Run) -> Manifest:
    return Manifest.model_validate(run.manifest)


def test_manifest_names_every_component_in_every_region(run: Run, manifest: Manifest) -> None:
    t = run.topology
    assert manifest.app == t.app and manifest.primary == t.regions.primary
    assert manifest.control.table == t.control_table
    assert manifest.control.regions == list(t.control_regions.replicas)
    assert manifest.endpoints == {}, "real AWS needs no endpoint overrides"
    assert set(manifest.regions) == set(t.regions.all)
    for region, entry in manifest.regions.items():
        assert entry.mode_parameter == t.mode_parameter(region)
        assert entry.api_endpoint.startswith("https://") and region in entry.api_endpoint
        assert set(entry.components) == set(t.components)
        for name, spec in t.components.items():
            ref = manifest.ref(name, region)
            assert ref.kind == spec.kind
            assert ref.name
            assert ref.mode_parameter == t.component_mode_parameter(name, region)


def test_manifest_arns_are_those_of_their_region(run: Run, manifest: Manifest) -> None:
    for region, entry in manifest.regions.items():
        for name, ref in entry.components.items():
            for arn in (ref.arn, ref.stream_arn, ref.dlq_arn):
                if arn and arn.split(":")[3]:
                    _, _, service, arn_region, account, _ = arn.split(":", 5)
                    assert arn_region == region, (name, arn)
                    # API Gateway's control-plane ARNs have no account
                    assert account == ("" if service == "apigateway" else ACCOUNT), (name, arn)


def test_manifest_function_entries_carry_what_the_controller_acts_on(
    run: Run, manifest: Manifest
) -> None:
    t = run.topology
    uuids = {
        m.state["uuid"]: m.region
        for m in run.of("aws:lambda/eventSourceMapping:EventSourceMapping")
    }
    for region in t.regions.all:
        for name, spec in t.of_kind(Kind.FUNCTION):
            ref = manifest.ref(name, region)
            assert ref.alias == "live"
            assert ref.role_arn and ref.role_arn.endswith(f"role/{ref.name}")
            assert len(ref.mappings) == len(spec.events)
            assert all(uuids[u] == region for u in ref.mappings)
            facing = any(r.function == name for _, api in t.of_kind(Kind.API) for r in api.routes)
            assert len(ref.alarms) == (4 if facing else 3)
            assert all(a.startswith(ref.name) for a in ref.alarms)
        for name, spec in t.of_kind(Kind.QUEUE):
            ref = manifest.ref(name, region)
            assert ref.queue_url and region in ref.queue_url
            assert (ref.dlq_arn is not None) is spec.dlq
        for name, _ in t.of_kind(Kind.TABLE):
            assert manifest.ref(name, region).stream_arn


def test_manifest_dns_names_a_health_check_per_region(run: Run, manifest: Manifest) -> None:
    t = run.topology
    ((name, dns),) = t.of_kind(Kind.DNS)
    assert manifest.dns is not None
    assert manifest.dns.record == dns.name and manifest.dns.zone == dns.zone
    assert manifest.dns.zone_id == ZONES[dns.zone], "the account's existing zone"
    checks = {hc.id for hc in run.of("aws:route53/healthCheck:HealthCheck")}
    assert set(manifest.dns.health_checks) == set(t.regions.all)
    assert set(manifest.dns.health_checks.values()) == checks
    identifiers = {t.regions.primary: "primary", t.regions.standby[0]: "secondary"}
    for region in t.regions.all:
        ref = manifest.ref(name, region)
        assert ref.health_check_id == manifest.dns.health_checks[region]
        assert ref.set_identifier == identifiers.get(region)
        assert ref.arn == f"arn:aws:route53:::hostedzone/{manifest.dns.zone_id}"
        # the host the controller writes into the records for this region
        assert ref.endpoint and ref.endpoint.startswith("https://d-") and region in ref.endpoint


OPEN_ROUTE = """
app: leaky
regions: {primary: us-east-1, standby: [us-east-2]}
components:
  fn: {kind: function, code: tests/data/functions, handler: app.handler}
  api:
    kind: api
    routes: [{method: POST, path: /admin, function: fn, auth: none}]
"""


def test_an_open_business_route_is_refused() -> None:
    with pytest.raises(InfraError, match="only the health route may be open"):
        run_program(loads(OPEN_ROUTE), SETTINGS["example"]())
