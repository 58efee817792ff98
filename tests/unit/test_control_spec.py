"""The topology's ``control`` section: the control table's regions, in one MRSC region set."""

from __future__ import annotations

import pytest

from controller.errors import SpecError
from controller.topology import load, loads
from controller.topology.regions import MRSC_SETS
from tests.kit.paths import EXAMPLE

BASE = """
app: shop
regions: {primary: %s, standby: [%s]}
components: {t: {kind: table}}
"""


def test_the_example_gets_two_replicas_in_its_regions_and_a_witness() -> None:
    control = load(EXAMPLE).control_regions
    assert control.replicas == ("us-east-1", "us-west-2") and control.witness == "us-east-2"


@pytest.mark.parametrize(
    ("primary", "standby", "replicas", "witness"),
    [
        ("eu-west-1", "eu-central-1, eu-west-2", ("eu-west-1", "eu-central-1", "eu-west-2"), None),
        ("ap-northeast-1", "us-east-1", ("ap-northeast-1", "ap-northeast-2"), "ap-northeast-3"),
        ("sa-east-1", "us-west-2", ("us-west-2", "us-east-1"), "us-east-2"),
    ],
)
def test_the_default_fits_the_applications_regions(
    primary: str, standby: str, replicas: tuple[str, ...], witness: str | None
) -> None:
    control = loads(BASE % (primary, standby)).control_regions
    assert (control.replicas, control.witness) == (replicas, witness)


@pytest.mark.parametrize(
    "section",
    [
        "{replicas: [us-east-1, us-east-2, us-west-2]}",
        "{replicas: [eu-west-3, eu-central-1], witness: eu-west-1}",
        "{replicas: [ap-northeast-2, ap-northeast-3], witness: ap-northeast-1}",
    ],
)
def test_an_explicit_section_in_one_set_is_taken_as_written(section: str) -> None:
    topology = loads(BASE % ("us-east-1", "us-west-2") + f"control: {section}\n")
    assert topology.control_regions == topology.control


def test_every_region_set_is_refused_when_mixed() -> None:
    names = list(MRSC_SETS)
    for a in names:
        for b in names:
            if a != b:
                mixed = (
                    f"{{replicas: [{MRSC_SETS[a][0]}, {MRSC_SETS[b][0]}], "
                    f"witness: {MRSC_SETS[a][1]}}}"
                )
                with pytest.raises(SpecError, match="allowed region sets: US"):
                    loads(BASE % ("us-east-1", "us-west-2") + f"control: {mixed}\n")
