"""The forkserver: a sandbox launched from it is the sandbox a launcher starts, known and stopped
as one; a caller whose moto settings differ from the forkserver's starts its own launcher."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox import down as sandbox_down
from sandbox import forkserver
from sandbox import servers as sandbox_servers
from sandbox import watchers as watcher_procs
from sandbox.state import read_state
from tests.kit.controller_zygote import answering  # the forkserver too listens once built
from tests.kit.emulator import pid_alive
from tests.kit.paths import EXAMPLE
from tests.kit.polling import until

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


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
    state_dir = tmp_path / ".failover"
    try:
        up = cli("sandbox", "up", "--spec", EXAMPLE, "--json")
        assert up.code == 0, up.err
        pids = [s["pid"] for s in json.loads(up.out)["servers"].values()]
        state = read_state(state_dir)
        assert state is not None and set(state.watchers) == set(REGIONS)
        for pid in [*pids, *state.watchers.values()]:  # forks of the forkserver
            assert b"sandbox.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
        logs = state_dir / "logs"
        assert set(pids) <= set(sandbox_servers.find_processes(logs))  # as a lost state file's
        assert set(watcher_procs.find_processes(state_dir)) == set(state.watchers.values())
        assert all(watcher_procs.is_ours(pid, r) for r, pid in state.watchers.items())
        assert not watcher_procs.is_ours(state.watchers[REGIONS[0]], REGIONS[1])
        until(  # each one plays its schedule: its function evaluates
            lambda: len(watcher_procs.decisions(state_dir, REGIONS)) >= len(REGIONS),
            60,
            "every watcher forked by the forkserver evaluates",
        )
        assert cli("sandbox", "fail", "eu-west-1", "--mode", "down").code == 0
        assert cli("sandbox", "heal", "eu-west-1").code == 0  # from the zygote, known by its log
        shown = json.loads(cli("sandbox", "show", "--json").out)
        assert all(s["alive"] for s in shown["servers"].values())
        pids = [s["pid"] for s in shown["servers"].values()]
        assert cli("sandbox", "down").code == 0
        assert not any(pid_alive(pid) for pid in [*pids, *state.watchers.values()])
        assert sandbox_servers.find_processes(logs) == []
        assert watcher_procs.find_processes(state_dir) == []
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


def forked_into(folder: Path) -> list[int]:
    """This user's forks of a forkserver that have taken ``folder`` as their working folder."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if forkserver.MODULE.encode() in (entry / "cmdline").read_bytes().split(b"\0") and (
                Path(os.readlink(entry / "cwd")) == folder
            ):
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return found


def test_a_watcher_is_answered_only_once_its_output_is_its_log(ready: str, tmp_path: Path) -> None:
    # The log is a FIFO: the fork's open of it waits for a reader, so the fork is held right
    # before its output becomes the log. A pid answered then could not be known as a watcher's.
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / watcher_procs.SCHEDULE_LOG.format(region=REGIONS[0])
    os.mkfifo(log)
    request = {
        "argv": [REGIONS[0], "--state-dir", str(tmp_path)],  # no sandbox there: it ends at once
        "env": dict(os.environ),
        "cwd": str(tmp_path),
        "output": str(log),
    }
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(ready)
        conn.sendall(json.dumps(request).encode() + b"\n")
        try:
            forks = until(lambda: forked_into(tmp_path), 30, "the forkserver forks the watcher")
            with pytest.raises(BlockingIOError):  # no answer while its output is not the log
                conn.recv(1, socket.MSG_DONTWAIT)
            with open(log, "rb") as output:  # now its open of the log goes on
                conn.settimeout(30)
                answer = json.loads(conn.makefile("rb").readline())
                assert answer == {"pid": forks[0]}
                assert output.read() == b""  # it found no sandbox and ended without a word
        finally:
            for pid in forked_into(tmp_path):  # a fork still held by its log
                os.kill(pid, signal.SIGKILL)
