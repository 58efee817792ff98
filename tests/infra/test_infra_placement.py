"""Every resource lands in the region it should: one explicit provider per region, no default.

The mocks give every regional ARN the region of the provider that created the resource, so an
input that names an ARN of another region means a resource wired across regions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.kit.pulumi_mocks import Run

REGIONAL_ARN = re.compile(r"^arn:aws:([a-z0-9-]+):([a-z0-9-]*):")
GLOBAL_TYPES = ("aws:iam/", "aws:route53/")


def strings(value: Any) -> Iterator[str]:
    """Every string inside an input value (nested dicts and lists)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def test_every_resource_has_an_explicit_provider_of_the_topology(run: Run) -> None:
    regions = set(run.topology.regions.all)
    for res in run.resources:
        assert res.region in regions, f"{res.typ} {res.name} uses the default provider"


def test_resources_named_for_a_region_are_created_in_it(run: Run) -> None:
    regions = run.topology.regions.all
    checked = 0
    for res in run.resources:
        if res.typ.startswith(GLOBAL_TYPES):
            continue
        for value in (res.inputs.get("name"), res.inputs.get("bucket")):
            if not isinstance(value, str):
                continue
            named = [r for r in regions if re.search(rf"(^|[-/]){r}($|[-/])", value)]
            # a global table is named for the primary and lives there with its replicas
            if named:
                assert res.region == named[-1], f"{res.typ} {value} is in {res.region}"
                checked += 1
    assert checked > 10 * len(regions)


def test_no_regional_resource_refers_to_another_region(run: Run) -> None:
    checked = 0
    for res in run.resources:
        if res.typ.startswith(GLOBAL_TYPES):
            continue
        for text in strings(res.inputs):
            match = REGIONAL_ARN.match(text)
            if match and match.group(2):
                assert match.group(2) == res.region, f"{res.typ} {res.name} -> {text}"
                checked += 1
    assert checked > 0


def test_mode_parameters_say_active_in_the_primary_and_standby_elsewhere(run: Run) -> None:
    t = run.topology
    params = {p.inputs["name"]: p for p in run.of("aws:ssm/parameter:Parameter")}
    for region in t.regions.all:
        mode = params[t.mode_parameter(region)]
        assert mode.region == region
        value = mode.inputs["value"]
        value = value.get("value", value) if isinstance(value, dict) else value
        assert value == ("active" if region == t.regions.primary else "standby")
        for component in t.components:
            assert params[t.component_mode_parameter(component, region)].region == region


def test_each_region_has_every_per_region_resource(run: Run) -> None:
    t = run.topology
    per_region = (
        "aws:lambda/function:Function",
        "aws:lambda/alias:Alias",
        "aws:sqs/queue:Queue",
        "aws:apigatewayv2/api:Api",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:s3/bucket:Bucket",
        "aws:kinesis/stream:Stream",
    )
    for typ in per_region:
        counts = {r: sum(1 for res in run.of(typ) if res.region == r) for r in t.regions.all}
        assert len(set(counts.values())) == 1, (typ, counts)
