"""Fixtures for tests that need the emulator: one sandbox per session, reset per test.

``sandbox`` starts the example topology on free loopback ports in a temporary state directory
and always stops every process it started, also when a test or the start fails.
``fresh_sandbox`` is the same object, reset to the state ``up`` leaves (every region running and
provisioned again, the primary active) before the test. ``scaled_sandbox`` and
``fresh_scaled_sandbox`` are the same on a scaled clock (k = ``SCALED_K``), started by the first
test that asks. ``forked_controllers``, asked for by the modules that run the controller as a
process, keeps one imported for them to fork.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import clock
from sandbox import Sandbox, forkserver
from tests.kit import controller_zygote
from tests.kit.emulator import stopped
from tests.kit.paths import REPO

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orders" / "topology.yaml"

#: Dummy credentials for plain boto3 clients in tests; the emulator accepts anything.
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # The shared sandbox runs no replicator, so no replication lag is ever measured there:
    # the tests that fail over accept that (test_replication_lag.py unsets it to check both).
    "FAILOVER_ACCEPT_UNKNOWN_LAG": "1",
}
#: The scaled sandbox's clock: AWS seconds per wall second. A timeout of 4 AWS s (a verb's read
#: of a hung region) is a wall second there.
SCALED_K = 4.0
UNSET_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@pytest.fixture(scope="session")
def sandbox_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Dummy AWS credentials and no profile or endpoint override, for the whole session; and
    a forkserver (:mod:`sandbox.forkserver`) that every sandbox the session starts, in this
    process or in a command it runs, takes its launcher from (about 1.1 s of CPU saved on each
    sandbox after the first)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_ENV.items():
            patch.setenv(name, value)
        for name in UNSET_ENV:
            patch.delenv(name, raising=False)
        server = forkserver.start(tmp_path_factory.mktemp("forkserver"))
        patch.setenv(forkserver.ENV, server.socket)
        try:
            yield
        finally:
            forkserver.stop(server)


@pytest.fixture(scope="session")
def forked_controllers(
    sandbox_env: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[controller_zygote.Zygote]:
    """A controller zygote (:mod:`tests.kit.controller_zygote`) for the session: every
    ``failover`` process :func:`tests.kit.emulator.controller` starts is forked from it, about a
    second of CPU saved on each; started with the session's environment, the one they run in."""
    with pytest.MonkeyPatch.context() as patch:
        zygote = controller_zygote.start(tmp_path_factory.mktemp("zygote"), REPO)
        patch.setenv(controller_zygote.ENV, zygote.socket)
        try:
            yield zygote
        finally:
            controller_zygote.stop(zygote)


@pytest.fixture(scope="session")
def sandbox(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The example topology running on the emulator, for the whole session."""
    state_dir = tmp_path_factory.mktemp("sandbox") / ".failover"
    box = Sandbox.up(EXAMPLE, state_dir)
    try:
        yield box
    finally:  # whatever happens, no process outlives the session
        stopped(box)


@pytest.fixture
def fresh_sandbox(sandbox: Sandbox) -> Sandbox:
    """The session's sandbox, reset: every region running and provisioned as after ``up``."""
    sandbox.reset()
    return sandbox


@pytest.fixture(scope="session")
def scaled_sandbox(
    sandbox_env: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """The example topology on the emulator at k = ``SCALED_K``, for the whole session: a
    sandbox's clock is set when it starts, so the scaled one is a sandbox of its own."""
    found = clock.current()
    try:
        box = Sandbox.up(
            EXAMPLE, tmp_path_factory.mktemp("scaled") / ".failover", time_scale=SCALED_K
        )
    finally:
        # ``up`` put this process on the sandbox's clock, and a session fixture is set up
        # before ``same_clock`` reads the clock to put back: only the tests that ask are on it
        clock.use(found)
    try:
        yield box
    finally:
        stopped(box)


@pytest.fixture
def fresh_scaled_sandbox(scaled_sandbox: Sandbox) -> Sandbox:
    """The scaled sandbox, reset, and this process on its clock for the test (the CLI, the
    executor and their clients count AWS seconds as the sandbox's own processes do;
    ``same_clock`` puts the process back after it)."""
    scaled_sandbox.use_clock()
    scaled_sandbox.reset()
    return scaled_sandbox
