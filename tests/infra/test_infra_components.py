"""The components take Pulumi's ``(name, args, opts)`` shape, and ``opts`` means what Pulumi says.

A caller's ``protect`` reaches the component and every child (Pulumi's SDK gives a child its
parent's ``protect`` unless the child sets its own); a provider in ``opts.providers`` is the one
every child is created with; an ``Alias`` on a renamed component leaves its children's URNs as
they were (they are named from ``args``, never from the component's name, and the engine gets
the alias to move the component itself). The same holds for the whole program: ``deploy``'s
``opts`` reach every resource, its ``providers`` replace the program's own for their region.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from controller.topology import EXAMPLE_SPEC, load
from infra.common import Ref, Settings
from infra.function import FunctionArgs, RegionalFunction
from tests.kit.pulumi_mocks import (
    SETTINGS,
    RecordingMocks,
    Registration,
    Run,
    run_program,
    run_resources,
    without_source_positions,
)

FUNCTION = "failover:infra:Function"
REGION = "us-west-2"
TABLE = "arn:aws:dynamodb:us-west-2:123456789012:table/orders"


def projector(name: str, opts: pulumi.ResourceOptions | None = None) -> RegionalFunction:
    """The example's projector in one region, built alone (as a user of the component would)."""
    topology = load(EXAMPLE_SPEC)
    mode = Ref(
        kind="parameter",
        name="/failover/orders/us-west-2/mode",
        arn="arn:aws:ssm:us-west-2:123456789012:parameter/failover/orders/us-west-2/mode",
    )
    refs = {
        "receipts-bucket": Ref(kind="bucket", name="receipts", arn="arn:aws:s3:::receipts"),
        "orders-table": Ref(
            kind="table", name="orders", arn=TABLE, stream_arn=f"{TABLE}/stream/2026"
        ),
    }
    args = FunctionArgs(
        topology=topology,
        name="projector",
        spec=topology.components["projector"],  # type: ignore[arg-type]
        region=REGION,
        refs=refs,
        mode_parameter=mode,
        component_mode_parameter=mode,
        settings=Settings(),
    )
    return RegionalFunction(name, args, opts)


def split(regs: list[Registration]) -> tuple[Registration, list[Registration]]:
    """The function component and the resources under it."""
    component = next(r for r in regs if r.typ == FUNCTION)
    children = [r for r in regs if r.parent == component.urn]
    assert len(children) >= 8, [c.typ for c in children]  # role, policy, logs, function, ...
    return component, children


def test_protect_on_a_component_reaches_it_and_every_child() -> None:
    component, children = split(
        run_resources(lambda: projector("projector", pulumi.ResourceOptions(protect=True)))
    )
    assert component.protect
    assert [c.name for c in children if not c.protect] == []
    _, plain = split(run_resources(lambda: projector("projector")))
    assert [c.name for c in plain if c.protect] == [], "protected without being asked"


def test_a_provider_in_opts_providers_is_used_by_every_child() -> None:
    def build() -> None:
        ops = aws.Provider("ops-us-west-2", region=REGION)
        projector("projector", pulumi.ResourceOptions(providers={"aws": ops}))

    _, children = split(run_resources(build))
    assert {c.provider_name for c in children if c.custom} == {"ops-us-west-2"}


def test_an_alias_keeps_the_childrens_urns_when_the_component_is_renamed() -> None:
    before, old = split(run_resources(lambda: projector("projector")))
    after, new = split(
        run_resources(
            lambda: projector(
                "orders-projector", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="projector")])
            )
        )
    )
    assert before.urn != after.urn  # the component was renamed ...
    assert any("name=projector " in a for a in after.aliases), after.aliases  # ... with its alias
    assert sorted(c.urn for c in new) == sorted(c.urn for c in old)


@pytest.fixture(scope="module")
def guarded() -> Run:
    """The example deployed with ``protect`` and the caller's own provider for one region."""

    def extra() -> dict[str, Any]:
        return {
            "opts": pulumi.ResourceOptions(protect=True),
            "providers": {REGION: aws.Provider(f"ops-{REGION}", region=REGION)},
        }

    return run_program(load(EXAMPLE_SPEC), SETTINGS["example"](), deploy_kwargs=extra)


def not_a_provider(regs: list[Registration]) -> list[Registration]:
    return [r for r in regs if not r.typ.startswith("pulumi:providers:")]


def test_protect_given_to_the_program_reaches_every_resource(
    guarded: Run, runs: dict[str, Run]
) -> None:
    regs = not_a_provider(guarded.registrations)
    assert len(regs) > 100
    assert [r.name for r in regs if not r.protect] == []
    assert [r.name for r in not_a_provider(runs["example"].registrations) if r.protect] == []


def test_a_regions_provider_given_to_the_program_is_used_for_all_of_that_region(
    guarded: Run, runs: dict[str, Run]
) -> None:
    providers = {r.name for r in guarded.registrations if r.typ.startswith("pulumi:providers:")}
    assert f"aws-{REGION}" not in providers and f"ops-{REGION}" in providers
    by_name = {(r.typ, r.name): r for r in guarded.registrations}
    there = [r for r in guarded.resources if r.region == REGION]
    assert len(there) == len([r for r in runs["example"].resources if r.region == REGION])
    assert {by_name[r.typ, r.name].provider_name for r in there} == {f"ops-{REGION}"}


def test_every_resource_is_a_child_of_a_component(run: Run) -> None:
    """Children are parented, so they inherit what the caller gives a component."""
    orphans = [
        r.name
        for r in run.registrations
        if r.custom
        and not r.typ.startswith("pulumi:providers:")
        # a region's alarm topic and its key: top level
        and r.typ not in ("aws:sns/topic:Topic", "aws:kms/key:Key")
        and "failover:infra:" not in r.parent
    ]
    assert orphans == []


def test_a_mocked_run_registers_its_resources_without_the_stack_that_declared_them() -> None:
    """The SDK step ``without_source_positions`` skips still exists (an SDK that renamed it
    would cost every mocked run a fifth more CPU again, silently), and what reaches the engine
    carries no stack and no source position."""
    assert without_source_positions()
    mocks = RecordingMocks()
    mocks.install()

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        aws.sqs.Queue("orders-queue")
        return pulumi.Output.from_input(None)

    program()
    assert "orders-queue" in [r.name for r in mocks.registrations]
    assert mocks.positioned == []
