"""Execution environments: the processes a function's invocations run in, and their pools.

Called by :mod:`sandbox.lambda_.invoke`. One :class:`Runtime` per invoker: a warm process
(:mod:`sandbox.lambda_.bootstrap`, an isolated interpreter that has imported only the runtime's
own packages) that forks an :class:`Environment` per request. An environment serves one
function in one region, one invocation at a time, for as long as it lives; a :class:`Pool` keeps a
function's environments, starts one when every other is busy (a cold start) up to its limit, and
lets an invocation wait for one beyond it. An invocation that outlives its deadline gets its
environment killed, as Lambda kills it at the function's timeout.

Every process here is a child of the invoker's process group (a region's watcher process and its
environments stop and die together) and is stopped by :meth:`Runtime.close`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import clock
from controller.errors import FailoverError
from sandbox.lambda_ import bootstrap

log = logging.getLogger(__name__)

BOOTSTRAP = Path(bootstrap.__file__).resolve()
#: How long the warm runtime may take to import boto3 on a loaded machine.
START_SECONDS = 60.0
#: How long an environment may take to import its handler module (Lambda's init phase: 10 s,
#: here more, for a loaded machine).
INIT_SECONDS = 60.0


class EnvironmentError_(FailoverError):
    """An environment could not be started."""


@dataclass(frozen=True)
class Init:
    """What an environment is made with: the function's code, handler and environment."""

    task_root: Path
    handler: str
    env: Mapping[str, str]
    log: Path


@dataclass(frozen=True)
class Answer:
    """What one invocation returned: the handler's result, or Lambda's error for it."""

    result: Any = None
    error: dict[str, Any] | None = None


class Environment:
    """One execution environment: a forked runtime process serving one function."""

    def __init__(self, conn: socket.socket, pid: int, init_error: dict[str, Any] | None) -> None:
        self.conn = conn
        self.pid = pid
        #: Lambda's init error (the handler's module does not import): every invocation fails
        #: with it, and the environment is not reused.
        self.init_error = init_error
        self.alive = init_error is None

    def invoke(self, request: dict[str, Any], deadline: float) -> Answer | None:
        """Run one invocation; None when the deadline passed first (the environment is then
        killed) or the process died."""
        try:
            bootstrap.send(self.conn, request)
            ready, _, _ = select.select([self.conn], [], [], clock.wall(clock.remaining(deadline)))
            got = bootstrap.receive(self.conn) if ready else None
        except OSError:
            got = None
        if got is None:
            self.kill()
            return None
        return Answer(result=got.get("ok"), error=got.get("error"))

    def kill(self) -> None:
        """End the environment at once."""
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.conn.close()


@dataclass
class Runtime:
    """The warm runtime process that forks environments.

    Start it (:meth:`start`) from a thread that lives as long as the invoker, the main thread:
    it dies with that thread (``PR_SET_PDEATHSIG``), and its environments with it."""

    layer: Path
    log: Path
    _proc: subprocess.Popen[bytes] | None = None
    _socket: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Start the runtime process now (else the first environment starts it)."""
        self._ready()

    def spawn(self, init: Init) -> Environment:
        """A new environment for ``init``, its handler imported (or its init error kept).

        Raises
        ------
        EnvironmentError_
            The runtime process or the environment did not start.
        """
        path = self._ready()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(INIT_SECONDS)
            conn.connect(bootstrap.address(path))
            bootstrap.send(
                conn,
                {
                    "task_root": str(init.task_root),
                    "handler": init.handler,
                    "env": dict(init.env),
                    "log": str(init.log),
                },
            )
            pid = (bootstrap.receive(conn) or {}).get("pid")
            done = bootstrap.receive(conn)
        except OSError as exc:
            conn.close()
            raise EnvironmentError_(f"an environment did not start: {exc}") from exc
        if pid is None or done is None:
            conn.close()
            raise EnvironmentError_(f"an environment ended during its init; see {init.log}")
        conn.settimeout(None)
        return Environment(conn, int(pid), done.get("init"))

    def _ready(self) -> str:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None and self._socket:
                return self._socket
            # Linux's abstract namespace (bootstrap.address): no file, none left behind when a
            # killed region's processes take the runtime with them (SIGKILL to their group)
            self._socket = f"@failover-lambda-{secrets.token_hex(8)}"
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with self.log.open("ab") as sink:
                self._proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-I",
                        "-S",
                        str(BOOTSTRAP),
                        "zygote",
                        self._socket,
                        str(self.layer),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=sink,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
                    cwd=str(self.log.parent),
                )
            assert self._proc.stdout is not None
            ready, _, _ = select.select([self._proc.stdout], [], [], START_SECONDS)
            line = self._proc.stdout.readline() if ready else b""
            if line.strip() != b"ready":
                self._proc.kill()
                raise EnvironmentError_(f"the Lambda runtime did not start; see {self.log}")
            return self._socket

    def close(self) -> None:
        """Stop the runtime process (each environment is killed by its pool)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None


@dataclass
class Pool:
    """A function's environments in one region: reused when idle, started when all are busy,
    up to ``limit``; beyond it an invocation waits for one."""

    runtime: Runtime
    init: Init
    limit: int
    _idle: list[Environment] = field(default_factory=list)
    _count: int = 0
    _closed: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def acquire(self, deadline: float) -> tuple[Environment | None, bool]:
        """An environment and whether it was just started (a cold start); None at the
        deadline. Raises :class:`EnvironmentError_` when a new one does not start."""
        with self._cond:
            while not self._idle and self._count >= self.limit:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):  # wall
                    return None, False
            if self._idle:
                return self._idle.pop(), False
            self._count += 1
        try:
            return self.runtime.spawn(self.init), True
        except BaseException:
            self._gone()
            raise

    def release(self, env: Environment) -> None:
        """Give ``env`` back (or count it gone when it died or failed its init)."""
        if env.alive and not self._closed:
            with self._cond:
                self._idle.append(env)
                self._cond.notify()
        else:
            env.kill()
            self._gone()

    def _gone(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify()

    def close(self) -> None:
        """Kill every idle environment (a busy one is killed when it is given back)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for env in idle:
            env.kill()
