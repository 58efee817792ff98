"""Serverless Lens hardening: data that cannot be deleted by accident, trust that names who,
buckets that refuse plain HTTP, and ARNs in whatever partition the account lives in."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from controller.topology import EXAMPLE_SPEC, load
from infra.common import PROJECT_ROOT
from tests.kit.pulumi_mocks import ACCOUNT, CI, ONCALL, SETTINGS, Run, run_program

TABLE = "aws:dynamodb/table:Table"


def trust(role: object) -> dict:
    return json.loads(role.inputs["assumeRolePolicy"])  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def example(runs: dict[str, Run]) -> Run:
    return runs["example"]


def test_every_table_and_replica_is_protected_from_deletion(example: Run) -> None:
    tables = example.of(TABLE)
    assert {t.inputs["name"] for t in tables} >= {example.topology.control_table}
    for table in tables:
        assert table.inputs["deletionProtectionEnabled"] is True, table.name
        replicas = table.inputs["replicas"]
        t = example.topology  # the control table's replicas: its own regions (test_infra_control)
        wanted = (
            len(t.control_regions.replicas) - 1
            if table.inputs["name"] == t.control_table
            else len(t.regions.standby)
        )
        assert len(replicas) == wanted
        assert all(r["deletionProtectionEnabled"] is True for r in replicas), table.name


def test_operator_roles_trust_the_named_principals_and_never_the_root(run: Run) -> None:
    roles = {r.inputs["name"]: r for r in run.of("aws:iam/role:Role")}
    app = run.topology.app
    expected = {f"{app}-failover-controller": ONCALL, f"{app}-failover-deployer": CI}
    for name, principal in expected.items():
        (statement,) = trust(roles[name])["Statement"]
        assert statement["Principal"] == {"AWS": [principal]}
    for role in roles.values():
        assert ":root" not in role.inputs["assumeRolePolicy"], role.name


def test_without_principals_no_operator_role_is_created() -> None:
    settings = dataclasses.replace(
        SETTINGS["example"](), controller_principals=(), deployer_principals=()
    )
    run = run_program(load(EXAMPLE_SPEC), settings)
    names = {r.inputs["name"] for r in run.of("aws:iam/role:Role")}
    assert not {n for n in names if n.endswith(("-failover-controller", "-failover-deployer"))}
    assert not any(":root" in r.inputs["assumeRolePolicy"] for r in run.of("aws:iam/role:Role"))


def test_replication_roles_serve_this_account_only(run: Run) -> None:
    roles = [r for r in run.of("aws:iam/role:Role") if r.inputs["name"].endswith("-replication")]
    assert roles
    for role in roles:
        (statement,) = trust(role)["Statement"]
        assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_every_bucket_refuses_requests_without_tls(run: Run) -> None:
    buckets = {b.id: b for b in run.of("aws:s3/bucket:Bucket")}
    denied = set()
    for policy in run.of("aws:s3/bucketPolicy:BucketPolicy"):
        for st in json.loads(policy.inputs["policy"])["Statement"]:
            if (
                st["Effect"] == "Deny"
                and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                and st["Action"] == "s3:*"
            ):
                bucket = buckets[policy.inputs["bucket"]]
                assert set(st["Resource"]) == {bucket.state["arn"], bucket.state["arn"] + "/*"}
                denied.add(policy.inputs["bucket"])
    assert buckets and denied == set(buckets)


def test_arns_the_program_builds_use_the_accounts_partition() -> None:
    run = run_program(load(EXAMPLE_SPEC), SETTINGS["example"](), partition="aws-cn")
    for region, entry in run.manifest["regions"].items():
        assert entry["components"]["dns"]["arn"].startswith("arn:aws-cn:route53:::"), region
    literal = re.compile(r"""["']arn:aws[:"']""")
    for path in sorted((PROJECT_ROOT / "infra").glob("*.py")):
        assert not literal.search(path.read_text()), f"{path.name} spells the partition"
