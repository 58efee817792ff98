"""The sandbox's Route 53 checkers: one per checker region, spread over the check's interval."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sandbox.route53 import CHECKER_REGIONS, Checkers


def check(**config: Any) -> SimpleNamespace:
    defaults = {"id": "hc-1", "request_interval": 10, "failure_threshold": 3, "regions": None}
    return SimpleNamespace(**(defaults | config))


def scheduler(*checks: SimpleNamespace) -> tuple[Checkers, list[tuple[str, str]]]:
    """Checkers over ``checks`` whose probes only record who probed."""
    probed: list[tuple[str, str]] = []
    made = Checkers(lambda: list(checks))
    made._probe = lambda c, region: probed.append((c.id, region))  # type: ignore[method-assign]
    return made, probed


def test_a_checks_checkers_first_probe_spread_over_its_interval_then_each_every_interval() -> None:
    """Route 53's checkers do not coordinate: eight of them on a 10 s check probe about every
    1.25 s between them, each one every 10 s; not all eight at once."""
    made, _ = scheduler(check())
    assert made.tick(0.0) == [("hc-1", CHECKER_REGIONS[0])]
    spread = [made.tick(i * 1.25) for i in range(1, 8)]
    assert spread == [[("hc-1", region)] for region in CHECKER_REGIONS[1:]]
    assert made.tick(9.9) == []
    assert made.tick(10.0) == [("hc-1", CHECKER_REGIONS[0])]


def test_a_check_that_names_its_regions_is_probed_from_those_only() -> None:
    made, _ = scheduler(check(regions=["us-west-2", "eu-west-1", "ap-northeast-1"], id="hc-2"))
    started = [key for t in (0.0, 3.4, 6.7, 10.0) for key in made.tick(t)]
    assert started == [
        ("hc-2", "us-west-2"),
        ("hc-2", "eu-west-1"),
        ("hc-2", "ap-northeast-1"),
        ("hc-2", "us-west-2"),
    ]


def test_one_checker_failing_leaves_the_others_findings_alone() -> None:
    made, _ = scheduler(check())
    regions = list(CHECKER_REGIONS)
    found = made.status("hc-1", regions)
    for t in (1.0, 2.0, 3.0):
        found[regions[0]].observe(False, "Failure: timeout", 3, t)
    again = made.status("hc-1", regions)
    assert again[regions[0]].healthy is False
    assert all(again[r].healthy for r in regions[1:])
