"""The watcher bundle runs where its function runs, whatever the deployer's machine.

Lambda runs the watcher on the runtime and architecture its function declares (python3.N,
x86_64 or arm64, Amazon Linux). A bundle that copies the deployer's installed wheels carries
pydantic-core and PyYAML compiled for the deployer's Python, OS and processor: on a macOS, an
arm64 or another Python's deployer, every invocation fails with ``Runtime.ImportModuleError``.
These tests check what pip is asked for, what the built zip's ``*.dist-info/WHEEL`` tags and
compiled files say, that the function declares what the bundle was built for, and that nothing
of the deployer's machine (its paths) rides along.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from controller.topology import EXAMPLE_SPEC, load
from infra.bundle import BundleError, Pip, build
from infra.common import PROJECT_ROOT
from infra.target import Architecture, Target
from infra.watchers import watcher_bundle
from tests.kit.pulumi_mocks import BUNDLES, Run, is_watcher

ARM = Target("python3.12", Architecture.ARM64)
#: The controller's distributions with compiled parts (all the others are pure Python).
COMPILED = ("pydantic_core", "PyYAML")


class PipAsked(Exception):
    """Raised by the recording pip: the test has what it wanted (the arguments)."""


def installed_pins() -> set[str]:
    return {f"{metadata.distribution(n).metadata['Name']}=={metadata.version(n)}" for n in COMPILED}


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def wheel_tags(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    """Each ``*.dist-info`` folder of the zip -> the tags of its ``WHEEL`` file."""
    out = {}
    for name in archive.namelist():
        if name.endswith(".dist-info/WHEEL"):
            text = archive.read(name).decode()
            out[name.split("/")[0]] = [
                line.split(":", 1)[1].strip() for line in text.splitlines() if line[:4] == "Tag:"
            ]
    return out


@pytest.mark.parametrize(
    "target",
    [ARM, Target("python3.13", Architecture.X86_64)],
    ids=lambda t: t.slug,
)
def test_pip_is_asked_for_the_declared_platform_not_the_hosts(
    target: Target, tmp_path: Path
) -> None:
    """Whatever this machine is, pip fetches the target's manylinux wheels, wheels only, of
    exactly the compiled distributions at their installed versions (the pure ones are copied)."""
    asked: list[list[str]] = []

    def pip(args: list[str]) -> None:
        asked.append(args)
        raise PipAsked

    with pytest.raises(PipAsked):
        build(
            tmp_path / "w.zip",
            requirements=["networkx", "pydantic", "PyYAML", "rich"],
            target=target,
            pip=pip,
        )
    (args,) = asked
    assert args[0] == "install" and "--only-binary=:all:" in args and "--no-deps" in args
    assert option(args, "--platform") == f"manylinux2014_{target.machine}"
    assert option(args, "--python-version") == target.python_version
    assert option(args, "--implementation") == "cp"
    assert option(args, "--abi") == f"cp{target.python_version.replace('.', '')}"
    assert Path(option(args, "--target")).parent == tmp_path / "wheels"
    pins = {a for a in args if "==" in a}
    assert pins == installed_pins(), "exactly the compiled ones, at the versions tested here"


def fake_pip(calls: list[list[str]]) -> Pip:
    """A pip that 'installs' each pin as a dist-info with the target's tag and a marker module."""

    def pip(args: list[str]) -> None:
        calls.append(args)
        folder = Path(option(args, "--target"))
        abi, machine = option(args, "--abi"), option(args, "--platform").split("_", 1)[1]
        for pin in (a for a in args if "==" in a):
            name, version = pin.split("==")
            info = folder / f"{name}-{version}.dist-info"
            info.mkdir(parents=True)
            (info / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            )
            (info / "WHEEL").write_text(
                f"Wheel-Version: 1.0\nTag: {abi}-{abi}-manylinux_2_17_{machine}\n"
            )
            (folder / f"{name}_{abi}_{machine}.py").write_text("")
            (info / "RECORD").write_text(
                f"{name}_{abi}_{machine}.py,,\n{info.name}/METADATA,,\n{info.name}/WHEEL,,\n"
            )

    return pip


