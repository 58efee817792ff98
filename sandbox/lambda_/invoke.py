"""The one invoke path: every invocation in the sandbox, by whatever invokes it, goes through here.

Called by the data plane (the regional APIs, the queue and stream pollers, the schedules) and by
each region's watcher process (its schedule). :meth:`Invoker.invoke` takes a region, a function
(a name or an ARN, with its qualifier: the alias an API or a mapping names) and an event; it reads
the function's deployed configuration back from the emulator (handler, runtime, timeout, memory,
environment, code digest: :class:`FunctionConfig`), runs the invocation in one of the function's
execution environments (:mod:`sandbox.lambda_.environments`), started from the deployed zip with
Lambda's environment, and kills it at the configured timeout. Each invocation is an
:class:`Invocation` (its outcome, duration, whether it was a cold start), counted per function and
handed to the observers, where AWS's own bookkeeping of invocations attaches.

Reserved concurrency is Lambda's limit: an invocation that finds as many of the function's
invocations running in the region as it reserves (none, for a function fenced at 0) is throttled
at once (:class:`Throttled`, Lambda's ``TooManyRequestsException``), counted as the function's
throttle and handed to the observers, never run; the reservation is read again at most every
:data:`RESERVED_MAX_AGE` seconds, as a ``PutFunctionConcurrency`` takes effect at once on AWS.
The observers get every invocation and every throttle, which is where Lambda's metrics attach
(:class:`sandbox.cloudwatch.metrics.LambdaMetrics`).

Not played yet: the memory limit (given to the function, not enforced). The Python is this
environment's, whatever runtime the function names.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from controller import clock
from controller.aws import AwsSettings, Clients
from controller.errors import FailoverError
from sandbox.lambda_ import bootstrap, code
from sandbox.lambda_.environments import Init, Pool, Runtime

log = logging.getLogger(__name__)

#: Environments a function may have at once in one region, unless its reserved concurrency is
#: lower (the sandbox's limit, not AWS's: an account runs a thousand; beyond it an invocation
#: waits for one to be free).
LIMIT = 10
#: How long an invocation may wait for a free environment beyond the function's timeout.
WAIT_SECONDS = 10.0
#: On a scaled clock, an invocation runs at least this long on the wall before it is killed.
RUN_WALL_FLOOR = 10.0
#: Reading a function's configuration: fail fast, as any call of the data plane.
READ = AwsSettings(connect_timeout=1.0, read_timeout=5.0, max_attempts=2)
#: How long a function's reserved concurrency, read back, is trusted.
RESERVED_MAX_AGE = 1.0
#: Placeholder credentials, as Lambda gives a function its role's (the emulator takes any).
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_SESSION_TOKEN": "sandbox",
}


class Outcome(StrEnum):
    """How an invocation ended."""

    OK = "ok"
    #: The handler raised, or the function failed its init (its module does not import).
    ERROR = "error"
    #: Killed at the function's timeout.
    TIMEOUT = "timeout"
    #: Never run: as many invocations ran as the function reserves (Lambda's 429).
    THROTTLED = "throttled"


class Throttled(FailoverError):
    """Lambda refused the invocation: the function's reserved concurrency is in use (0: it is
    fenced). Synchronous callers get it as ``TooManyRequestsException``; an asynchronous event
    goes back to Lambda's queue and is retried while its age allows."""


@dataclass(frozen=True)
class FunctionConfig:
    """A function's configuration as deployed, read back from the emulator."""

    region: str
    name: str
    qualifier: str
    arn: str
    version: str
    handler: str
    runtime: str
    timeout: float
    memory: int
    environment: Mapping[str, str]
    sha256: str
    reserved: int | None


@dataclass(frozen=True)
class Invocation:
    """One invocation: who, how it ended, how long it ran, and what it returned."""

    region: str
    function: str
    source: str
    outcome: Outcome
    started: float
    duration: float
    cold: bool
    result: Any = None
    error: dict[str, Any] | None = None
    #: The function's invocations running in its region when this one started (itself
    #: included): Lambda's ``ConcurrentExecutions``.
    concurrent: int = 0
    #: The alias or version it was invoked through ("$LATEST": none).
    qualifier: str = "$LATEST"

    @property
    def ok(self) -> bool:
        """True when the handler returned."""
        return self.outcome is Outcome.OK

    @property
    def error_type(self) -> str:
        """Lambda's ``errorType`` ("" when it returned)."""
        return str((self.error or {}).get("errorType", ""))


Observer = Callable[[Invocation], None]


def split(function: str, qualifier: str | None = None) -> tuple[str | None, str, str]:
    """``(region, name, qualifier)`` of a function name or ARN (qualifier ``$LATEST`` if none).

    >>> split("arn:aws:lambda:us-east-1:123456789012:function:orders-api:live")
    ('us-east-1', 'orders-api', 'live')
    >>> split("orders-api", "live")
    (None, 'orders-api', 'live')
    """
    if function.startswith("arn:"):
        parts = function.split(":")
        return parts[3], parts[6], parts[7] if len(parts) > 7 else qualifier or "$LATEST"
    return None, function, qualifier or "$LATEST"


