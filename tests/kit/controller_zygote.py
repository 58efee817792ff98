"""A controller kept imported: each ``python -m controller`` or ``python -m sandbox.faults`` a
sandbox test starts is forked from it instead of started afresh.

Started once per test session (one per xdist worker: ``tests/sandbox/conftest.py``) as
``python -m tests.kit.controller_zygote SOCKET``, with the repository as its folder. A controller
process spends about a second of CPU importing (the controller, botocore, typer, rich, pydantic,
networkx) and parsing botocore's service models before its first call, the same work in every
process; here it is done once. Not a fork of :mod:`sandbox.forkserver`: that one has moto
imported, whose stubber sits in botocore's handlers, and a controller must be as clean as the
real one.

The zygote stays single-threaded and listens on the unix socket ``SOCKET`` (0600, in its owner's
folder; only its owner's processes are served: ``SO_PEERCRED``). A request is one JSON line (the
entry module, its arguments, the environment and the folder) carrying the caller's standard
input, output and error (``SCM_RIGHTS``); the zygote forks a child that takes all of them and
runs the entry module as ``python -m`` would, then answers the child's pid, and, once it has
reaped the child, its wait status. A caller that closes the connection or writes on it has the
child SIGKILLed. The zygote ends with its owner (:mod:`sandbox.owner`), or at SIGTERM, and its
children with it.

:func:`spawn` asks the zygote :data:`ENV` names and answers a :class:`Forked`, a handle that reads
like the ``subprocess.Popen`` it replaces; None when there is none, it does not answer, or the
caller's interpreter settings are not the zygote's (the caller starts a process itself then).
"""

from __future__ import annotations

import contextlib
import gc
import json
import locale
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.lambda_.bootstrap import die_with_parent, peer_uid, shared_models
from sandbox.liveness import alive
from sandbox.owner import ENV as OWNER_ENV

#: The environment variable that names the session's zygote socket to the test process.
ENV = "FAILOVER_TEST_CONTROLLER_ZYGOTE"
#: Its module, as the zygote is started.
MODULE = "tests.kit.controller_zygote"
#: The entry modules a child may run: ``python -m controller`` and the fault injector.
ENTRIES = frozenset({"controller", "sandbox.faults"})
#: Settings an interpreter reads once, at start-up or at import (its paths and streams, the
#: consoles' colours and width, pydantic's plugins): a child has the zygote's, so a caller whose
#: settings differ is refused and starts a process of its own.
IMPORT_TIME = (
    "PYTHON",
    "PYDANTIC_",
    "LANG",
    "LC_",
    "TERM",
    "COLUMNS",
    "LINES",
    "FORCE_COLOR",
    "NO_COLOR",
    "TTY_",
)
#: What the CLI's ``main`` sets when the environment does not (and what a test that ran the CLI
#: in its own process has kept set since): a caller without it runs as one with it.
CLI_DEFAULTS = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
#: What the zygote imports before its first fork: what the entry modules import (not themselves:
#: ``python -m`` runs a module not imported yet, and runpy warns of one that is), the verbs the
#: sandbox tests run as a process, and what a run imports only once it runs (read from a run's
#: new modules).
PRELOAD = (
    "argparse",
    "controller.controltable.journal",
    "controller.interfaces.cli",
    "controller.interfaces.cli.execute_cmds",
    "controller.interfaces.cli.watch_cmds",
    "controller.interfaces.cli.logs",
    "controller.engine.executor",
    "rich.logging",
    "rich.progress",
    "rich._emoji_codes",
    "typer._adapters",
    "pydantic.type_adapter",
    "encodings.idna",
    "stringprep",
    "unicodedata",
    "pwd",
    "mmap",
)
#: The services whose models a controller's clients read (:mod:`controller.aws`).
SERVICES = (
    "apigatewayv2",
    "cloudwatch",
    "dynamodb",
    "events",
    "kinesis",
    "lambda",
    "route53",
    "s3",
    "sqs",
    "ssm",
)
#: Wall seconds between two looks at the owner while nothing happens.
OWNER_POLL_SECONDS = 0.5
#: Wall seconds a request may take to arrive once connected, or its answer to come. Long: a
#: caller that gives up starts the process itself, and a child forked for it meanwhile would
#: run beside that one until the zygote, finding its caller gone, kills it.
REQUEST_TIMEOUT = 30.0
#: The standard streams a child takes from its caller.
STDIO = (0, 1, 2)