def test_a_fetch_is_kept_per_runtime_and_architecture(tmp_path: Path) -> None:
    """The fetched wheels are cached by target and versions: the same target is fetched once,
    another architecture or runtime is fetched again, and each zip carries its own target's."""
    calls: list[list[str]] = []
    pip = fake_pip(calls)
    topology = load(EXAMPLE_SPEC)
    first = watcher_bundle(topology, tmp_path, ARM, pip=pip)
    again = watcher_bundle(topology, tmp_path, ARM, pip=pip)
    assert len(calls) == 1 and again.path.read_bytes() == first.path.read_bytes()
    x86 = Target("python3.12", Architecture.X86_64)
    other = watcher_bundle(topology, tmp_path, x86, pip=pip)
    assert len(calls) == 2 and other.path != first.path
    assert ARM.slug in first.path.name and x86.slug in other.path.name
    for bundle, target in ((first, ARM), (other, x86)):
        names = zipfile.ZipFile(bundle.path).namelist()
        assert f"pydantic_core_cp312_{target.machine}.py" in names
        host = [n for n in names if n.endswith(".so")]
        assert not host, f"the deployer's compiled files in a {target.slug} bundle: {host}"
        for dist, tags in wheel_tags(zipfile.ZipFile(bundle.path)).items():
            assert target.runs(tags), f"{dist} ({tags}) does not run on {target.slug}"
        assert set(bundle.fetched) == {metadata.distribution(n).metadata["Name"] for n in COMPILED}


def test_the_arm64_watcher_bundle_carries_wheels_pip_fetched_for_arm64() -> None:
    """The real fetch (from the index this machine reaches): every wheel in the zip runs on
    python3.12/arm64 and every compiled file is an aarch64 CPython 3.12 extension."""
    try:
        bundle = watcher_bundle(load(EXAMPLE_SPEC), BUNDLES / "targets", ARM)
    except BundleError as exc:
        pytest.skip(
            f"no {ARM.slug} wheels can be fetched here ({exc}): the fetched wheels' tags are "
            "not checked; the pip arguments are (test_pip_is_asked_for_the_declared_platform_*)"
        )
    archive = zipfile.ZipFile(bundle.path)
    tags = wheel_tags(archive)
    assert any(d.startswith("pydantic_core-") for d in tags) and tags
    for dist, dist_tags in tags.items():
        assert ARM.runs(dist_tags), f"{dist}: {dist_tags}"
    compiled = [n for n in archive.namelist() if n.endswith(".so")]
    assert compiled and all("cpython-312-aarch64-linux-gnu" in n for n in compiled), compiled


def test_each_watcher_declares_what_its_bundle_is_built_for(run: Run) -> None:
    """The function's runtime and architectures, and the wheels its zip carries, agree: a
    change of one (an arm64 watcher) without the other fails here."""
    watchers = [f for f in run.of("aws:lambda/function:Function") if is_watcher(f.name)]
    assert len(watchers) == len(run.topology.regions.all)
    for function in watchers:
        (architecture,) = function.inputs["architectures"]
        target = Target(function.inputs["runtime"], Architecture(architecture))
        archive = Path(function.inputs["code"].path)
        assert target.slug in archive.name, "the bundle's cache key names its target"
        tags = wheel_tags(zipfile.ZipFile(archive))
        assert any(d.startswith("pydantic_core-") for d in tags)
        for dist, dist_tags in tags.items():
            assert target.runs(dist_tags), f"{dist} ({dist_tags}) in a {target.slug} function"


def test_the_watcher_bundle_holds_no_path_of_the_deployers_machine(tmp_path: Path) -> None:
    """Unzipped, no file names the checkout, the environment, the build folder, the home or
    the temporary folder of the machine that built it (the topology's code folders were)."""
    bundle = watcher_bundle(load(EXAMPLE_SPEC), tmp_path / "bundles")
    everywhere = {str(PROJECT_ROOT), sys.prefix, str(tmp_path)}
    # short ones ("/root", "/tmp") may be a library's own text: looked for in what the build
    # writes (the topology, the controller, the distributions' metadata)
    written = {str(Path.home()), tempfile.gettempdir()}
    archive = zipfile.ZipFile(bundle.path)
    for name in archive.namelist():
        text = archive.read(name).decode("latin-1")
        ours = name == "topology.yaml" or name.startswith("controller/") or ".dist-info/" in name
        for path in everywhere | (written if ours else set()):
            # an absolute path, not the tail of a relative one (pydantic/root_model.py)
            found = re.search(rf"(?<![\w./-]){re.escape(path)}(?![\w.-])", text)
            assert found is None, f"{name} holds {path}: ...{text[found.start() - 40 :][:120]}"
    assert "code:" not in archive.read("topology.yaml").decode()
