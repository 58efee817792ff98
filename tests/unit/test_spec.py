"""The topology model: defaults, kind-specific fields, the default file chain, naming."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import topology as spec
from controller.errors import SpecError
from tests.kit.paths import EXAMPLE


def test_example_has_three_regions_and_at_least_ten_components() -> None:
    t = spec.load(EXAMPLE)
    assert t.regions.all == ("us-east-1", "us-west-2", "eu-west-1")
    assert len(t.components) >= 10
    kinds = {c.kind for c in t.components.values()}
    assert {"function", "queue", "table", "bucket", "schedule", "parameter", "api", "dns"} <= kinds


def test_tier_defaults_from_kind_and_can_be_overridden() -> None:
    t = spec.loads("""
app: a
regions: {primary: us-east-1, standby: [eu-west-1]}
components:
  t: {kind: table}
  q: {kind: queue, tier: data}
  f: {kind: function}
""")
    assert t.components["t"].resolved_tier == spec.Tier.DATA
    assert t.components["q"].resolved_tier == spec.Tier.DATA
    assert t.components["f"].resolved_tier == spec.Tier.COMPUTE


def test_event_sources_and_targets_are_dependencies() -> None:
    t = spec.load(EXAMPLE)
    assert "orders-queue" in t.components["worker"].all_dependencies()
    assert t.components["nightly-report"].all_dependencies() == ("worker",)
    assert "api-handler" in t.components["api"].all_dependencies()


def test_region_names_come_from_botocore() -> None:
    from controller.topology.regions import known_regions

    regions = known_regions()
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= regions
    assert "us-east-9" not in regions


def test_default_spec_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAILOVER_SPEC", raising=False)
    assert spec.default_spec_path() == spec.EXAMPLE_SPEC
    (tmp_path / "topology.yaml").write_text("x: 1")
    assert spec.default_spec_path() == Path("topology.yaml")
    monkeypatch.setenv("FAILOVER_SPEC", "/elsewhere.yaml")
    assert spec.default_spec_path() == Path("/elsewhere.yaml")


def test_error_names_component_field_and_line() -> None:
    with pytest.raises(SpecError) as info:
        spec.loads(
            "app: a\nregions: {primary: us-east-1, standby: [eu-west-1]}\n"
            "components:\n  f: {kind: function, timeout: 0}\n",
            source="t.yaml",
        )
    err = info.value
    assert (err.source, err.component, err.field, err.line) == ("t.yaml", "f", "timeout", 4)
    assert str(err).startswith("t.yaml:4: components.f.timeout: ")


def test_physical_names_are_per_region() -> None:
    t = spec.load(EXAMPLE)
    names = {t.physical_name("worker", r) for r in t.regions.all}
    assert len(names) == 3
    assert t.mode_parameter("us-west-2") == "/failover/orders/us-west-2/mode"
