"""A launcher kept built: moto imported once, forked into the launcher of each new sandbox,
and into each watcher process.

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

A request that names an ``output`` asks for a watcher process instead (``python -m
sandbox.watchers``, about 0.4 s of CPU to import; :func:`sandbox.watchers.start`): the fork takes
the same environment, folder and session, appends its output to that file, and runs on. The
answer, sent by the fork once its output is that file, is its pid: :mod:`sandbox.watchers` knows
it by that output too. A Lambda execution environment is never forked here: it is an isolated
interpreter of its own (:mod:`sandbox.lambda_.bootstrap`).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller import clock
from controller.errors import FailoverError
from sandbox import launcher
from sandbox.lambda_.bootstrap import peer_uid
from sandbox.liveness import alive
from sandbox.owner import ENV as OWNER_ENV

#: The environment variable that names a forkserver's socket to the processes that start
#: sandboxes (in-process, or ``failover sandbox up`` run by a runbook page).
ENV = "FAILOVER_SANDBOX_FORKSERVER"
#: Its module: the command line of every process it forks (how they are told apart from others').
MODULE = "sandbox.forkserver"
#: Settings moto reads once, at import: a launcher forked here has the forkserver's.
IMPORT_TIME = ("MOTO_", "TEST_SERVER_MODE", "TESTS_", "DEFAULT_CONTAINER_REGISTRY")
#: Wall seconds between two looks at the owner while no request comes.
OWNER_POLL_SECONDS = 0.5
#: Wall seconds a request may take to arrive once connected.
REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class Forkserver:
    """A server started by :func:`spawn` (a forkserver by :func:`start`): its process and its
    socket."""

    process: subprocess.Popen[bytes]
    socket: str


def settings(environ: dict[str, str]) -> dict[str, str]:
    """The part of ``environ`` moto reads at import (:data:`IMPORT_TIME`).

    >>> settings({"MOTO_ACM_VALIDATION_WAIT": "0", "HOME": "/root"})
    {'MOTO_ACM_VALIDATION_WAIT': '0'}
    """
    return {k: v for k, v in environ.items() if k.startswith(IMPORT_TIME)}


def spawn_watcher(argv: list[str], env: dict[str, str], cwd: str, output: Path) -> int | None:
    """Start ``python -m sandbox.watchers ARGV`` (in ``cwd``, with ``env``, its output appended
    to ``output``) as a fork of the forkserver ``env`` names; its pid, or None when none answers.

    Raises
    ------
    FailoverError
        The forkserver took the request and did not answer (it answers as soon as it forked):
        whether a watcher runs is unknown, so none is started beside it.
    """
    request = {"argv": argv, "env": env, "cwd": cwd, "output": str(output)}
    try:
        answer = _ask(env, request, REQUEST_TIMEOUT)
    except TimeoutError as exc:
        raise FailoverError(
            f"the sandbox's forkserver ({env.get(ENV)}) took the request for a watcher and did "
            f"not answer within {REQUEST_TIMEOUT:g} s: stop the sandbox and start it again"
        ) from exc
    pid = answer.get("pid") if answer else None
    return pid if isinstance(pid, int) else None


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
    try:
        answer = _ask(env, {"argv": argv, "env": env, "cwd": os.getcwd()}, timeout)
    except TimeoutError as exc:
        raise subprocess.TimeoutExpired(["forkserver", *argv], timeout) from exc
    if answer is None or "code" not in answer:
        return None  # none there, not listening yet, or it refused (other moto settings)
    return subprocess.CompletedProcess(argv, answer["code"], answer["stdout"], answer["stderr"])


def _ask(env: dict[str, str], request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """The forkserver's answer to ``request``; None when ``env`` names none or none answers.

    Raises
    ------
    TimeoutError
        It took the request and did not answer within ``timeout`` wall seconds.
    """
    path = env.get(ENV, "")
    if not path:
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.settimeout(REQUEST_TIMEOUT)
            conn.connect(path)
            conn.sendall(json.dumps(request).encode() + b"\n")
        except OSError:
            return None  # none there, or not listening yet
        conn.settimeout(timeout)
        try:
            line = conn.makefile("rb").readline()
        except TimeoutError:
            raise
        except OSError:
            return None
    answer = json.loads(line) if line.strip() else {}
    return answer if isinstance(answer, dict) else None


def start(directory: Path) -> Forkserver:
    """Start a forkserver listening in ``directory`` (0700), its output in ``forkserver.log``
    there; it answers once it has built moto (about a second), and ends with this process's
    owner (:mod:`sandbox.owner`) or at :func:`stop`."""
    env = {**os.environ, "MOTO_ACM_VALIDATION_WAIT": "0"}  # as start_all's launcher has it
    env.pop(ENV, None)
    return spawn(MODULE, directory, "forkserver", env)


def spawn(
    module: str, directory: Path, name: str, env: dict[str, str], cwd: Path | None = None
) -> Forkserver:
    """Run ``python -m module SOCKET`` in a session of its own, listening on ``name.sock`` in
    ``directory`` (made 0700), its output appended to ``name.log`` there: a server that forks
    what its callers ask for (this module's, and the test suite's controller zygote)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    path = directory / f"{name}.sock"
    path.unlink(missing_ok=True)
    with open(directory / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(path)],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=env,
        )
    return Forkserver(process=process, socket=str(path))


