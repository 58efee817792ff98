"""The registry of kinds: each kind's model declares its tier, action and deployer, every name
resolves, and the event bus (the kind added last) lives in three source files only: the sandbox
deploys it by running the program, with no code of its own."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

from controller import topology as spec
from controller.actions.base import Action
from controller.actions.registry import action_class
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from controller.topology import KINDS, Kind, declared, resolve
from controller.topology.kinds import BusSpec
from tests.kit.paths import EXAMPLE, REPO

SOURCES = ("controller", "sandbox", "infra")


def test_every_kind_has_a_model_and_every_model_a_kind() -> None:
    assert set(KINDS) == set(Kind)
    for kind, model in KINDS.items():
        assert model.model_fields["kind"].annotation.__args__ == (kind.value,)


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_an_action_of_its_own_kind(kind: Kind) -> None:
    cls = action_class(kind)
    assert issubclass(cls, Action) and not inspect.isabstract(cls)
    assert cls.kind == kind.value


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_a_deployer_or_says_where_it_is_global(kind: Kind) -> None:
    decl = declared(kind)
    if decl.deployer is None:
        assert decl.global_part, f"{kind}: no regional part and no global part named"
        return
    fn = resolve(decl.deployer, "infra")
    assert callable(fn)
    params = list(inspect.signature(fn).parameters)
    assert len(params) == 3, (decl.deployer, params)  # (region, name, spec)


def test_a_kind_declares_no_sandbox_code() -> None:
    """The sandbox has no provisioner slot: what a kind deploys, it deploys by the program."""
    assert "provisioner" not in {f.name for f in dataclasses.fields(spec.Declared)}
    for kind in Kind:
        decl = declared(kind)
        named = [p for p in (decl.action, decl.deployer, decl.global_part) if p]
        assert not any(p.startswith("sandbox") for p in named), (kind, named)


def test_a_bad_name_in_the_registry_fails_loudly() -> None:
    with pytest.raises(AttributeError):
        resolve("bus:NoSuchAction", "controller.actions")


def _files_naming(pattern: re.Pattern[str]) -> set[str]:
    found = set()
    for package in SOURCES:
        for path in (REPO / package).rglob("*.py"):
            if pattern.search(path.read_text(encoding="utf-8")):
                found.add(str(path.relative_to(REPO)))
    return found


def test_the_bus_kind_lives_in_three_source_files() -> None:
    """The kind added last is named in its model's file and the two its registry entry names
    (its action, its deployer), and nowhere else: the sandbox deploys it with no code of its own."""
    decl = declared(Kind.BUS)
    named = {
        f"{package}/{path.partition(':')[0]}.py"
        for path, package in ((decl.action, "controller/actions"), (decl.deployer, "infra"))
        if path
    }
    assert len(named) == 2
    naming = _files_naming(re.compile(r"BusSpec|Kind\.BUS|BusAction|provision_bus|\"bus\""))
    assert naming == {"controller/topology/kinds.py", *named}, naming


def test_bus_rules_are_named_within_the_limit() -> None:
    name = BusSpec.rule_name("x" * 60, "placed")
    assert len(name) == 64 and name == BusSpec.rule_name("x" * 60, "placed")
    assert BusSpec.rule_name("x" * 60, "other") != name


def test_bus_targets_are_dependencies_and_must_be_queues() -> None:
    t = spec.loads("""
        app: shop
        regions: {primary: us-east-1, standby: [us-west-2]}
        components:
          jobs: {kind: queue}
          fn: {kind: function, depends_on: [events]}
          events:
            kind: bus
            rules:
              a: {pattern: {source: [shop]}, target: jobs}
              b: {pattern: {detail-type: [X]}, target: jobs}
    """)
    bus = t.components["events"]
    assert bus.all_dependencies() == ("jobs",) and bus.resolved_tier == spec.Tier.EVENTS
    g = graphs.build(t)
    assert g.has_edge("events", "jobs") and g.has_edge("fn", "events")


def test_example_plan_moves_the_bus_between_its_queue_and_the_api() -> None:
    t = spec.load(EXAMPLE)
    plan = build_plan(t, graphs.build(t), target="us-west-2")
    bus = plan.step("activate:order-events@us-west-2")
    assert "activate:shipping-queue@us-west-2" in bus.needs
    assert "activate:order-events@us-west-2" in plan.step("activate:api-handler@us-west-2").needs
    fence = plan.step("fence:order-events@us-east-1")
    assert "fence:api-handler@us-east-1" in fence.needs
