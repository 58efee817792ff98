"""The program installs: its pins allow only what the code runs on, and `pulumi install` works.

``Pulumi.yaml`` says ``toolchain: pip``: ``pulumi install`` creates the virtualenv and installs
``requirements.txt`` next to it, which must bring the ``infra`` extra; that extra must pin the
major version of pulumi-aws the code is written for, and carry what the bundler packs into the
functions' zips (it bundles from the installed environment).
"""

from __future__ import annotations

import importlib.metadata as metadata
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from infra.bundle import requirement_names
from infra.common import PROJECT_ROOT

#: The first pulumi-aws with ``aws.dynamodb.TableGlobalTableWitnessArgs`` (the control table's
#: witness region, ``infra/global_.py``): 7.12.0's wheel has neither the class nor the argument.
FIRST_WITH_WITNESS = Version("7.13.0")


def infra_extra() -> dict[str, Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["optional-dependencies"]["infra"]]
    return {canonicalize_name(r.name): r for r in reqs}


def test_pulumi_aws_is_pinned_to_the_major_version_the_code_uses() -> None:
    spec = infra_extra()["pulumi-aws"].specifier
    assert not spec.contains("6.99.0"), "the code uses pulumi-aws 7 names"
    assert spec.contains(str(FIRST_WITH_WITNESS)) and not spec.contains("8.0.0")
    installed = Version(metadata.version("pulumi-aws"))
    assert spec.contains(installed), f"the tests run on {installed}, outside the pin"


def test_pulumi_aws_floor_has_the_control_tables_witness_argument() -> None:
    """A floor below 7.13 lets ``pip`` pick a pulumi-aws that refuses ``global_table_witness``."""
    spec = infra_extra()["pulumi-aws"].specifier
    floors = [Version(s.version) for s in spec if s.operator in (">=", "==", "~=")]
    assert floors and min(floors) >= FIRST_WITH_WITNESS, f"pulumi-aws{spec}"
    import pulumi_aws as aws

    assert hasattr(aws.dynamodb, "TableGlobalTableWitnessArgs"), metadata.version("pulumi-aws")


def test_pulumi_install_installs_the_infra_extra() -> None:
    project = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())
    options = project["runtime"]["options"]
    assert options["toolchain"] == "pip" and options["virtualenv"]
    lines = [
        line.strip()
        for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any(line.replace(" ", "").endswith(".[infra]") for line in lines), lines


def test_what_the_example_functions_import_is_in_the_programs_environment() -> None:
    extra = infra_extra()
    code = PROJECT_ROOT / "examples" / "orders" / "functions"
    for text in requirement_names(code):
        req = Requirement(text)
        pinned = extra.get(canonicalize_name(req.name))
        assert pinned is not None, f"{req.name} is bundled but not in the infra extra"
        assert set(req.extras) <= set(pinned.extras), f"{req.name}: extras {req.extras}"
