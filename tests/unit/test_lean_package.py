"""The control plane stands on its own: what it installs, what its verbs import, what it says
when an extra is missing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {
    "moto",
    "matplotlib",
    "pulumi",
    "pulumi-aws",
    "pulumi_aws",
    "aws-lambda-powertools",
    "cfn-lint",
    "sympy",
    "flask",
    "werkzeug",
}
BOTO = {"boto3", "botocore"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(names: set[str]) -> set[str]:
    """Every distribution the installed ``names`` need, transitively (no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo.extend(_name(r) for r in requires if "extra ==" not in r)
    return seen


def test_base_install_carries_no_emulator_plotting_or_pulumi() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(r) for r in project["dependencies"]}
    assert base == {"botocore", "networkx", "pydantic", "pyyaml", "typer", "rich"}
    assert not _closure(base) & HEAVY
    extras = project["optional-dependencies"]
    assert {"moto", "matplotlib"} <= {_name(r) for r in extras["sandbox"]}
    assert {"pulumi", "pulumi-aws"} <= {_name(r) for r in extras["infra"]}


def _python(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """This interpreter run with ``argv`` in ``cwd``, its output captured as text."""
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        timeout=120,
    )


def _probe(*lines: str) -> list[str]:
    """The words a fresh interpreter prints after running ``lines`` (with ``sys`` imported)."""
    code = "\n".join(("import sys", *lines))
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_the_control_plane_makes_its_clients_without_boto3() -> None:
    """boto3 is the sandbox's (the example functions use it); the controller's clients are
    botocore's, and importing boto3 would cost every CLI call about 0.1 s."""
    assert _probe(
        "from controller.aws import Clients",
        "from controller import health",
        "from controller.controltable import journal",
        "from controller.engine import executor",
        "from controller.watchers import watcher",
        "clients = Clients(endpoints={'us-east-1': 'http://127.0.0.1:1'})",
        "client = clients.client('sqs', 'us-east-1')",
        "print(client.meta.region_name, 'boto3' in sys.modules, 'botocore' in sys.modules)",
    ) == ["us-east-1", "False", "True"]


def test_reading_status_and_runs_does_not_import_networkx() -> None:
    """networkx orders a plan; ``status``, ``runs`` and the status page only read one back
    (:mod:`controller.plan.steps`), and importing networkx costs each of them about 0.13 s."""
    assert _probe(
        "import controller.interfaces.views, controller.controltable.journal, controller.health",
        "import controller.interfaces.cli.status_cmds, controller.interfaces.cli.execute_cmds",
        "import controller.interfaces.cli.watch_cmds",
        "print('networkx' in sys.modules, 'controller.plan.build' in sys.modules)",
    ) == ["False", "False"]


#: One calm evaluation of the deployed watcher (every region answers, the primary is active and
#: healthy, every other region fenced, no region owed a full read), its AWS reads answered in
#: memory: the real handler module, :class:`~controller.watchers.watcher.Watcher` and
#: reconciler, no network.
CALM_EVALUATION = textwrap.dedent("""
    import json, sys
    from controller.watchers import lambda_entry
    print('networkx' in sys.modules, 'controller.plan.build' in sys.modules)

    from controller import health
    from controller.aws import Clients
    from controller.controltable.automation import state_of
    from controller.controltable.desired import Desired
    from controller.controltable.glance import Glance
    from controller.controltable.journal import Journal
    from controller.controltable.watchstate import WatchState
    from controller.health.model import Health, RegionStatus, StatusReport
    from controller.topology import load
    from controller.watchers.isolation import Isolation
    from tests.kit.manifests import fake_manifest
    from tests.kit.paths import EXAMPLE
    from tests.kit.watcher import Context, Memory

    topology = load(EXAMPLE)
    primary = topology.regions.primary
    manifest = fake_manifest(topology)
    modes = {r: 'active' if r == primary else 'fenced' for r in topology.regions.all}
    report = StatusReport(topology.app, primary, {
        r: RegionStatus(r, True, Health.HEALTHY, mode) for r, mode in modes.items()
    })
    health.status = lambda *args, **kwargs: report
    Journal.glance = lambda self, default: Glance(Desired(default, 1), None, state_of(None), None)
    Isolation.answered = lambda self: None  # its SSM parameter: nothing to forget here
    lambda_entry.WatchStates = Memory(WatchState(primary, evaluations=1, unsettled=()))
    lines = []
    clients = Clients(endpoints=manifest.endpoints)
    summary = lambda_entry.watch(
        primary,
        Context(60.0),
        deployment=lambda_entry.Deployment(topology, manifest, clients),
        sleep=lambda seconds: sys.exit('not calm: it would evaluate again'),
        emit=lines.append,
    )
    print(summary['evaluations'], summary['role'], json.loads(lines[0])['action'])
    print('networkx' in sys.modules, 'controller.plan.build' in sys.modules)
""")


