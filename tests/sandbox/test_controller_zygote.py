"""The controller zygote: a controller forked from it ends, prints and dies as one started as a
process does, in its caller's environment and folder; the zygote ends with its owner, and its
children with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.topology import load
from sandbox.forkserver import Forkserver as Zygote
from sandbox.owner import ENV as OWNER_ENV
from tests.kit import controller_zygote
from tests.kit.controller_zygote import Forked, spawn
from tests.kit.emulator import pid_alive
from tests.kit.manifests import fake_manifest, write_manifest
from tests.kit.paths import EXAMPLE, REPO
from tests.kit.polling import until

#: Wall seconds a zygote may take to preload on a loaded machine.
READY = 60


def ready(zygote: Zygote) -> Zygote:
    """``zygote``, once it answers."""
    until(lambda: controller_zygote.answering(zygote.socket), READY, "the zygote answers")
    return zygote


@pytest.fixture
def zygote(forked_controllers: Zygote) -> Zygote:
    """The session's zygote, once it answers."""
    return ready(forked_controllers)


def started(entry: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m ENTRY ARGS`` started as a process, as the tests started it before."""
    return subprocess.run(
        [sys.executable, "-m", entry, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def forked(zygote: Zygote, entry: str, args: list[str], **env: str) -> Forked:
    """``python -m ENTRY ARGS`` forked from ``zygote``, in this process's environment and
    ``env``."""
    proc = spawn(entry, args, {**os.environ, **env}, REPO, zygote.socket)
    assert proc is not None, "the zygote refused"
    return proc


def parent(pid: int) -> int:
    """The parent of the process ``pid``."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize(
    ("entry", "args"),
    [
        ("controller", ["plan", "--to", "us-west-2", "--spec", "/nonexistent/topology.yaml"]),
        ("controller", ["execute", "--no-such-option"]),
        ("sandbox.faults", ["--kill-after-steps", "x", "--", "status"]),
    ],
    ids=["missing-spec", "bad-option", "bad-fault"],
)
def test_a_forked_controller_ends_and_prints_as_a_started_one_for_the_same_bad_input(
    zygote: Zygote, entry: str, args: list[str]
) -> None:
    proc = forked(zygote, entry, args)
    assert parent(proc.pid) == zygote.process.pid  # a child of the zygote, not of this process
    out, err = proc.communicate(timeout=120)
    expected = started(entry, args)
    assert (proc.returncode, out, err) == (expected.returncode, expected.stdout, expected.stderr)
    assert proc.returncode == 2


@pytest.mark.parametrize(
    "kill",
    [lambda proc: os.kill(proc.pid, signal.SIGKILL), Forked.kill],
    ids=["sigkill", "handle"],
)
def test_a_forked_controller_killed_mid_run_reads_as_sigkilled_and_leaves_nothing(
    zygote: Zygote, tmp_path: Path, kill: Callable[[Forked], None]
) -> None:
    manifest = write_manifest(tmp_path, fake_manifest(load(EXAMPLE)))
    proc = forked(zygote, "controller", ["serve", "--port", "0", "--manifest", str(manifest)])
    line = proc.stdout.readline()  # it runs, and what it prints reaches this process
    assert line.startswith(b"status page: http://127.0.0.1:"), line
    assert proc.poll() is None
    kill(proc)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not pid_alive(proc.pid)
    assert len(list(Path(f"/proc/{zygote.process.pid}/task").iterdir())) == 1  # one thread


def test_a_forked_controller_runs_in_its_callers_environment_and_folder(
    zygote: Zygote, tmp_path: Path
) -> None:
    named = tmp_path / "named-by-the-caller.yaml"
    proc = forked(zygote, "controller", ["validate"], FAILOVER_SPEC=str(named))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and f"{named}: file does not exist" in err, err
    (tmp_path / "topology.yaml").write_text("regions: [\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "FAILOVER_SPEC"}
    local = spawn("controller", ["validate"], env, tmp_path, zygote.socket)  # ./topology.yaml
    assert local is not None
    _, err = local.communicate(timeout=60)
    assert local.returncode == 2 and "topology.yaml:2: not valid YAML" in err, err


def test_a_caller_with_other_interpreter_settings_or_entry_is_refused(zygote: Zygote) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # read by an interpreter only as it starts
    assert spawn("controller", ["--help"], env, REPO, zygote.socket) is None
    assert spawn("sandbox.forkserver", ["-"], os.environ, REPO, zygote.socket) is None
    assert forked(zygote, "controller", ["--help"]).wait(timeout=60) == 0  # it still serves


@pytest.fixture
def owned_zygote(tmp_path: Path) -> Iterator[tuple[Zygote, subprocess.Popen[bytes]]]:
    """A zygote of its own whose owner is a process this test ends, started with a topology
    of its own named in its environment; stopped whatever happens."""
    owner = subprocess.Popen(["sleep", "600"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(OWNER_ENV, str(owner.pid))
        patch.setenv("FAILOVER_SPEC", str(tmp_path / "the-zygotes-own.yaml"))
        zygote = controller_zygote.start(tmp_path / "zygote", REPO)
    try:
        yield ready(zygote), owner
    finally:
        owner.kill()
        owner.wait()
        controller_zygote.stop(zygote)


def test_a_zygote_forks_in_its_callers_environment_not_its_own_and_ends_with_its_owner(
    owned_zygote: tuple[Zygote, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    zygote, owner = owned_zygote
    env = {k: v for k, v in os.environ.items() if k != "FAILOVER_SPEC"}
    proc = spawn("controller", ["validate"], env, REPO, zygote.socket)
    assert proc is not None
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # the example: the zygote's topology is not the caller's
    manifest = write_manifest(tmp_path, fake_manifest(load(EXAMPLE)))
    serve = ["serve", "--port", "0", "--manifest", str(manifest)]
    proc = spawn("controller", serve, env, REPO, zygote.socket)
    assert proc is not None
    assert proc.stdout.readline().startswith(b"status page:")  # runs on
    owner.kill()
    owner.wait()
    assert zygote.process.wait(timeout=READY) == 0  # it noticed, and ended
    assert proc.wait(timeout=READY) == -signal.SIGKILL  # its child with it
    assert not pid_alive(proc.pid)