@dataclass
class Invoker:
    """Invokes the sandbox's functions (see the module's docstring); :meth:`close` it.

    ``endpoints``: every region's server and ``global``; ``work``: where code is unpacked and the
    runtime's packages laid out; ``logs``: where each function's output goes (its log group: a
    file per function, ``<name>.log``, or the one ``log_files`` names); ``secret``: the
    sandbox's, which the servers' code downloads need; ``told``: variables a function is given
    over its deployed ones, by function name (what the sandbox plays differently from the
    deployment, e.g. a watcher's shortened schedule, said to the function).
    """

    endpoints: Mapping[str, str]
    work: Path
    logs: Path
    secret: str
    log_files: Mapping[str, Path] = field(default_factory=dict)
    told: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    observers: list[Observer] = field(default_factory=list)
    counts: dict[tuple[str, str], Counter[Outcome]] = field(default_factory=dict)
    _configs: dict[tuple[str, str, str], FunctionConfig] = field(default_factory=dict)
    _pools: dict[tuple[str, str, str], Pool] = field(default_factory=dict)
    _running: Counter[tuple[str, str]] = field(default_factory=Counter)
    _reserved: dict[tuple[str, str], tuple[float, int | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.work, self.logs = self.work.resolve(), self.logs.resolve()
        self.clients = Clients(endpoints=dict(self.endpoints), settings=READ)
        self.runtime = Runtime(layer=code.runtime_layer(self.work), log=self.logs / "runtime.log")

    def start(self) -> None:
        """Start the warm runtime now, from this thread (it lives as long as this thread)."""
        self.runtime.start()

    def invoke(
        self,
        region: str,
        function: str,
        event: Any,
        *,
        qualifier: str | None = None,
        source: str = "",
        wait: float | None = None,
    ) -> Invocation:
        """Run ``function`` in ``region`` with ``event``, as Lambda's ``Invoke`` does;
        ``wait``: how long it may wait for a free environment (default: the function's timeout
        and :data:`WAIT_SECONDS`; an asynchronous event waits no longer than its age allows).

        Raises
        ------
        Throttled
            The function's reserved concurrency is in use (0: always): it did not run.
        FailoverError
            The function's configuration or code cannot be read (its region does not answer),
            or no environment was free or could be started: the invocation did not happen.
        """
        pool, config = self._pool(region, function, qualifier)
        key = (config.region, config.name)
        reserved = self.reserved(config)
        with self._lock:
            running = self._running[key]
            if reserved is None or running < reserved:
                self._running[key] = running = running + 1
            else:
                running = -1
        if running < 0:
            self._count(
                Invocation(
                    region,
                    config.name,
                    source,
                    Outcome.THROTTLED,
                    clock.now(),
                    0.0,
                    False,
                    qualifier=config.qualifier,
                )
            )
            raise Throttled(
                f"{config.name} in {region}: TooManyRequestsException (reserved concurrency "
                f"{reserved} in use)"
            )
        try:
            return self._run(pool, config, event, source, wait, running)
        finally:
            with self._lock:
                self._running[key] -= 1

    def _run(
        self,
        pool: Pool,
        config: FunctionConfig,
        event: Any,
        source: str,
        wait: float | None,
        running: int,
    ) -> Invocation:
        region = config.region
        # an environment is waited for on the wall (the sandbox's CPU starts it); ``wait`` is an
        # asynchronous event's age left, AWS seconds
        budget = clock.wall(wait) if wait is not None else clock.wall(config.timeout) + WAIT_SECONDS
        env, cold = pool.acquire(time.monotonic() + budget)
        if env is None:
            raise FailoverError(f"{config.name} in {region}: no free environment")
        begun = clock.monotonic()
        error: dict[str, Any] | None
        try:
            if env.init_error is not None:
                outcome, result, error = Outcome.ERROR, None, env.init_error
            else:
                # killed at its timeout (AWS seconds), but never sooner than a wall floor: its
                # code runs on this machine's CPU, which is not AWS's time and does not shrink
                until = begun + clock.patient(config.timeout, RUN_WALL_FLOOR)
                answer = env.invoke(self._request(config, event), until)
                if answer is None:
                    outcome, result = Outcome.TIMEOUT, None
                    error = {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"Task timed out after {config.timeout:.2f} seconds",
                    }
                else:
                    outcome = Outcome.OK if answer.error is None else Outcome.ERROR
                    result, error = answer.result, answer.error
        finally:
            pool.release(env)
        done = Invocation(
            region,
            config.name,
            source,
            outcome,
            clock.now(),
            clock.monotonic() - begun,
            cold,
            result,
            error,
            running,
            config.qualifier,
        )
        self._count(done)
        return done

    def running(self, region: str, function: str) -> int:
        """How many invocations of ``function`` (a name) run in ``region`` now."""
        with self._lock:
            return self._running[(region, function)]

    def reserved(self, config: FunctionConfig) -> int | None:
        """The function's reserved concurrency now (None: none), read back at most every
        :data:`RESERVED_MAX_AGE` seconds; when it cannot be read, the last one known."""
        key = (config.region, config.name)
        with self._lock:
            known = self._reserved.get(key, (0.0, config.reserved))
        if time.monotonic() - known[0] < RESERVED_MAX_AGE:
            return known[1]
        try:
            got = (
                self.clients.client("lambda", config.region)
                .get_function_concurrency(FunctionName=config.name)
                .get("ReservedConcurrentExecutions")
            )
        except Exception:  # its region does not answer: the invocation finds out on its own
            with self._lock:  # (and the next one does not wait for the read again at once)
                self._reserved[key] = (time.monotonic(), known[1])
            return known[1]
        value = None if got is None else int(got)
        with self._lock:
            self._reserved[key] = (time.monotonic(), value)
        return value

    def warm(self, region: str, function: str, qualifier: str | None = None) -> None:
        """Start one environment of ``function`` now, as provisioned concurrency would."""
        pool, config = self._pool(region, function, qualifier)
        env, _ = pool.acquire(time.monotonic() + clock.wall(config.timeout) + WAIT_SECONDS)
        if env is not None:
            pool.release(env)

    def config(self, region: str, function: str, qualifier: str | None = None) -> FunctionConfig:
        """The deployed configuration of ``function`` in ``region`` (read once)."""
        where, name, qualifier = split(function, qualifier)
        key = (where or region, name, qualifier)
        with self._lock:
            cached = self._configs.get(key)
        if cached is not None:
            return cached
        lam = self.clients.client("lambda", key[0])
        try:
            got = lam.get_function(FunctionName=name, Qualifier=qualifier)["Configuration"]
            reserved = lam.get_function_concurrency(FunctionName=name).get(
                "ReservedConcurrentExecutions"
            )
        except Exception as exc:
            raise FailoverError(
                f"{name} in {key[0]}: its configuration cannot be read: {exc}"
            ) from exc
        made = FunctionConfig(
            region=key[0],
            name=name,
            qualifier=qualifier,
            arn=f"{got['FunctionArn'].split(':function:')[0]}:function:{name}:{qualifier}",
            version=str(got.get("Version", "$LATEST")),
            handler=str(got["Handler"]),
            runtime=str(got.get("Runtime", "")),
            timeout=float(got.get("Timeout", 3)),
            memory=int(got.get("MemorySize", 128)),
            environment=dict((got.get("Environment") or {}).get("Variables") or {}),
            sha256=str(got["CodeSha256"]),
            reserved=None if reserved is None else int(reserved),
        )
        with self._lock:
            self._configs[key] = made
        return made

    def close(self) -> None:
        """Kill every environment and the runtime."""
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()
        self.runtime.close()

    def _pool(
        self, region: str, function: str, qualifier: str | None
    ) -> tuple[Pool, FunctionConfig]:
        config = self.config(region, function, qualifier)
        key = (config.region, config.name, config.version)  # an alias runs its version's
        with self._lock:
            pool = self._pools.get(key)
        if pool is not None:
            return pool, config
        root = code.task_root(
            self.work,
            self.endpoints[config.region],
            config.region,
            config.name,
            config.qualifier,
            config.sha256,
            self.secret,
        )
        limit = max(1, min(LIMIT, config.reserved or LIMIT))
        log_file = self.log_files.get(config.name) or self.logs / f"{config.name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        init = Init(root, config.handler, self._environment(config, root), log_file)
        with self._lock:
            pool = self._pools.setdefault(key, Pool(self.runtime, init, limit))
        return pool, config

    def _environment(self, config: FunctionConfig, root: Path) -> dict[str, str]:
        """The function's variables (and what it is ``told``), then what Lambda sets (its own
        names win)."""
        stream = f"{clock.utcnow():%Y/%m/%d}/[{config.version}]{secrets.token_hex(16)}"
        return {
            **config.environment,
            **self.told.get(config.name, {}),
            **CREDENTIALS,
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "_HANDLER": config.handler,
            "LAMBDA_TASK_ROOT": str(root),
            "LAMBDA_RUNTIME_DIR": str(self.runtime.layer),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            bootstrap.NETWORK_ENV: json.dumps(dict(self.endpoints)),
            # the sandbox's world runs on its clock; AWS's runtime on the real one (nothing)
            **clock.current().environment(),
        }

    @staticmethod
    def _request(config: FunctionConfig, event: Any) -> dict[str, Any]:
        root = f"1-{int(clock.now()):08x}-{secrets.token_hex(12)}"
        trace = f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"
        return {
            "id": str(uuid.uuid4()),
            "event": event,
            "remaining_ms": int(config.timeout * 1000),
            "arn": config.arn,
            "trace": trace,
        }

    def _count(self, done: Invocation) -> None:
        with self._lock:
            self.counts.setdefault((done.region, done.function), Counter())[done.outcome] += 1
            observers = list(self.observers)
        if not done.ok and done.outcome is not Outcome.THROTTLED:
            log.info(
                "%s in %s: %s (%s)",
                done.function,
                done.region,
                done.error_type,
                (done.error or {}).get("errorMessage", ""),
            )
        for observe in observers:
            observe(done)