def test_a_watchers_cold_start_and_calm_evaluation_import_no_networkx() -> None:
    """A watcher's execution environment imports its handler module at every cold start, and
    most evaluations are calm: nothing to plan, no fix to order. networkx (about 0.13 s of CPU
    per process, its package imports all its algorithms) waits for a plan or a fix."""
    proc = _python("-c", CALM_EVALUATION)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["False", "False", "1", "calm", "none", "False", "False"]


def _imports(*argv: str) -> set[str]:
    """Top-level packages the CLI imports to run ``argv``."""
    return {module.split(".")[0] for module in _modules(*argv)}


@pytest.mark.parametrize("argv", [("--help",), ("plan", "--to", "us-west-2")])
def test_help_and_plan_import_no_aws_sdk_emulator_or_pulumi(argv: tuple[str, ...]) -> None:
    loaded = _imports(*argv)
    assert "controller" in loaded  # the probe itself works
    assert not loaded & {
        "boto3",
        "botocore",
        "moto",
        "matplotlib",
        "pulumi",
        "pulumi_aws",
        "sandbox",
        "infra",
    }


def test_status_imports_botocore_and_no_emulator_pulumi_networkx_or_boto3(
    tmp_path: Path,
) -> None:
    """``failover status`` is what an operator types first: it needs botocore, not what the
    sandbox, the Pulumi program or the plan bring (each would cost every status 0.1 s or more
    of imports, bench/status.py)."""
    from controller.topology import load
    from tests.kit.manifests import fake_manifest, write_manifest
    from tests.kit.paths import EXAMPLE

    path = write_manifest(tmp_path, fake_manifest(load(EXAMPLE)))
    loaded = _modules("status", "--json", "--timeout", "0.5", "--manifest", str(path))
    assert "botocore" in {m.split(".")[0] for m in loaded}  # the probe itself works
    assert not {m.split(".")[0] for m in loaded} & {
        "boto3",
        "moto",
        "matplotlib",
        "networkx",
        "pulumi",
        "pulumi_aws",
        "sandbox",
        "infra",
    }
    assert "controller.plan.build" not in loaded


def test_help_builds_no_verb() -> None:
    """``--help`` lists the verbs from their docstrings; typer's adapters are not loaded."""
    assert "typer._adapters" not in _modules("--help")


def test_failing_healing_and_stopping_a_sandbox_imports_no_aws_sdk(tmp_path: Path) -> None:
    """``sandbox fail``, ``heal`` and ``down`` signal the sandbox's processes and call no AWS
    API; botocore's import was a fifth of their CPU (0.33 -> 0.27 s for ``fail``). Only the
    verbs that call AWS (``up``, a reset, a watcher's own process) import it."""
    assert _probe(
        "import sandbox.lifecycle, sandbox.watchers, sandbox.account",
        "print('botocore' in sys.modules, 'controller.aws' in sys.modules)",
    ) == ["False", "False"]
    loaded = _modules("sandbox", "down", cwd=tmp_path)  # no sandbox here: nothing to stop
    assert "sandbox.lifecycle" in loaded  # the probe itself works
    assert not {m.split(".")[0] for m in loaded} & {"botocore", "boto3", "moto", "pulumi"}


def _modules(*argv: str, cwd: Path = ROOT) -> set[str]:
    """Every module the CLI imports to run ``argv`` in ``cwd`` (``python -X importtime``)."""
    proc = _python(
        "-X",
        "importtime",
        "-c",
        "from controller.interfaces.cli import main; main()",
        *argv,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }


BLOCKER = textwrap.dedent("""
    import sys
    from importlib.abc import MetaPathFinder

    class Missing(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"moto", "matplotlib", "sandbox"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    from controller.interfaces.cli import main
    main()
""")


@pytest.mark.parametrize("argv", [("sandbox", "up"), ("demo",), ("drill",)])
def test_sandbox_verbs_without_the_extra_say_what_to_install(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    proc = _python("-c", BLOCKER, *argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "pip install 'failover[sandbox]'" in lines[0]
    assert not (tmp_path / ".failover").exists()  # nothing was started or written


def test_plan_works_without_the_extras(tmp_path: Path) -> None:
    proc = _python("-c", BLOCKER, "plan", "--to", "us-west-2", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["to"] == "us-west-2"


def test_without_the_repository_the_default_topology_is_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed from a wheel, the example is not there: one line says what to pass."""
    from controller import topology as spec
    from controller.errors import SpecError

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAILOVER_SPEC", raising=False)
    from controller.topology import loading

    monkeypatch.setattr(loading, "EXAMPLE_SPEC", tmp_path / "nowhere" / "topology.yaml")
    with pytest.raises(SpecError, match="no topology: pass --spec FILE"):
        spec.default_spec_path()
    (tmp_path / "topology.yaml").write_text("app: x\n")
    assert spec.default_spec_path() == Path("topology.yaml")
