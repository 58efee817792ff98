"""Each function ships as a bundle its handler imports from, in an interpreter with nothing else.

The Lambda Python runtime gives a function its bundle and boto3 (with botocore, s3transfer,
jmespath, urllib3, dateutil, six), nothing more: a bare code folder whose modules import
aws-lambda-powertools fails every invocation with ``Runtime.ImportModuleError``. These tests
unzip what the program deploys and import every handler in ``python -I -S`` with only the bundle
and a copy of that runtime on ``sys.path``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import marshal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from controller.topology import Kind
from infra.bundle import RUNTIME_PROVIDED, BundleError, build, closure
from infra.common import PROJECT_ROOT
from tests.kit.pulumi_mocks import Run, is_watcher

CONTROLLER_REQUIREMENTS = ["networkx", "pydantic", "PyYAML", "typer", "rich"]


def lambda_runtime(tmp: Path) -> Path:
    """A folder with what the Lambda Python runtime provides (links to the installed copies)."""
    runtime = tmp / "runtime"
    runtime.mkdir()
    for dist in closure(["boto3"], exclude=frozenset()):
        for entry in dist.files or ():
            top = Path(str(entry)).parts[0]
            if top.startswith("..") or top.endswith((".dist-info", ".pth")):
                continue
            target = runtime / top
            if not target.exists():
                target.symlink_to(Path(str(dist.locate_file(top))))
    return runtime


def import_in_clean_interpreter(
    paths: list[Path], modules: list[str]
) -> subprocess.CompletedProcess[str]:
    """``python -I -S``: no site-packages, no user site, no PYTHON* variables; only ``paths``."""
    script = (
        "import sys; sys.path[:0] = sys.argv[1].split('|'); import importlib\n"
        "for m in sys.argv[2].split(','): importlib.import_module(m)\nprint('ok')"
    )
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": "bundle-test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, "|".join(map(str, paths)), ",".join(modules)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def deployed_archives(run: Run) -> dict[str, Path]:
    """Function name -> the archive the program gives it."""
    return {
        f.inputs["name"]: Path(f.inputs["code"].path)
        for f in run.of("aws:lambda/function:Function")
        if not is_watcher(f.name)
    }


def test_every_function_deploys_a_zip_with_its_handler(run: Run) -> None:
    archives = deployed_archives(run)
    t = run.topology
    for name, spec in t.of_kind(Kind.FUNCTION):
        for region in t.regions.all:
            archive = archives[t.physical_name(name, region)]
            assert archive.suffix == ".zip" and archive.parent == run.settings.bundle_dir
            module = spec.handler.rpartition(".")[0].replace(".", "/") + ".py"
            assert module in zipfile.ZipFile(archive).namelist()


def test_example_handlers_import_from_the_bundle_alone(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    run = runs["example"]
    (archive,) = set(deployed_archives(run).values())  # one code folder, one bundle
    unpacked = tmp_path / "bundle"
    zipfile.ZipFile(archive).extractall(unpacked)
    names = set(zipfile.ZipFile(archive).namelist())
    assert not any(n.startswith(("boto3/", "botocore/")) for n in names), "the runtime has them"
    handlers = sorted(
        {spec.handler.rpartition(".")[0] for _, spec in run.topology.of_kind(Kind.FUNCTION)}
    )
    result = import_in_clean_interpreter([unpacked, lambda_runtime(tmp_path)], handlers)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_the_bare_code_folder_would_not_import(runs: dict[str, Run], tmp_path: Path) -> None:
    """The check can fail: without the bundle's dependencies, the handlers do not import."""
    folder = Path(next(s for _, s in runs["example"].topology.of_kind(Kind.FUNCTION)).code)
    result = import_in_clean_interpreter([folder, lambda_runtime(tmp_path)], ["api"])
    assert result.returncode != 0
    assert "aws_lambda_powertools" in result.stderr