def stop(server: Forkserver, timeout: float = 5.0) -> None:
    """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds) and remove its
    socket; the sandboxes a forkserver launched are their own: stop them apart."""
    server.process.terminate()
    try:
        server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    Path(server.socket).unlink(missing_ok=True)


def serve(path: str) -> None:
    """Build moto, then fork a launcher for each request on ``path``, until the owner is gone
    or a SIGTERM."""
    gc.disable()  # as the launcher: what is built here is frozen for every fork
    built = launcher.moto_application()
    from sandbox import watchers  # noqa: F401  (and what a watcher process imports)
    from sandbox.cloudwatch import metrics  # noqa: F401
    from sandbox.lambda_ import invoke  # noqa: F401

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
                listener.close()
                if request["output"]:
                    _become_watcher(conn, request)
                _become_launcher(conn, built, request)


def _request(conn: socket.socket, mine: dict[str, str]) -> dict[str, Any] | None:
    """The request on ``conn``, or None once refused (another user, moto settings not this
    forkserver's, a malformed line)."""
    if peer_uid(conn) != os.getuid():
        conn.sendall(b'{"error": "not the owner"}\n')
        return None
    try:
        request = json.loads(conn.makefile("rb").readline())
        argv, env, cwd = list(request["argv"]), dict(request["env"]), str(request["cwd"])
        output = str(request.get("output") or "")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not output and settings(env) != mine:  # a launcher serves moto as built here
        conn.sendall(b'{"error": "built under other moto settings"}\n')
        return None
    return {
        "argv": [str(a) for a in argv],
        "env": {str(k): str(v) for k, v in env.items()},
        "cwd": cwd,
        "output": output,
    }


def _take(request: dict[str, Any]) -> None:
    """In a fork: take on what a process started with ``request`` would have (a session of its
    own, its caller's folder, environment and clock, stdin from ``/dev/null``)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    clock.use(clock.from_environment())
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), 0)


def _become_watcher(conn: socket.socket, request: dict[str, Any]) -> None:
    """In the fork: be the watcher process ``request`` asks for (:mod:`sandbox.watchers`), its
    output appended to ``request["output"]``, until it ends.

    Its pid is answered on ``conn`` only once its output is that log: :mod:`sandbox.watchers`
    knows a forked watcher by it, so a caller never holds a pid it cannot yet recognise.
    """

    def watch() -> int:
        _take(request)
        gc.enable()  # paused while moto was built: a watcher is a process of its own
        with open(request["output"], "ab") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
        with conn:
            conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        from sandbox import watchers

        return watchers.main(request["argv"])

    code = 1
    try:
        code = _run(watch)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _become_launcher(conn: socket.socket, built: Any, request: dict[str, Any]) -> None:
    """In the fork: be the launcher ``request`` asks for, answer on ``conn``, and end."""
    code, out, err = 1, b"", b""
    try:
        _take(request)
        launcher.NOT_INHERITED.append(conn)  # its servers and zygote keep no connection here
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            for source, fd in ((stdout, 1), (stderr, 2)):
                os.dup2(source.fileno(), fd)
            code = _run(lambda: launcher.main(request["argv"], built))
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


def _run(main: Callable[[], int]) -> int:
    """``main()``'s exit code, as the process it plays would end with it (1 for an error, its
    traceback on stderr)."""
    try:
        return main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1


def _read(file: Any) -> bytes:
    file.seek(0)
    return bytes(file.read())


if __name__ == "__main__":
    serve(sys.argv[1])
