"""The forkserver: a sandbox launched from it is the sandbox a launcher starts, known and stopped
as one; a caller whose moto settings differ from the forkserver's starts its own launcher."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox import down as sandbox_down
from sandbox import forkserver
from sandbox import servers as sandbox_servers
from tests.kit.emulator import pid_alive
from tests.kit.paths import EXAMPLE
from tests.kit.polling import until


def answering(path: str) -> bool:
    """Whether the forkserver at ``path`` takes connections (it has built moto)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(path)
        except OSError:
            return False
    return True


@pytest.fixture
def ready(sandbox_env: None) -> str:
    """The session's forkserver, once it answers."""
    path = os.environ[forkserver.ENV]
    until(lambda: answering(path), 60, "the session's forkserver answers")
    return path


def test_a_sandbox_launched_by_the_forkserver_is_found_by_its_logs_and_stopped_whole(
    ready: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Any]
) -> None:
    monkeypatch.chdir(tmp_path)  # the sandbox's paths are relative: the launcher takes the folder
    try:
        up = cli("sandbox", "up", "--no-watchers", "--spec", EXAMPLE, "--json")
        assert up.code == 0, up.err
        pids = [s["pid"] for s in json.loads(up.out)["servers"].values()]
        for pid in pids:  # forks of the forkserver, not of a launcher of their own
            assert b"sandbox.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
        logs = tmp_path / ".failover" / "logs"
        assert set(pids) <= set(sandbox_servers.find_processes(logs))  # as a lost state file's
        assert cli("sandbox", "fail", "eu-west-1", "--mode", "down").code == 0
        assert cli("sandbox", "heal", "eu-west-1").code == 0  # from the zygote, known by its log
        shown = json.loads(cli("sandbox", "show", "--json").out)
        assert all(s["alive"] for s in shown["servers"].values())
        pids = [s["pid"] for s in shown["servers"].values()]
        assert cli("sandbox", "down").code == 0
        assert not any(pid_alive(pid) for pid in pids)
        assert sandbox_servers.find_processes(logs) == []
    finally:
        sandbox_down(tmp_path / ".failover")


def test_a_caller_with_other_moto_settings_is_refused_and_starts_its_own_launcher(
    ready: str,
) -> None:
    env = {**os.environ, "MOTO_ACM_VALIDATION_WAIT": "0"}
    assert forkserver.launch(["-"], env, 30) is not None  # the settings it was built with
    assert forkserver.launch(["-"], {**env, "MOTO_ACM_VALIDATION_WAIT": "60"}, 30) is None
    assert (
        forkserver.launch(["-"], {k: v for k, v in env.items() if k != forkserver.ENV}, 30) is None
    )
