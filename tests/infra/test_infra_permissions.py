"""Each function's role allows every AWS call its code makes, on the resources it makes them on.

The calls are read from the example's source (``code_calls.py``), not listed by hand, so a new
call in the code without its permission fails here instead of with AccessDenied in production
(the worker's nightly ``Scan`` did). The other way round, a role grants no AWS service the code
never calls, besides what Lambda itself does with the role (logs, X-Ray, polling the event
sources, sending failed batches to the on-failure queue) and the mode parameters every function
may read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from code_calls import CodeCalls, service_of
from infra_mocks import Run
from test_infra_security import function_policy

from controller.spec import Kind

#: where each service's calls land: the kind of dependency, and the resource form in the policy
TARGETS = {"dynamodb": ("table", "{arn}"), "sqs": ("queue", "{arn}"),
           "s3": ("bucket", "{arn}/*"), "kinesis": ("stream", "{arn}")}
LAMBDA_ITSELF = {"logs", "xray"}


def example_functions(run: Run) -> list[tuple[str, str]]:
    return [(name, region) for name, _ in run.topology.of_kind(Kind.FUNCTION)
            for region in run.topology.regions.all]


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
    assert called(example, "api-handler") == {"dynamodb:GetItem", "dynamodb:PutItem",
                                              "sqs:SendMessage", "ssm:GetParameter",
                                              "events:PutEvents"}


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


def test_no_service_the_code_never_calls(example: Run) -> None:
    for name, region in example_functions(example):
        components = example.manifest["regions"][region]["components"]
        spec = example.topology.components[name]
        mode_prefix = f":parameter/failover/{example.topology.app}/{region}/mode"
        polled = set()
        for event in spec.events:
            entry = components[event.source]
            polled |= {entry["arn"], entry.get("stream_arn"), entry["arn"] + "/stream/*"}
        services = set()
        for act, resources in function_policy(example, name, region).items():
            if all(r in polled or r.endswith("-failures") or mode_prefix in r
                   for r in resources):
                continue  # Lambda polls the sources and sends failed batches with this role;
                # every function may read its own mode parameters (the platform's contract)
            services.add(service_of(act))
        extra = services - LAMBDA_ITSELF - {service_of(a) for a in called(example, name)}
        assert not extra, f"{name} in {region} may use {sorted(extra)} and never does"
