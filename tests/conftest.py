"""Shared test helpers: run the CLI in-process and capture what it prints; the test tiers.

Every test under ``tests/sandbox/``, and any other that asks for an emulator fixture, is marked
``sandbox`` here, so ``make unit`` (``pytest -m "not sandbox"``) runs exactly what needs no
emulator. Under pytest-xdist (``make test``: ``--dist loadgroup``) a module's tests run on one
worker, where they share its module fixtures and its emulator, except tests marked
``independent``, which may go to any worker; the slowest modules are collected first, so that
the longest does not start last, and the last of four workers or more is a lane that takes the
modules that mostly wait first (:mod:`tests.kit.lanes`).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller import clock
from controller.interfaces.cli import main
from sandbox import moto_patches, owner
from tests.kit import lanes
from tests.kit.cli import CliResult
from tests.kit.paths import REPO, cache_sharing

#: Every sandbox this process starts, itself or through a command it runs, ends with it, even
#: when the run is killed and no fixture stops it (each xdist worker names itself).
os.environ[owner.ENV] = str(os.getpid())
#: One botocore data loader per search path in the test process too, as in the emulator's servers
#: and the Lambda runtime: each boto3 session, moto's in-process mock and its backends otherwise
#: parse botocore's JSON models again (in tests/unit/test_orders_functions.py, 1,585 parses:
#: 6.9 s of its 17 s).
moto_patches.share_data_loader()

#: The collector's thresholds in a test process (CPython's default: 700, 10, 10). What a test
#: leaves behind (Pulumi runs under mocks, emulator clients, journals) grows the heap that each
#: full collection walks: with the defaults the workers spent 45 s of their 262 s of CPU in the
#: collector in a `make test` (2026-12-07), 36 s of it in full collections. With these, the
#: tests that need no emulator took 95 s of CPU instead of 108 (2 runs each, one process), and
#: 80 MB more memory at their peak. Cycles are still collected, in larger batches.
TEST_GC_THRESHOLDS = (50_000, 20, 100)

TESTS = REPO / "tests"
SANDBOX_TESTS = TESTS / "sandbox"
#: The Pulumi program's tests, and their session fixtures (tests/infra/conftest.py): the program
#: run once per topology, on the worker where the modules that ask for them run.
INFRA_TESTS = TESTS / "infra"
SHARED_RUNS = frozenset({"run", "runs"})
#: Fixtures that start the emulator (or set its environment for a test that starts one).
EMULATOR_FIXTURES = frozenset({"sandbox", "fresh_sandbox", "sandbox_env"})
#: Module fixtures of the longest tests: a demo, a crash at every step (runbook pages: marked).
SLOW_FIXTURES = frozenset({"story", "uninterrupted"})
#: Collected first, longest first (module or group), so that no long module starts last and runs
#: alone at the end: each group's wall seconds in a `make test` run on two cores (2026-12-06),
#: every group of 20 s or more, and last the two infra modules that left the ``infra`` group
#: (their seconds were part of its 67). xdist keeps this order only without its own reordering
#: by test count (:func:`pytest_configure`).
HEAVY_FIRST = (
    "sandbox/test_runbooks.py",  # 143 s, one page a unit
    "sandbox/test_watchers.py",  # 130
    "sandbox/test_benches.py",  # 100, one bench a unit
    "sandbox/test_crash.py",  # 96
    "sandbox/test_lost_answers.py",  # 91
    "sandbox/test_demo.py",  # 75
    "infra",  # 67 with the last two
    "sandbox/test_mrsc.py",  # 63
    "sandbox/test_watcher.py",  # 54
    "sandbox/test_executor.py",  # 48
    "sandbox/test_watcher_timeout.py",  # 44
    "sandbox/test_desired.py",  # 44
    "sandbox/test_route53.py",  # 40
    "sandbox/test_target_lost.py",  # 30
    "sandbox/test_watcher_chain.py",  # 27
    "sandbox/test_bad_input.py",  # 25
    "sandbox/test_reconcile.py",  # 22
    "sandbox/test_stack_cache.py",  # 21
    "sandbox/test_lambda.py",  # 21
    "sandbox/test_deployed.py",  # 20
    "infra/test_infra_policy_sizes.py",  # 18, its own fifty-function program
    "infra/test_infra_manifest_write.py",  # 11, its own programs
)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    """Mark what needs the emulator ``sandbox`` and the longest ``slow``; heavy modules first.

    A wrapper, so the marks are there before every other plugin's hook runs: before ``-m``
    deselects by marker, and before pytest-xdist's worker reads ``xdist_group`` to keep a
    module on one worker. (With ``tryfirst`` xdist's worker hook ran first and saw no group:
    every module was spread over both workers, and each worker set up its module fixtures
    again, so every runbook page, the demo and the crash baseline ran twice.)
    """
    asks = {item: set(getattr(item, "fixturenames", ())) for item in items}
    shared = {
        item.path for item in items if INFRA_TESTS in item.path.parents and asks[item] & SHARED_RUNS
    }
    for item in items:
        fixtures = asks[item]
        if SANDBOX_TESTS in item.path.parents or fixtures & EMULATOR_FIXTURES:
            item.add_marker(pytest.mark.sandbox)
        if fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if not item.get_closest_marker("independent"):
            item.add_marker(pytest.mark.xdist_group(group(item, shared)))

    def rank(item: pytest.Item) -> int:
        name = group(item, shared)
        return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)

    items.sort(key=rank)  # stable: every other test keeps its order
    return (yield)


def group(item: pytest.Item, shared: Collection[Path] = ()) -> str:
    """The xdist group of ``item``: ``infra`` when its module is one of ``shared`` (the Pulumi
    program's tests that use the session's program runs), else its module's path under
    ``tests/`` (or the checkout, for a doctest): a unit and a sandbox module of one name are
    two groups, which any worker may take.

    >>> from types import SimpleNamespace
    >>> group(SimpleNamespace(path=REPO / "tests" / "sandbox" / "test_demo.py"))
    'sandbox/test_demo.py'
    >>> group(SimpleNamespace(path=INFRA_TESTS / "test_x.py"), {INFRA_TESTS / "test_x.py"})
    'infra'
    """
    if item.path in shared:
        return "infra"
    try:
        return item.path.relative_to(TESTS if TESTS in item.path.parents else REPO).as_posix()
    except ValueError:  # outside the checkout
        return item.path.name


class GroupCheck:
    """Under ``--dist loadgroup``, stop at once if the workers' tests came back ungrouped.

    xdist's worker marks a grouped test by suffixing its node id with ``@group``. When a pytest
    release changes how node ids are stored (pytest-dev/pytest-xdist#1386) that silently does
    nothing, and the suite runs each module's fixtures on every worker: twice the time.
    """

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if ungrouped(ids):
            pytest.exit(
                f"pytest-xdist's --dist loadgroup ignored every xdist_group on worker "
                f"{node.gateway.id}: this pytest and pytest-xdist disagree on node ids; "
                "install the versions pyproject.toml pins",
                returncode=3,
            )


def ungrouped(ids: list[str]) -> bool:
    """True when a worker's collected ``ids`` show that the xdist groups did not take.

    Tests marked independent carry no group, and they live in three modules: a selection
    spanning more modules than that holds grouped tests, and one of them must show its
    ``@group`` suffix (after any parameter, which may itself hold an ``@``).
    """
    modules = {i.split("::", 1)[0] for i in ids}
    return len(modules) > 3 and not any("@" in i.rsplit("]", 1)[-1] for i in ids)


def pytest_configure(config: pytest.Config) -> None:
    """Check the xdist groups take and keep HEAVY_FIRST's order, when the suite runs on workers
    by group; in a process that collects, collect with the cyclic garbage collector paused (see
    the next hook)."""
    distributing = getattr(config.option, "dist", "no") != "no"
    if distributing and not hasattr(config, "workerinput"):
        if config.option.dist == "loadgroup":
            config.pluginmanager.register(GroupCheck(), "failover-group-check")
            config.pluginmanager.register(lanes.Lanes(), "failover-lanes")
            # xdist sends the groups with the most tests first unless told not to: the unit
            # modules' hundreds of quick tests went first and the runbook pages and the crash
            # tests (a few long tests each) last, whatever HEAVY_FIRST said.
            config.option.loadscopereorder = False
        return  # pytest-xdist's controller collects nothing: its collector stays on
    gc.disable()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Collection imported what the tests use (moto, pulumi-aws, the controller), which lives as
    long as the process: it is frozen out of every later collection, and the collector resumes
    for the tests (collection 4.7 s to 3.7 s, and a few percent of the tests' own CPU), less
    often than by default (:data:`TEST_GC_THRESHOLDS`)."""
    gc.freeze()
    gc.set_threshold(*TEST_GC_THRESHOLDS)
    gc.enable()


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A test worker ends here, once it has reported its last test and its session fixtures have
    stopped every process they started. What remained was pytest's full collection of the heap
    its tests left (for unraisable exceptions, which a worker reports to no one by then) and the
    interpreter's teardown: about 4 s at the end of a ``make test`` run, where the controller
    waits for its last worker, and as much CPU again in each worker that ended before, beside
    the others' tests. The other plugins' ``pytest_unconfigure`` in a worker only release what
    the process's end releases. The controller already has the worker's results (xdist's
    ``workerfinished``), so it does not take this end for a crash."""
    if hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@pytest.fixture(scope="session")
def shared_stacks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's deployed stacks (:mod:`sandbox.deploy.cache`), shared by the xdist workers as
    by one user's commands. A stack is kept the second time it is deployed: each worker
    deployed the example only about twice (a runbook page, its sandbox fixture), so every page
    and bench ran the Pulumi program again (about 6 s of CPU each)."""
    base = tmp_path_factory.getbasetemp()
    stacks = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "stacks"
    stacks.mkdir(mode=0o700, exist_ok=True)
    return stacks


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, shared_stacks: Path) -> Iterator[Path]:
    """The controller's cache in the session's folder, not the home: every CLI process a test
    starts inherits it."""
    folder = cache_sharing(tmp_path_factory.mktemp("cache"), shared_stacks)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAILOVER_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def same_clock() -> Iterator[None]:
    """Each test leaves the process on the clock it found (the real one, or its module's
    sandbox's): a CLI run in-process or a sandbox attached moves it to a sandbox's scaled clock,
    which the next test on the worker must not inherit."""
    found = clock.current()
    yield
    clock.use(found)


@pytest.fixture
def dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials and region for moto's in-process mock, which takes any."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``failover ARGS...`` in-process; returns its exit code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
