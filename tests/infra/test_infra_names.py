"""Physical names: two stacks of one application in one account never share one, a bucket never
takes a fixed name in S3's global namespace, and every name fits its service's limit."""

from __future__ import annotations

import dataclasses

import pytest

from controller.topology import EXAMPLE_SPEC, load
from infra.global_ import BUCKET_PREFIX_MAX
from tests.kit.pulumi_mocks import SETTINGS, Run, run_program

#: Types whose ``name`` is unique per account (and region): what two stacks would fight over,
#: with the service's length limit.
ACCOUNT_SCOPED = {
    "aws:lambda/function:Function": 64,
    "aws:iam/role:Role": 64,
    "aws:iam/policy:Policy": 128,
    "aws:dynamodb/table:Table": 255,
    "aws:sqs/queue:Queue": 80,
    "aws:cloudwatch/eventRule:EventRule": 64,
    "aws:cloudwatch/eventBus:EventBus": 256,
    "aws:cloudwatch/metricAlarm:MetricAlarm": 255,
    "aws:cloudwatch/logGroup:LogGroup": 512,
    "aws:sns/topic:Topic": 256,
    "aws:ssm/parameter:Parameter": 1011,
    "aws:kinesis/stream:Stream": 128,
}


def _run(stack: str) -> Run:
    settings = dataclasses.replace(SETTINGS["example"](), stack=stack)
    return run_program(load(EXAMPLE_SPEC), settings)


@pytest.fixture(scope="module")
def stacks() -> dict[str, Run]:
    return {stack: _run(stack) for stack in ("staging", "prod")}


def _names(run: Run) -> set[tuple[str, str | None, str]]:
    return {
        (r.typ, r.region, r.inputs["name"])
        for r in run.resources
        if r.typ in ACCOUNT_SCOPED and isinstance(r.inputs.get("name"), str)
    }


def test_two_stacks_in_one_account_share_no_name(stacks: dict[str, Run]) -> None:
    staging, prod = (_names(stacks[s]) for s in ("staging", "prod"))
    assert len(staging) > 50 and len(staging) == len(prod)  # the probe sees the names
    assert not staging & prod, sorted(staging & prod)[:5]
    for typ in (
        "aws:lambda/function:Function",
        "aws:iam/role:Role",
        "aws:dynamodb/table:Table",
        "aws:ssm/parameter:Parameter",
        "aws:sqs/queue:Queue",
    ):
        assert any(t == typ for t, _, _ in prod), f"no {typ} seen"


def test_the_stack_is_part_of_every_name_and_of_the_manifest(stacks: dict[str, Run]) -> None:
    prod = stacks["prod"]
    for typ, _, name in _names(prod):
        assert "prod" in name, (typ, name)
    manifest = prod.manifest
    assert manifest["app"] == "orders"  # the app stays the app: only the names carry the stack
    assert manifest["control"]["table"] == "orders-prod-failover-control"
    region = manifest["regions"]["us-west-2"]
    assert region["mode_parameter"] == "/failover/orders-prod/us-west-2/mode"
    assert region["components"]["worker"]["name"] == "orders-prod-worker-us-west-2"


def test_buckets_take_no_fixed_name_in_the_global_namespace(stacks: dict[str, Run]) -> None:
    for run in stacks.values():
        buckets = run.of("aws:s3/bucket:Bucket")
        assert buckets
        for bucket in buckets:
            assert "bucket" not in bucket.inputs, "a fixed bucket name can be taken by anyone"
            assert len(bucket.inputs["bucketPrefix"]) <= BUCKET_PREFIX_MAX
        manifest_names = {
            c["name"]
            for r in run.manifest["regions"].values()
            for c in r["components"].values()
            if c["kind"] == "bucket"
        }
        assert manifest_names == {b.state["bucket"] for b in buckets}  # the real names


def test_every_name_fits_its_service_with_a_long_stack_name() -> None:
    run = _run("review-environment-for-a-very-long-branch-name-1234")
    for typ, _, name in _names(run):
        assert len(name) <= ACCOUNT_SCOPED[typ], (typ, name)
    roles = {n for t, _, n in _names(run) if t == "aws:iam/role:Role"}
    assert len(roles) == len({n.lower() for n in roles})  # IAM names are case-insensitive