def answering(path: str) -> bool:
    """Whether the unix socket ``path`` takes connections: the zygote listens only once it has
    preloaded, :mod:`sandbox.forkserver` once it has built moto."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(path)
        except OSError:
            return False
    return True


def settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` an interpreter reads at start-up or import (:data:`IMPORT_TIME`),
    with the CLI's defaults where it names none (:data:`CLI_DEFAULTS`).

    >>> settings({"PYTHONPATH": "/x", "LANG": "C.UTF-8", "HOME": "/root"})
    {'PYDANTIC_DISABLE_PLUGINS': '__all__', 'PYTHONPATH': '/x', 'LANG': 'C.UTF-8'}
    """
    merged = {**CLI_DEFAULTS, **environ}
    return {k: v for k, v in merged.items() if k.startswith(IMPORT_TIME) and k != ENV}


# -- the caller's side ------------------------------------------------------------------------


if TYPE_CHECKING:  # a zygote is served as a forkserver is; the zygote imports no sandbox more
    from sandbox.forkserver import Forkserver as Zygote


def start(directory: Path, cwd: Path) -> Zygote:
    """Start a zygote listening in ``directory`` (0700), its own output in ``zygote.log`` there,
    run from ``cwd`` (the repository: ``tests`` must be importable); it answers once it has
    imported the controller (a second or two), and ends with this process's owner or at
    :func:`stop`."""
    from sandbox import forkserver

    env = {k: v for k, v in os.environ.items() if k != ENV}
    return forkserver.spawn(MODULE, directory, "zygote", env, cwd=cwd)


def stop(zygote: Zygote) -> None:
    """Stop the zygote; it SIGKILLs and reaps the children still running first."""
    from sandbox import forkserver

    forkserver.stop(zygote, timeout=10)


@dataclass
class Forked:
    """A child of the zygote, as ``subprocess.Popen(..., stdout=PIPE, stderr=PIPE, text=True)``
    answers for the process it replaces: ``pid``, ``returncode`` (minus the signal's number when
    a signal ended it), :meth:`poll`, :meth:`wait`, :meth:`communicate`, :meth:`kill`."""

    args: list[str]
    pid: int
    conn: socket.socket
    stdout: Any
    stderr: Any
    returncode: int | None = None
    _pending: bytearray = field(default_factory=bytearray, repr=False)

    def poll(self) -> int | None:
        """The exit code if the child has ended (reaped by the zygote), else None."""
        if self.returncode is None:
            self._status(deadline=time.monotonic())
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child's end and answer its exit code.

        Raises
        ------
        subprocess.TimeoutExpired
            It has not ended within ``timeout`` wall seconds (it runs on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.returncode is None:
            self._status(deadline)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Everything the child wrote on its output and error (read to their end), once it has
        ended, as text.

        Raises
        ------
        subprocess.TimeoutExpired
            Its output has not ended, or it has not, within ``timeout`` wall seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        out, err = _read_to_end([self.stdout, self.stderr], deadline, self.args, timeout)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return _text(out), _text(err)

    def kill(self) -> None:
        """SIGKILL the child, unless it has ended already (the zygote, its parent, sends it)."""
        if self.returncode is None:
            with contextlib.suppress(OSError):  # the zygote is gone, and its children with it
                self.conn.sendall(b"kill\n")

    def _status(self, deadline: float | None) -> None:
        """Read the child's wait status from the zygote, if it comes before ``deadline``."""
        line = _line(self.conn, self._pending, deadline)
        if line is None:
            return
        answer = json.loads(line) if line.strip() else {}
        status = answer.get("status") if isinstance(answer, dict) else None
        # The zygote gone without an answer: the child, a child of it, was killed with it.
        self.returncode = (
            os.waitstatus_to_exitcode(status) if isinstance(status, int) else -signal.SIGKILL
        )
        self.conn.close()


def spawn(
    entry: str,
    args: list[str],
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    path: str | None = None,
) -> Forked | None:
    """``python -m ENTRY ARGS`` (in ``cwd``, with ``env``, this process's standard input, its
    output and error on pipes) forked from the zygote at ``path`` (default: the one
    ``os.environ`` names); None when there is none, it does not answer yet, or it refuses
    (``env``'s :func:`settings` are not its own)."""
    path = os.environ.get(ENV, "") if path is None else path
    if not path:
        return None
    request = {"entry": entry, "args": args, "env": dict(env), "cwd": os.fspath(cwd)}
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(REQUEST_TIMEOUT)
        conn.connect(path)
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, out_w, err_w])
        pending = bytearray()
        line = _line(conn, pending, time.monotonic() + REQUEST_TIMEOUT)
        answer = json.loads(line) if line else {}
    except (OSError, ValueError):
        answer = {}
    finally:
        os.close(out_w)  # the child holds them now (or nobody does)
        os.close(err_w)
    pid = answer.get("pid") if isinstance(answer, dict) else None
    if not isinstance(pid, int):
        conn.close()
        os.close(out_r)
        os.close(err_r)
        return None
    conn.settimeout(None)
    # Unbuffered: a line read from one leaves nothing behind for communicate() to miss.
    stdout, stderr = open(out_r, "rb", 0), open(err_r, "rb", 0)  # noqa: SIM115 - the handle's
    return Forked([entry, *args], pid, conn, stdout, stderr, _pending=pending)