def test_the_controller_bundles_the_same_way(tmp_path: Path) -> None:
    """The watchers' bundle: the controller package and its run-time requirements only."""
    bundle = build(
        tmp_path / "controller.zip",
        packages=[PROJECT_ROOT / "controller"],
        requirements=CONTROLLER_REQUIREMENTS,
    )
    carried = {metadata.distribution(d).metadata["Name"].lower() for d in bundle.distributions}
    assert {"networkx", "pydantic", "pyyaml", "typer", "rich"} <= carried
    assert not carried & {"moto", "matplotlib", "pulumi", "pulumi-aws", *RUNTIME_PROVIDED}
    unpacked = tmp_path / "bundle"
    zipfile.ZipFile(bundle.path).extractall(unpacked)
    result = import_in_clean_interpreter(
        [unpacked, lambda_runtime(tmp_path)],
        [
            "controller.topology",
            "controller.plan.build",
            "controller.engine.executor",
            "controller.watchers.watcher",
        ],
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_bundle_is_reproducible(tmp_path: Path) -> None:
    code = PROJECT_ROOT / "examples" / "orders" / "functions"
    first = build(tmp_path / "a.zip", code=code, requirements=["aws-lambda-powertools"])
    second = build(tmp_path / "b.zip", code=code, requirements=["aws-lambda-powertools"])
    assert first.path.read_bytes() == second.path.read_bytes()


def test_a_requirement_that_is_not_installed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not installed"):
        build(tmp_path / "x.zip", requirements=["surely-not-installed-dist"])


def test_a_bundle_whose_files_have_not_changed_is_not_zipped_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamp beside a zip: same files (names, sizes, times), the zip is not made again (the
    watcher's takes most of a second); a file changed, it is made again, with it."""
    import infra.bundle

    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return 1\n")
    first = build(tmp_path / "out" / "app.zip", code=code)
    zipped: list[object] = []
    real = zipfile.ZipFile

    def counted(*args: object, **kwargs: object) -> zipfile.ZipFile:
        zipped.append(args[0])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(infra.bundle.zipfile, "ZipFile", counted)
    again = build(tmp_path / "out" / "app.zip", code=code)
    assert zipped == [] and again.size == first.size
    (code / "app.py").write_text("def handler(event, context):\n    return 22\n")
    changed = build(tmp_path / "out" / "app.zip", code=code)
    assert len(zipped) == 1
    assert b"return 22" in real(changed.path).read("app.py")
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")] == []


def _app(tmp: Path, text: str) -> Path:
    code = tmp / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(text)
    return code


_HERE = "import sys; sys.path.insert(0, ''); "


def _imported(root: Path, expression: str) -> str:
    """``expression`` evaluated after ``import app`` from ``root``, in an interpreter that
    writes no bytecode (as Lambda's read-only ``/var/task`` makes it)."""
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", f"{_HERE}import app; print({expression})"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_a_bundle_ships_hash_checked_bytecode_that_its_import_uses(tmp_path: Path) -> None:
    """Each module's bytecode is in the zip where ``import`` looks for it, for this Python,
    with no time in it: the import runs it (a pyc carrying other code, with the source's hash,
    is what runs), and checks it against the source (an edited source is what runs then)."""
    bundle = build(tmp_path / "app.zip", code=_app(tmp_path, "X = 1\n"))
    root = tmp_path / "task"
    zipfile.ZipFile(bundle.path).extractall(root)
    pyc = root / importlib.util.cache_from_source("app.py")
    header = pyc.read_bytes()[:16]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert header[4:8] == (0b11).to_bytes(4, "little"), "hash-based and checked (PEP 552)"
    assert header[8:] == importlib.util.source_hash(b"X = 1\n")
    pyc.write_bytes(header + marshal.dumps(compile("X = 2\n", "app.py", "exec")))
    assert _imported(root, "app.X") == "2", "the shipped bytecode is what runs"
    (root / "app.py").write_text("X = 3\n")
    assert _imported(root, "app.X") == "3", "checked against its source"


def test_a_bundle_for_another_python_ships_no_bytecode(tmp_path: Path) -> None:
    """Bytecode is for one Python: a target of another version gets none (its runtime would
    not read it), and a module this Python cannot compile ships as source alone."""
    from infra.target import Target

    other = Target(f"python3.{sys.version_info[1] + 1}")
    code = _app(tmp_path, "X = 1\n")
    (code / "old.py").write_text("print 'python 2'\n")
    theirs = build(tmp_path / "theirs.zip", code=code, target=other)
    assert [n for n in zipfile.ZipFile(theirs.path).namelist() if "__pycache__" in n] == []
    ours = build(tmp_path / "ours.zip", code=code)
    cached = [n for n in zipfile.ZipFile(ours.path).namelist() if "__pycache__" in n]
    assert cached == [importlib.util.cache_from_source("app.py")]


def test_the_bytecode_is_the_same_in_every_process(tmp_path: Path) -> None:
    """Reproducible across processes too: a set's constant is marshalled in its hash order
    unless sorted, and each process salts its string hashes differently."""
    code = _app(tmp_path, "def f(x):\n    return x in {'alpha', 'beta', 'gamma', 'delta'}\n")
    built = []
    for seed in ("1", "2"):
        out = tmp_path / f"{seed}.zip"
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from infra.bundle import build; "
                "build(Path(sys.argv[1]), code=Path(sys.argv[2]))",
                str(out),
                str(code),
            ],
            cwd=PROJECT_ROOT,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            check=True,
        )
        built.append(out.read_bytes())
    assert built[0] == built[1]
    names = zipfile.ZipFile(tmp_path / "1.zip").namelist()
    assert importlib.util.cache_from_source("app.py") in names
