"""How one moto server process is started, probed, failed, healed and stopped.

Called by :mod:`controller.sandbox.lifecycle`. Each server is a ``python -m moto.server`` bound to
127.0.0.1 on its own port, in its own session so that it outlives the CLI that started it. A
region fails as a real one does: killed (connections refused at once) or stopped with SIGSTOP
(connections accepted, no answer: calls time out).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from controller.errors import FailoverError
from controller.sandbox.state import ServerState

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
_POLL = 0.05
#: moto's own switch: Lambda invocations answer a stub instead of needing Docker.
MOTO_CONFIG = {"lambda": {"use_docker": False}, "batch": {"use_docker": False}}


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start(name: str, port: int, log_dir: Path) -> ServerState:
    """Start the moto server ``name`` on ``port``; returns at once (see :func:`wait_ready`)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{name}.log"
    env = {**os.environ, "MOTO_PORT": str(port)}
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, close_fds=True,
        )
    log.info("started moto server %s: pid %d, port %d", name, proc.pid, port)
    return ServerState(name=name, pid=proc.pid, port=port, log=str(log_file))


def wait_ready(servers: Iterable[ServerState], timeout: float = READY_TIMEOUT) -> None:
    """Poll every server until it answers, or raise when the deadline passes or one dies.

    Raises
    ------
    FailoverError
        A server exited, or did not answer in ``timeout`` seconds; the message names its log.
    """
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for server in list(pending):
            if not alive(server.pid):
                raise FailoverError(f"moto server {server.name} exited at start; see {server.log}")
            if _answers(server.url):
                configure(server.url)
                pending.remove(server)
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            raise FailoverError(f"moto server(s) {names} did not answer within {timeout:.0f} s")
        if pending:
            time.sleep(_POLL)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/config", timeout=1.0):  # noqa: S310
            return True
    except (urllib.error.URLError, OSError):
        return False


def _post(url: str, path: str, body: bytes = b"", timeout: float = 10.0) -> None:
    request = urllib.request.Request(f"{url}{path}", data=body, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310
        pass


def configure(url: str) -> None:
    """Tell a fresh (or reset) server not to look for Docker when a function is invoked."""
    _post(url, "/moto-api/config", json.dumps(MOTO_CONFIG).encode())


def reset(url: str) -> None:
    """Forget every resource the server holds (moto's reset API), then configure it again."""
    _post(url, "/moto-api/reset")
    configure(url)


def seed(url: str, value: int) -> None:
    """Seed the server's id generator so the next ids it makes are the same on every start."""
    _post(url, f"/moto-api/seed?a={value}")


def alive(pid: int) -> bool:
    """True while ``pid`` runs (or is stopped); reaps it when it is our exited child."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def is_ours(server: ServerState) -> bool:
    """True when ``server.pid`` is still the moto server we started (not a reused pid)."""
    if not alive(server.pid):
        return False
    try:
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    return b"moto.server" in cmdline and str(server.port).encode() in cmdline


def kill(server: ServerState) -> None:
    """SIGKILL the server and wait until it is gone (a region that is down)."""
    if is_ours(server):
        _signal(server.pid, signal.SIGKILL)
        _wait_gone(server)


def hang(server: ServerState) -> None:
    """SIGSTOP the server: it keeps its port, accepts connections and never answers."""
    if not is_ours(server):
        raise FailoverError(f"moto server {server.name} (pid {server.pid}) is not running")
    _signal(server.pid, signal.SIGSTOP)


def resume(server: ServerState) -> None:
    """SIGCONT a stopped server."""
    if is_ours(server):
        _signal(server.pid, signal.SIGCONT)


def stop(server: ServerState) -> None:
    """Stop the server for good: SIGCONT (if stopped), SIGTERM, then SIGKILL after a grace."""
    if not is_ours(server):
        return
    _signal(server.pid, signal.SIGCONT)
    _signal(server.pid, signal.SIGTERM)
    try:
        _wait_gone(server, timeout=3.0)
    except FailoverError:
        _signal(server.pid, signal.SIGKILL)
        _wait_gone(server)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(server: ServerState, timeout: float = STOP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while alive(server.pid):
        if time.monotonic() > deadline:
            raise FailoverError(f"moto server {server.name} (pid {server.pid}) did not stop")
        time.sleep(_POLL)
