"""The function runtime: each function's own code, run in-process, once per region.

Called by the data plane. Lambda would give each function its environment (names only) and run
its handler; here one process serves every region, so instead of the process environment each
(function, region) gets its settings as a mapping and its own boto3 session pointed at that
region's emulator. A function module exposes ``build(env, session, endpoint_url)`` (its service,
built once and kept warm, as a Lambda container keeps its globals) and ``handle(event, service)``
(what its Lambda handler does with an injected service). Environment names are the Pulumi
program's: ``FAILOVER_*`` and one ``KIND_COMPONENT`` per dependency.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3.session
import botocore.config

from controller.aws import emulator_session
from controller.contract import (
    ENV_APP,
    ENV_COMPONENT,
    ENV_COMPONENT_MODE_PARAMETER,
    ENV_MODE_PARAMETER,
    HOME_AGENT,
    env_key,
)
from controller.errors import UsageError
from controller.topology import Kind, Topology
from controller.topology.kinds import FunctionSpec
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]


def lambda_env(
    topology: Topology, manifest: Manifest, component: str, region: str
) -> dict[str, str]:
    """The environment Lambda would give ``component`` in ``region``: names, never secrets."""
    spec = topology.components[component]
    regional = manifest.regions[region]
    ref = regional.components[component]
    env = {
        ENV_APP: topology.app,
        ENV_COMPONENT: component,
        ENV_MODE_PARAMETER: regional.mode_parameter,
        ENV_COMPONENT_MODE_PARAMETER: ref.mode_parameter
        or topology.component_mode_parameter(component, region),
        "POWERTOOLS_SERVICE_NAME": component,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "AWS_REGION": region,
    }
    for dep in spec.all_dependencies():
        dep_ref = regional.components.get(dep)
        if dep_ref is None:
            continue
        env[env_key(dep_ref.kind, dep)] = dep_ref.name
        if dep_ref.queue_url:
            env[env_key(dep_ref.kind, dep, "url")] = dep_ref.queue_url
    return env


class FunctionRuntime:
    """Loads each function's code once and keeps one warm service per (function, region)."""

    def __init__(
        self, topology: Topology, manifest: Manifest, *, read_timeout: float = 1.5
    ) -> None:
        self.topology = topology
        self.manifest = manifest
        self.config = botocore.config.Config(
            connect_timeout=0.5,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 2, "mode": "standard"},
            max_pool_connections=32,
        )
        self._modules: dict[str, ModuleType] = {}
        self._services: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def invoke(self, region: str, component: str, event: dict[str, Any]) -> Any:
        """Run ``component``'s handler in ``region`` with ``event``; its response."""
        module, service = self._service(region, component)
        return module.handle(event, service)

    def warm(self) -> None:
        """Load every function's code and build its service in every region now, as
        provisioned concurrency would, so the first requests do not pay for it."""
        for name, spec in self.topology.components.items():
            if isinstance(spec, FunctionSpec):
                for region in self.topology.regions.all:
                    self._service(region, name)

    def _service(self, region: str, component: str) -> tuple[ModuleType, Any]:
        with self._lock:
            spec = self.topology.components[component]
            if not isinstance(spec, FunctionSpec):
                raise UsageError(f"{component} is a {spec.kind}, not a function")
            module = self._module(spec)
            key = (component, region)
            if key not in self._services:
                # The handlers are Lambda code: they take a boto3 session, as in Lambda.
                session = boto3.session.Session(
                    region_name=region, botocore_session=emulator_session()
                )
                env = lambda_env(self.topology, self.manifest, component, region)
                # Its calls come from its region: a partitioned region still serves its own.
                here = botocore.config.Config(user_agent_extra=f"{HOME_AGENT}/{region}")
                self._services[key] = module.build(
                    env,
                    session=session,
                    endpoint_url=self.manifest.endpoints[region],
                    config=self.config.merge(here),
                )
                _logs_to_stderr()
            return module, self._services[key]

    def _module(self, spec: FunctionSpec) -> ModuleType:
        name, _, _ = spec.handler.rpartition(".")
        code = (REPO / spec.code) if not Path(spec.code).is_absolute() else Path(spec.code)
        path = code / f"{name.replace('.', '/')}.py"
        key = str(path)
        if key not in self._modules:
            if not path.exists():
                raise UsageError(f"function code {path} not found (handler {spec.handler})")
            package = str(code)
            if package not in sys.path:
                sys.path.insert(0, package)  # the code's own sibling imports, as in Lambda
            loaded = importlib.util.spec_from_file_location(f"_fn_{code.name}_{name}", path)
            if loaded is None or loaded.loader is None:
                raise UsageError(f"cannot load {path}")
            module = importlib.util.module_from_spec(loaded)
            loaded.loader.exec_module(module)
            self._modules[key] = module
        return self._modules[key]


#: Where the functions' log lines go: the process's logging, so that the CLI decides where
#: (stderr, JSON lines with --log-json, or the demo's log file while its live display runs).
FUNCTION_LOGS = logging.getLogger("sandbox.function_logs")


class _ToLogging(logging.Handler):
    """A function's log line, formatted as powertools does, handed to :data:`FUNCTION_LOGS`."""

    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__()
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            FUNCTION_LOGS.log(record.levelno, "%s", self.format(record))
        except Exception:
            self.handleError(record)


def _logs_to_stderr() -> None:
    """Take the functions' log lines off stdout (powertools writes them there, which Lambda
    sends to CloudWatch Logs): the CLI's stdout carries only its own output, such as
    ``failover demo --json``'s report. They go to the process's logging instead, which the CLI
    sends to stderr, or to the demo's log file (a hung region makes dozens of them)."""
    known = logging.Logger.manager.loggerDict.values()
    for logger in (lg for lg in known if isinstance(lg, logging.Logger)):
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                logger.removeHandler(handler)
                logger.addHandler(_ToLogging(handler.formatter))


__all__ = ["FunctionRuntime", "Kind", "lambda_env"]
