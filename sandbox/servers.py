"""How one moto server process is started, probed, failed, healed and stopped.

Called by :mod:`sandbox.lifecycle`. Each server is a moto server process bound to
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
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlencode

from controller import clock
from controller.errors import FailoverError, UsageError
from sandbox import controls, forkserver, launcher
from sandbox.liveness import alive, is_zombie, output_of
from sandbox.state import ServerState, Zygote, private_dir

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
LAUNCH_TIMEOUT = 60.0
ZYGOTE = "zygote"  # the name under which the launcher reports its zygote
ZYGOTE_LOG = launcher.ZYGOTE_LOG
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux
STOP_TIMEOUT = 10.0
_POLL = 0.05
#: moto's own switch: Lambda invocations answer a stub instead of needing Docker.
MOTO_CONFIG = {"lambda": {"use_docker": False}, "batch": {"use_docker": False}}


#: The secret each server's controls need, by its URL (see :func:`trust`).
_SECRETS: dict[str, str] = {}


def trust(urls: Iterable[str], secret: str) -> None:
    """Remember that the servers at ``urls`` take ``secret`` on their controls (reset, seed,
    config, round trip): the sandbox's state says so, and every call here sends it."""
    for url in urls:
        _SECRETS[url] = secret


def start_all(
    ports: Mapping[str, int],
    log_dir: Path,
    socket_path: Path | None = None,
    secret: str = "",
    *,
    on: clock.Clock,
) -> tuple[dict[str, ServerState], Zygote | None]:
    """Start a moto server per ``name: port`` (0: a free port the launcher picks and keeps), on
    clock ``on`` (its sandbox's); returns at once (see :func:`wait_ready`).

    One launcher imports moto once and forks the servers (:mod:`sandbox.launcher`);
    each is a process of its own, in its own session, that outlives the caller. With
    ``socket_path``, a zygote that can fork more (:func:`respawn`) is left listening there.

    Raises
    ------
    FailoverError
        The launcher failed; the message carries its error output.
    """
    private_dir(log_dir)
    logs = {name: (log_dir / f"{name}.log").resolve() for name in ports}
    if socket_path is not None:
        socket_path = socket_path.resolve()
        socket_path.unlink(missing_ok=True)
        if len(str(socket_path)) > MAX_SOCKET_PATH:
            socket_path = None
    args = [
        str(socket_path or "-"),
        *(f"{name}={port}={logs[name]}" for name, port in ports.items()),
    ]
    # not argv: /proc/PID/cmdline is public; the servers' loops run on the sandbox's clock
    env = {**os.environ, **on.environment(), controls.SECRET_ENV: secret}
    # ACM issues a DNS-validated certificate once it finds the record; the emulator looks for
    # no record, and the deployment checks it instead (sandbox.deploy.mapping)
    env["MOTO_ACM_VALIDATION_WAIT"] = "0"
    try:
        done = forkserver.launch(args, env, LAUNCH_TIMEOUT) or subprocess.run(
            [sys.executable, "-m", "sandbox.launcher", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LAUNCH_TIMEOUT,
            start_new_session=True,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise FailoverError(
            f"the moto launcher did not start within {LAUNCH_TIMEOUT:.0f} s"
        ) from exc
    answers = {
        name: (int(pid), int(port))
        for name, pid, port in (line.split() for line in done.stdout.splitlines() if line.strip())
    }
    pids = {name: pid for name, (pid, _) in answers.items()}
    zygote_pid = pids.pop(ZYGOTE, None)
    if done.returncode != 0 or set(pids) != set(ports):
        for pid in (*pids.values(), *([zygote_pid] if zygote_pid else [])):
            _signal(pid, signal.SIGKILL)
        raise FailoverError(f"the moto launcher failed: {done.stderr.strip()[-2000:]}")
    started = {
        name: ServerState(name=name, pid=pids[name], port=answers[name][1], log=str(logs[name]))
        for name in ports
    }
    trust((server.url for server in started.values()), secret)
    for server in started.values():
        log.info("started moto server %s: pid %d, port %d", server.name, server.pid, server.port)
    zygote = (
        Zygote(pid=zygote_pid, socket=str(socket_path), log=str(log_dir.resolve() / ZYGOTE_LOG))
        if zygote_pid and socket_path
        else None
    )
    return started, zygote


def respawn(zygote: Zygote | None, server: ServerState) -> int | None:
    """Fork a new server for ``server``'s name, port and log from the zygote; its pid.

    Returns None when there is no zygote or it does not answer (start one with
    :func:`start_all` then).
    """
    if zygote is None or not _zygote_alive(zygote):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5.0)
            conn.connect(zygote.socket)
            conn.sendall(f"{server.name}\n".encode())
            answer = conn.makefile("r").readline().strip()
    except OSError as exc:
        log.warning("zygote %d did not answer (%s); starting a new launcher", zygote.pid, exc)
        return None
    if not answer.isdigit():
        log.warning("zygote %d answered %r; starting a new launcher", zygote.pid, answer)
        return None
    log.info("respawned moto server %s: pid %s, port %d", server.name, answer, server.port)
    return int(answer)


def _zygote_alive(zygote: Zygote) -> bool:
    if not alive(zygote.pid):
        return False
    return _launched(zygote.pid, zygote.socket, zygote.log) is not False


def stop_zygote(zygote: Zygote | None) -> None:
    """Stop the zygote (the servers it forked are stopped one by one, by :func:`stop`)."""
    if zygote is not None and _zygote_alive(zygote):
        _signal(zygote.pid, signal.SIGKILL)
        _wait_gone(ServerState(name=ZYGOTE, pid=zygote.pid, port=0, log=""))
    if zygote is not None:
        Path(zygote.socket).unlink(missing_ok=True)


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
                raise FailoverError(
                    f"moto server {server.name} exited at start"
                    f"{_last_words(server.log)}; see {server.log}"
                )
            if _answers(server.url):
                configure(server.url)
                pending.remove(server)
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            raise FailoverError(f"moto server(s) {names} did not answer within {timeout:.0f} s")
        if pending:
            time.sleep(_POLL)


def _last_words(log_file: str) -> str:
    """The last line a server wrote to its log, as ``: line`` (empty when there is none)."""
    with contextlib.suppress(OSError), open(log_file, errors="replace") as log_lines:
        lines = [line.strip() for line in log_lines.readlines()[-20:] if line.strip()]
        if lines:
            return f": {lines[-1][:300]}"
    return ""


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/config", timeout=1.0):  # noqa: S310
            return True
    except (urllib.error.URLError, OSError):
        return False


def _post(url: str, path: str, body: bytes = b"", timeout: float = 10.0) -> None:
    headers = {controls.SECRET_HEADER: _SECRETS.get(url, "")}
    request = urllib.request.Request(  # noqa: S310
        f"{url}{path}",
        data=body,
        method="POST",
        headers=headers,
    )
    with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310
        pass


def configure(url: str) -> None:
    """Tell a fresh (or reset) server not to look for Docker when a function is invoked."""
    _post(url, "/moto-api/config", json.dumps(MOTO_CONFIG).encode())


def reset(url: str) -> None:
    """Forget every resource the server holds (moto's reset API), then configure it again."""
    _post(url, "/moto-api/reset")
    configure(url)


def snapshot(url: str, file: Path | None = None) -> None:
    """Make the server keep a copy of everything it holds now (:mod:`sandbox.snapshot`), and
    write it to ``file`` too when given."""
    query = f"?{urlencode({'file': str(file)})}" if file else ""
    _post(url, launcher.SNAPSHOT_PATH + query, timeout=60.0)


def restore(url: str, file: Path | None = None, *, keep: bool = False) -> bool:
    """Put back the server's copy, or the one in ``file`` (``keep``: as its own from then on):
    False when there is none (a server started since the copy was taken, or no such file), and
    then nothing has changed."""
    query = f"?{urlencode({'file': str(file), 'keep': int(keep)})}" if file else ""
    try:
        _post(url, launcher.RESTORE_PATH + query, timeout=60.0)
    except urllib.error.HTTPError as exc:
        if exc.code == HTTPStatus.CONFLICT:
            return False
        raise
    return True


def set_round_trip(url: str, seconds: float) -> None:
    """Make the server wait ``seconds`` before it serves each request (0: answer at once).

    Raises
    ------
    UsageError
        ``seconds`` is not a number from 0 to :data:`sandbox.launcher.MAX_ROUND_TRIP`.
    """
    if launcher.round_trip_seconds(f"seconds={seconds}") is None:
        raise UsageError(
            f"round trip {seconds}: a number of seconds from 0 to {launcher.MAX_ROUND_TRIP}"
        )
    _post(url, f"{launcher.ROUND_TRIP_PATH}?seconds={seconds}")


def configure_alarms(url: str, evaluate: bool, ahead: float = 0.0) -> None:
    """Turn the server's alarm evaluator on or off (:mod:`sandbox.cloudwatch.evaluator`), its
    clock ``ahead`` seconds ahead of the wall clock."""
    query = urlencode({"evaluate": int(evaluate), "ahead": repr(float(ahead))})
    _post(url, f"{controls.ALARMS_PATH}?{query}")


def seed(url: str, value: int) -> None:
    """Seed the server's id generator so the next ids it makes are the same on every start."""
    _post(url, f"/moto-api/seed?a={value}")


def is_ours(server: ServerState) -> bool:
    """True when ``server.pid`` is still the moto server we started (not a reused pid)."""
    if not alive(server.pid):
        return False
    return _launched(server.pid, f"={server.log}", server.log) is not False  # no /proc: trust it


#: How the processes of a launcher (servers, zygote) begin their command line: a launcher's own,
#: or a forkserver's (:mod:`sandbox.forkserver`).
LAUNCHERS = (b"sandbox.launcher", forkserver.MODULE.encode())


def _launched(pid: int, named: str, log: str, *, folder: bool = False) -> bool | None:
    """Whether ``pid`` is a launcher's process whose command line holds ``named`` (a launcher
    started by :func:`start_all` names every server's log there) or whose output goes to
    ``log`` (under the folder ``log`` when ``folder``), as a forkserver's launcher's processes
    are known; None without ``/proc``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not any(name in cmdline for name in LAUNCHERS):
        return False
    if named.encode() in cmdline.replace(b"\0", b" "):
        return True
    out = output_of(pid)
    return bool(log) and (out.startswith(log) if folder else out == log)


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


def find_processes(log_dir: Path) -> list[int]:
    """The pids of this user's launcher processes (servers and zygote) whose logs are in
    ``log_dir``: how a sandbox whose state file is lost or corrupt is still found.

    Every server and the zygote are forks of one launcher, whose command line names each
    server's log file, so the log folder identifies the sandbox.
    """
    folder = str(log_dir.resolve()) + os.sep
    found = []
    me, uid = os.getpid(), os.getuid()
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
        except OSError:
            continue
        pid = int(entry.name)
        if _launched(pid, folder, folder, folder=True) and not is_zombie(pid):
            found.append(pid)
    return sorted(found)


def stop_pids(pids: Iterable[int]) -> None:
    """SIGKILL each of ``pids`` (after SIGCONT) and wait until they are gone."""
    for pid in pids:
        _signal(pid, signal.SIGCONT)
        _signal(pid, signal.SIGKILL)
    for pid in pids:
        _wait_gone(ServerState(name=str(pid), pid=pid, port=0, log=""))
