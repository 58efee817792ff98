"""A launcher kept built: moto imported once, forked into the launcher of each new sandbox.

Started by whoever starts many sandboxes one after another (the tests' session, one per worker:
``tests/sandbox/conftest.py``) as ``python -m sandbox.forkserver SOCKET``. A launcher
(:mod:`sandbox.launcher`) spends about 1.1 s of CPU importing moto and building its
applications before it forks a sandbox's servers, the same work for every sandbox; here it is
done once. The forkserver then listens on the unix socket ``SOCKET`` (0600, in its owner's
folder) and answers each request, one JSON line (the launcher's arguments, the environment
:func:`sandbox.servers.start_all` would start it with, its caller's folder), by forking a child
that becomes that launcher: it takes the environment, the clock it names, the folder (the
sandbox's relative paths are the caller's), a session of its own, stdin from
``/dev/null``, and runs :func:`sandbox.launcher.main` on the application already built. The
answer is one JSON line: the launcher's exit code and what it printed. Its servers and zygote
are the ones a launcher started by ``start_all`` forks, but their command line is the
forkserver's: :mod:`sandbox.servers` also knows them by their log (their standard output).

:func:`launch` asks the forkserver that ``FAILOVER_SANDBOX_FORKSERVER`` names; None when there is
none, it does not answer yet (it is still building), or it was built under other moto settings
(moto reads some at import): the caller starts a launcher itself then. Only its owner may use it
(``SO_PEERCRED``), and it ends with its owner (:mod:`sandbox.owner`).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller import clock
from sandbox import launcher
from sandbox.lambda_.bootstrap import peer_uid
from sandbox.liveness import alive
from sandbox.owner import ENV as OWNER_ENV

#: The environment variable that names a forkserver's socket to the processes that start
#: sandboxes (in-process, or ``failover sandbox up`` run by a runbook page).
ENV = "FAILOVER_SANDBOX_FORKSERVER"
#: Settings moto reads once, at import: a launcher forked here has the forkserver's.
IMPORT_TIME = ("MOTO_", "TEST_SERVER_MODE", "TESTS_", "DEFAULT_CONTAINER_REGISTRY")
#: Wall seconds between two looks at the owner while no request comes.
OWNER_POLL_SECONDS = 0.5
#: Wall seconds a request may take to arrive once connected.
REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class Forkserver:
    """A forkserver started by :func:`start`: its process and its socket."""

    process: subprocess.Popen[bytes]
    socket: str


def settings(environ: dict[str, str]) -> dict[str, str]:
    """The part of ``environ`` moto reads at import (:data:`IMPORT_TIME`).

    >>> settings({"MOTO_ACM_VALIDATION_WAIT": "0", "HOME": "/root"})
    {'MOTO_ACM_VALIDATION_WAIT': '0'}
    """
    return {k: v for k, v in environ.items() if k.startswith(IMPORT_TIME)}


def launch(
    argv: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str] | None:
    """Start a launcher with ``argv`` and ``env`` from the forkserver ``env`` names, as
    ``subprocess.run`` of ``python -m sandbox.launcher`` would answer; None when none answers.

    Raises
    ------
    subprocess.TimeoutExpired
        The forkserver took the request and no answer came within ``timeout`` wall seconds.
    """
    path = env.get(ENV, "")
    if not path:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.settimeout(REQUEST_TIMEOUT)
            conn.connect(path)
            request = {"argv": argv, "env": env, "cwd": os.getcwd()}
            conn.sendall(json.dumps(request).encode() + b"\n")
            conn.settimeout(timeout)
            line = conn.makefile("rb").readline()
        except TimeoutError as exc:
            raise subprocess.TimeoutExpired(["forkserver", *argv], timeout) from exc
        except OSError:
            return None  # none there, or not listening yet
    answer = json.loads(line) if line.strip() else {}
    if "code" not in answer:
        return None  # it refused (another user, other moto settings)
    return subprocess.CompletedProcess(argv, answer["code"], answer["stdout"], answer["stderr"])


def start(directory: Path) -> Forkserver:
    """Start a forkserver listening in ``directory`` (0700), its output in ``forkserver.log``
    there; it answers once it has built moto (about a second), and ends with this process's
    owner (:mod:`sandbox.owner`) or at :func:`stop`."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    path = directory / "forkserver.sock"
    path.unlink(missing_ok=True)
    env = {**os.environ, "MOTO_ACM_VALIDATION_WAIT": "0"}  # as start_all's launcher has it
    env.pop(ENV, None)
    with open(directory / "forkserver.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.forkserver", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=env,
        )
    return Forkserver(process=process, socket=str(path))


def stop(server: Forkserver) -> None:
    """Stop the forkserver (the sandboxes it launched are their own: stop them apart)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    Path(server.socket).unlink(missing_ok=True)


def serve(path: str) -> None:
    """Build moto, then fork a launcher for each request on ``path``, until the owner is gone
    or a SIGTERM."""
    gc.disable()  # as the launcher: what is built here is frozen for every fork
    built = launcher.moto_application()
    gc.freeze()
    owner = os.environ.get(OWNER_ENV, "")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    listener.settimeout(OWNER_POLL_SECONDS)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the launchers it forks are reaped at exit
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    mine = settings(dict(os.environ))
    while not owner.isdigit() or alive(int(owner)):
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(REQUEST_TIMEOUT)
            request = _request(conn, mine)
            if request is None:
                continue
            if os.fork() == 0:
                _become_launcher(listener, conn, built, request)


def _request(conn: socket.socket, mine: dict[str, str]) -> dict[str, Any] | None:
    """The request on ``conn``, or None once refused (another user, moto settings not this
    forkserver's, a malformed line)."""
    if peer_uid(conn) != os.getuid():
        conn.sendall(b'{"error": "not the owner"}\n')
        return None
    try:
        request = json.loads(conn.makefile("rb").readline())
        argv, env, cwd = list(request["argv"]), dict(request["env"]), str(request["cwd"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if settings(env) != mine:
        conn.sendall(b'{"error": "built under other moto settings"}\n')
        return None
    return {
        "argv": [str(a) for a in argv],
        "env": {str(k): str(v) for k, v in env.items()},
        "cwd": cwd,
    }


def _become_launcher(
    listener: socket.socket, conn: socket.socket, built: Any, request: dict[str, Any]
) -> None:
    """In the fork: be the launcher ``request`` asks for, answer on ``conn``, and end."""
    code, out, err = 1, b"", b""
    try:
        listener.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.setsid()  # as start_all's launcher: a session of its own, in its caller's folder
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        clock.use(clock.from_environment())
        launcher.NOT_INHERITED.append(conn)  # its servers and zygote keep no connection here
        with (
            open(os.devnull, "rb") as devnull,
            tempfile.TemporaryFile() as stdout,
            tempfile.TemporaryFile() as stderr,
        ):
            for source, fd in ((devnull, 0), (stdout, 1), (stderr, 2)):
                os.dup2(source.fileno(), fd)
            try:
                code = launcher.main(request["argv"], built)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = _read(stdout), _read(stderr)
    finally:
        answer = {"code": code, "stdout": out.decode(errors="replace")}
        answer["stderr"] = err.decode(errors="replace")
        try:
            conn.sendall(json.dumps(answer).encode() + b"\n")
        finally:
            os._exit(0)


def _read(file: Any) -> bytes:
    file.seek(0)
    return bytes(file.read())


if __name__ == "__main__":
    serve(sys.argv[1])