def _line(conn: socket.socket, pending: bytearray, deadline: float | None) -> bytes | None:
    """The next line on ``conn`` (b"" once it has closed), or None when ``deadline`` passes
    first; what is read past the line stays in ``pending``."""
    while b"\n" not in pending:
        left = None if deadline is None else deadline - time.monotonic()
        conn.settimeout(None if left is None else max(left, 1e-6))
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            return None
        except OSError:
            chunk = b""
        if not chunk:
            line, pending[:] = bytes(pending), b""
            return line
        pending += chunk
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line


def _read_to_end(
    files: list[Any], deadline: float | None, args: list[str], timeout: float | None
) -> list[bytes]:
    """Everything left on each of ``files`` (pipes), read together until each ends.

    Raises
    ------
    subprocess.TimeoutExpired
        One has not ended by ``deadline`` (what was read so far is lost, as the handle's).
    """
    open_files = [f for f in files if not f.closed]  # a second call reads nothing
    chunks: dict[int, list[bytes]] = {f.fileno(): [] for f in open_files}
    with selectors.DefaultSelector() as selector:
        for file in open_files:
            selector.register(file.fileno(), selectors.EVENT_READ)
        while selector.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(args, timeout or 0.0)
            for key, _ in selector.select(left):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
    read = [b"".join(chunks[f.fileno()]) if f in open_files else b"" for f in files]
    for file in open_files:
        file.close()
    return read


def _text(data: bytes) -> str:
    """``data`` as ``Popen(text=True)`` reads it: the locale's encoding, universal newlines."""
    decoded = data.decode(locale.getpreferredencoding(False))
    return decoded.replace("\r\n", "\n").replace("\r", "\n")


# -- the zygote -------------------------------------------------------------------------------


def preload() -> None:
    """Import what the entry modules import (every kind's action too), and read the
    controller's botocore models into one loader that every later session shares; leave no
    client, session or thread behind."""
    import importlib

    for name, value in CLI_DEFAULTS.items():  # as the CLI's main sets them, before its imports
        os.environ.setdefault(name, value)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # a dependency's private module moved: imported when used
            print(f"not preloaded: {name} ({exc})", flush=True)
    from controller.actions.registry import action_class
    from controller.topology import KINDS

    for kind in KINDS:
        action_class(str(kind))
    shared_models(SERVICES)
    gc.collect()


