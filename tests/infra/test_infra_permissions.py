"""Each function's role allows every AWS call its code makes, and no action its code never makes.

The calls are read from the example's source (``code_calls.py``: each boto3 method, named as
IAM names it through botocore's model), not listed by hand, so a new call in the code without
its permission fails here instead of with AccessDenied in production (the worker's nightly
``Scan`` did). The other way round, every action a role allows on an application resource is
one the code calls; only what Lambda itself does with the role (logs, X-Ray, polling the event
sources, sending failed batches to the on-failure queue) and the mode parameters every function
reads are allowed besides. The program grants what each handler declares (``AWS_CALLS``,
``infra/calls.py``): these tests are what keeps the declaration true to the code.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_infra_security import function_policy

from controller.topology import EXAMPLE_SPEC, Kind, load
from tests.kit.code_calls import CodeCalls, service_of
from tests.kit.pulumi_mocks import SETTINGS, Run, run_program

#: where each service's calls land: the kind of dependency, and the resource form in the policy
TARGETS = {
    "dynamodb": ("table", "{arn}"),
    "sqs": ("queue", "{arn}"),
    "s3": ("bucket", "{arn}/*"),
    "kinesis": ("stream", "{arn}"),
}
LAMBDA_ITSELF = {"logs", "xray"}


def example_functions(run: Run) -> list[tuple[str, str]]:
    return [
        (name, region)
        for name, _ in run.topology.of_kind(Kind.FUNCTION)
        for region in run.topology.regions.all
    ]


@pytest.fixture(scope="module")
def example(runs: dict[str, Run]) -> Run:
    return runs["example"]


def called(run: Run, name: str) -> set[str]:
    spec = run.topology.components[name]
    return CodeCalls(Path(spec.code)).handler_actions(spec.handler)


def test_the_reader_finds_the_calls_the_example_makes(example: Run) -> None:
    """The reader is what the next test trusts: it must see these calls (and no others)."""
    assert called(example, "worker") == {"dynamodb:PutItem", "dynamodb:Scan", "ssm:GetParameter"}
    assert called(example, "projector") == {"s3:PutObject"}
    assert called(example, "api-handler") == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "sqs:SendMessage",
        "ssm:GetParameter",
        "events:PutEvents",
    }


def test_every_call_is_allowed_on_its_resource(example: Run) -> None:
    t = example.topology
    for name, region in example_functions(example):
        policy = function_policy(example, name, region)
        components = example.manifest["regions"][region]["components"]
        spec = t.components[name]
        for act in sorted(called(example, name)):
            assert act in policy, f"{name} in {region} calls {act} and may not"
            service = service_of(act)
            if service not in TARGETS:
                continue
            kind, form = TARGETS[service]
            deps = [d for d in spec.depends_on if t.components[d].kind == kind]
            assert deps, f"{name} calls {act} but depends on no {kind}"
            for dep in deps:
                resource = form.format(arn=components[dep]["arn"])
                assert resource in policy[act], f"{name} in {region}: {act} on {dep}"


def uncalled(run: Run, name: str, region: str) -> dict[str, list[str]]:
    """The actions ``name``'s role allows in ``region`` that its code never calls, with the
    application resources they are allowed on (the platform's needs left out)."""
    components = run.manifest["regions"][region]["components"]
    spec = run.topology.components[name]
    mode_prefix = f":parameter/failover/{run.topology.prefix}/{region}/mode"
    polled = set()
    for event in spec.events:
        entry = components[event.source]
        polled |= {entry["arn"], entry.get("stream_arn"), entry["arn"] + "/stream/*"}
    code = called(run, name)
    out = {}
    for act, resources in function_policy(run, name, region).items():
        if service_of(act) in LAMBDA_ITSELF:
            continue
        # Lambda polls the sources and sends failed batches with this role; every function
        # reads its own mode parameters (the platform's contract, not the code's)
        application = [
            r
            for r in resources
            if r not in polled and not r.endswith("-failures") and mode_prefix not in r
        ]
        if application and act not in code:
            out[act] = application
    return out


def test_no_action_the_code_never_calls(example: Run) -> None:
    for name, region in example_functions(example):
        extra = uncalled(example, name, region)
        assert not extra, f"{name} in {region} may {sorted(extra)} and never does"


def test_the_mode_parameters_are_only_read(example: Run) -> None:
    """The platform's own need, kept to the one call the code's ``Modes`` makes."""
    for name, region in example_functions(example):
        mode_prefix = f":parameter/failover/{example.topology.prefix}/{region}/mode"
        on_modes = {
            act
            for act, resources in function_policy(example, name, region).items()
            if any(mode_prefix in r for r in resources)
        }
        assert on_modes == {"ssm:GetParameter"}, (name, region, on_modes)


@pytest.fixture(scope="module")
def undeclared(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The example deployed from a copy whose handlers declare no ``AWS_CALLS``."""
    root = tmp_path_factory.mktemp("undeclared")
    shutil.copy(EXAMPLE_SPEC, root / "topology.yaml")
    shutil.copytree(EXAMPLE_SPEC.parent / "functions", root / "functions")
    for module in (root / "functions").glob("*.py"):
        text = module.read_text(encoding="utf-8")
        module.write_text(
            re.sub(r"^AWS_CALLS = \(.*?\)\n", "", text, flags=re.S | re.M), encoding="utf-8"
        )
    return run_program(load(root / "topology.yaml"), SETTINGS["example"]())


def test_without_a_declaration_a_role_gets_more_than_the_code_calls(undeclared: Run) -> None:
    """What the roles allowed before the declarations: the check above refuses it."""
    assert {
        name: sorted(uncalled(undeclared, name, "us-east-1"))
        for name, _ in example_functions(undeclared)
    } == {
        "projector": ["s3:GetObject", "s3:ListBucket"],
        "worker": [
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "ssm:GetParameters",
        ],
        "api-handler": [
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:DescribeTable",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:UpdateItem",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "ssm:GetParameters",
        ],
    }
