"""The RTO bench's comparison of two scales (``bench/detect.py``): the same outage against itself.

Importing the bench imports the sandbox's demo, which starts nothing until it is called."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from tests.kit import benches


@pytest.fixture(scope="module")
def detect() -> ModuleType:
    return benches.load("detect")


def outage(detect: ModuleType, seconds: float) -> dict[str, float]:
    return {name: seconds for name in detect.GOALS}


def test_each_outage_is_compared_with_the_same_outage_at_the_other_scale(
    detect: ModuleType,
) -> None:
    # three phases; at k = 10 the last outage was seen an interval late (a link came early)
    here = {"down": [outage(detect, s) for s in (30.0, 26.0, 32.0)]}
    there = {"down": [outage(detect, s) for s in (29.0, 25.0, 22.0)]}
    got = detect.paired(here, there)
    # pairs 29/30, 25/26, 22/32: the median pair is 25/26 (0.96), the medians' ratio 25/30 (0.83)
    assert got["down"]["detect"] == pytest.approx(25.0 / 26.0)
    assert got["all"]["detect"] == pytest.approx(25.0 / 26.0)


def test_an_outage_where_a_figure_did_not_happen_is_left_out_of_its_pairs(
    detect: ModuleType,
) -> None:
    missing = outage(detect, 20.0) | {"dns_step": math.nan}
    here = {"hang": [outage(detect, 10.0), missing], "down": [outage(detect, 10.0)]}
    there = {"hang": [outage(detect, 12.0), outage(detect, 30.0)], "down": [outage(detect, 8.0)]}
    got = detect.paired(here, there)
    assert got["hang"]["dns_step"] == pytest.approx(1.2)
    assert got["hang"]["detect"] == pytest.approx((1.2 + 1.5) / 2)
    assert got["all"]["dns_step"] == pytest.approx((1.2 + 0.8) / 2)