@dataclass
class Children:
    """The zygote's running children: each one's connection to its caller, and back."""

    by_pid: dict[int, socket.socket] = field(default_factory=dict)
    by_fd: dict[int, int] = field(default_factory=dict)

    def add(self, pid: int, conn: socket.socket) -> None:
        self.by_pid[pid] = conn
        self.by_fd[conn.fileno()] = pid

    def remove(self, pid: int) -> socket.socket | None:
        conn = self.by_pid.pop(pid, None)
        if conn is not None:
            self.by_fd.pop(conn.fileno(), None)
        return conn


def serve(path: str) -> None:
    """Preload, then fork a child for each request on ``path`` and answer its pid and its wait
    status, until the owner is gone or a SIGTERM."""
    mine = settings(os.environ)
    owner = os.environ.get(OWNER_ENV, "")
    gc.disable()  # what preload() builds is kept for every child: frozen, not walked
    preload()
    gc.freeze()
    if threading.active_count() != 1:  # a fork copies one thread: the others' locks would hang
        sys.exit(f"the zygote must stay single-threaded: {threading.enumerate()}")
    if "moto" in sys.modules:  # its stubber in botocore's handlers: not the controller's botocore
        sys.exit("the zygote imported moto: a controller forked here would not be the real one")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    wake_r, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector (below)
    signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    children = Children()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    print(f"ready: pid {os.getpid()}, {len(sys.modules)} modules", flush=True)
    try:
        while not owner.isdigit() or alive(int(owner)):
            for key, _ in selector.select(OWNER_POLL_SECONDS):
                if key.fileobj is listener:
                    _accept(listener, mine, children, selector, [listener, wake_r, wake_w])
                elif key.fileobj is wake_r:
                    wake_r.recv(4096)
                else:
                    _on_caller(key.fileobj, children, selector)  # type: ignore[arg-type]
            _reap(children, selector)
    finally:
        _end(children)
        Path(path).unlink(missing_ok=True)


def _on_caller(conn: socket.socket, children: Children, selector: selectors.BaseSelector) -> None:
    """A child's caller wrote on its connection (asks for a SIGKILL) or closed it (is gone):
    SIGKILL the child, and listen to it no more (its status is still answered, if it can be)."""
    with contextlib.suppress(OSError):
        conn.recv(4096)
    selector.unregister(conn)
    _kill(children.by_fd.get(conn.fileno()))


