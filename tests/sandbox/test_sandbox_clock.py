"""A sandbox starts its processes on its own clock, whichever clock the process asking is on.

A process may hold two sandboxes (the test session holds one on the real clock and one at
k = ``SCALED_K``), and only one of them can be its own clock. A server restarted or a watcher
started on the caller's clock would count AWS seconds at another pace than the servers beside
it: its alarms' periods, its invocations' timeouts and its lease's expiry would disagree.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller import clock
from sandbox import Sandbox, forkserver, servers
from sandbox.state import Condition
from tests.sandbox.conftest import SCALED_K

pytestmark = pytest.mark.sandbox

REGION = "eu-west-1"


class Captured:
    """Wraps a forkserver call, keeping the environment each child is given."""

    def __init__(self, original: Any) -> None:
        self.original = original
        self.environments: list[dict[str, str]] = []

    def __call__(self, argv: list[str], env: dict[str, str], *args: Any) -> Any:
        self.environments.append(dict(env))
        return self.original(argv, env, *args)


@pytest.fixture
def elsewhere(scaled_sandbox: Sandbox) -> Sandbox:
    """The scaled sandbox, asked by this process on the real clock (``same_clock`` puts back the
    clock it found after the test)."""
    clock.use(clock.Clock())
    return scaled_sandbox


def test_a_watcher_started_from_a_process_on_another_clock_runs_on_the_sandboxs(
    elsewhere: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = elsewhere
    spawned = Captured(forkserver.spawn_watcher)
    monkeypatch.setattr(forkserver, "spawn_watcher", spawned)
    try:
        box.start_watchers([REGION])
    finally:
        box.stop_watchers()
    (env,) = spawned.environments
    assert clock.from_environment(env) == box.own_clock
    assert clock.from_environment(env).scale == SCALED_K


def test_a_server_started_again_from_a_process_on_another_clock_runs_on_the_sandboxs(
    elsewhere: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The region is killed and its launcher's zygote does not answer: the sandbox starts a
    new launcher for it, the path where the caller's clock was given."""
    box = elsewhere
    launched = Captured(forkserver.launch)
    monkeypatch.setattr(forkserver, "launch", launched)
    monkeypatch.setattr(servers, "respawn", lambda zygote, server: None)
    box.fail(REGION, "down")
    box.reset()
    (env,) = launched.environments
    assert clock.from_environment(env) == box.own_clock
    assert box.state.servers[REGION].condition is Condition.RUNNING