def _accept(
    listener: socket.socket,
    mine: dict[str, str],
    children: Children,
    selector: selectors.BaseSelector,
    own: list[socket.socket],
) -> None:
    """Take one connection's request and fork its child, or refuse it (a caller gone, or one
    that only looked whether the zygote answers, is no error of the zygote's)."""
    conn, _ = listener.accept()
    conn.settimeout(REQUEST_TIMEOUT)
    fds: list[int] = []
    try:
        request, fds = _request(conn, mine)
        if "error" not in request and len(fds) != len(STDIO):
            request = {"error": f"{len(fds)} streams, not {len(STDIO)}"}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        request = {"error": f"no request: {exc!r}"}
    if "error" in request:
        if request["error"]:
            print(f"refused: {request['error']}", flush=True)
        _close_fds(fds)
        _answer(conn, {"error": request["error"]})
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # SIGTERM held until the child has its own handler: the zygote's would unwind the child
    # into the zygote's loop and its clean-up.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    pid = os.fork()
    if pid == 0:
        try:
            selector.close()
            for sock in [*own, *children.by_pid.values()]:
                sock.close()
            _become(conn, request, fds)
        finally:
            os._exit(1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    _close_fds(fds)  # the child's now: a pipe held here would never end for its reader
    children.add(pid, conn)
    print(f"{pid}: {request['entry']} {' '.join(request['args'])}", flush=True)
    if _answer(conn, {"pid": pid}):
        selector.register(conn, selectors.EVENT_READ)
    else:
        _kill(pid)  # nobody to hand it to: reaped with the others


def _answer(conn: socket.socket, answer: dict[str, Any]) -> bool:
    """Send ``answer`` as one line on ``conn``; False when its caller is gone."""
    try:
        conn.sendall(json.dumps(answer).encode() + b"\n")
    except OSError:
        return False
    return True


def _request(conn: socket.socket, mine: dict[str, str]) -> tuple[dict[str, Any], list[int]]:
    """The request on ``conn`` and the descriptors it carries; an ``error`` when refused
    (another user, other interpreter settings, an entry module not served)."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, len(STDIO))
    if not data and not fds:
        return {"error": ""}, fds  # a look whether it answers (:func:`answering`)
    if peer_uid(conn) != os.getuid():
        return {"error": "not the owner"}, fds
    while data and not data.endswith(b"\n"):
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    raw = json.loads(data)
    request: dict[str, Any] = {
        "entry": str(raw["entry"]),
        "args": [str(a) for a in raw["args"]],
        "env": {str(k): str(v) for k, v in dict(raw["env"]).items()},
        "cwd": str(raw["cwd"]),
    }
    if request["entry"] not in ENTRIES:
        return {"error": f"not an entry module: {request['entry']}"}, fds
    if settings(request["env"]) != mine:
        return {"error": "started under other interpreter settings"}, fds
    return request, fds


def _become(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """In the child: take the caller's streams, folder, environment and signals, run the entry
    module as ``python -m`` runs it, and end with its exit code (never returns)."""
    code = 1
    try:
        conn.close()
        _take(request, fds)
        code = _run_module(request["entry"], request["args"])
        _finalize()
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def _take(request: dict[str, Any], fds: list[int]) -> None:
    """In the child: what a process started by the caller would have (see :func:`_become`)."""
    import logging

    from controller import clock

    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # held since the fork
    die_with_parent()  # a zygote killed outright takes its children along
    for fd, target in zip(fds, STDIO, strict=True):
        os.dup2(fd, target)
    _close_fds(fds)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = os.getcwd()  # ``-m``'s first entry: the folder it starts in
    clock.use(clock.from_environment())  # read at the clock's import, from the zygote's
    logging.root.handlers.clear()  # none configured here, and none inherited
    # ``random`` re-seeds its instance in every fork itself; uuid and secrets read the system's.
    gc.enable()  # as a new interpreter starts; what the zygote built stays frozen


def _run_module(entry: str, args: list[str]) -> int:
    """Run ``entry`` as ``python -m ENTRY ARGS`` does, and answer the exit code it ends with (an
    uncaught exception's traceback printed, as the interpreter prints it)."""
    import runpy

    sys.argv[:] = [entry, *args]  # runpy puts the module's file first
    try:
        runpy.run_module(entry, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return _exit_code(exc.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # the interpreter's own way: die of SIGINT
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        return 1
    return 0


def _exit_code(code: object) -> int:
    """The process's exit code for ``sys.exit(code)``, as the interpreter makes it.

    >>> _exit_code(None), _exit_code(3), _exit_code("bad input")
    (0, 3, 1)
    """
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _finalize() -> None:
    """What the interpreter does at exit before it ends: wait for the threads that are not
    daemons, then run the exit functions (flushing logs, joining executors)."""
    import atexit

    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()


def _reap(children: Children, selector: selectors.BaseSelector) -> None:
    """Reap every child that has ended and answer its wait status to its caller."""
    while children.by_pid:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.remove(pid)
        cpu = usage.ru_utime + usage.ru_stime
        print(f"{pid}: ended {os.waitstatus_to_exitcode(status)}, {cpu:.2f} s of CPU", flush=True)
        if conn is None:
            continue
        with contextlib.suppress(KeyError):  # not listened to since its caller wrote
            selector.unregister(conn)
        with conn:
            _answer(conn, {"status": status})


def _kill(pid: int | None) -> None:
    """SIGKILL the child ``pid`` (not yet reaped: the pid is still its own)."""
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _end(children: Children) -> None:
    """SIGKILL and reap every child still running: the zygote leaves nothing behind."""
    for pid in list(children.by_pid):
        _kill(pid)
    for pid in list(children.by_pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        conn = children.remove(pid)
        if conn is not None:
            conn.close()


def _close_fds(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


if __name__ == "__main__":
    serve(sys.argv[1])
