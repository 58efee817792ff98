"""The sandbox's data plane: regional endpoints, the router, pollers and the replicator, together.

Called by the demo and the drill. The emulator cannot run Lambda code, so the sandbox's Lambda
does (:mod:`.lambda_`: each function from its deployed bundle, in processes of its own), behind
one endpoint per region serving the API the program deployed there (:mod:`.endpoint`) and the
router that resolves the API's name as Route 53 failover would (:mod:`.router`); the deployed
event source mappings and schedules are played by :mod:`.pollers`, and the tables are copied
between regions by :mod:`.replicator`. Every invocation goes through one invoker.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from controller.aws import AwsSettings, Clients
from controller.errors import FailoverError, UsageError
from controller.topology import Kind
from controller.topology.kinds import ApiSpec, DnsSpec
from sandbox.cloudwatch.metrics import LambdaMetrics, Metrics
from sandbox.endpoint import RegionalEndpoint, deployed_routes
from sandbox.lambda_.invoke import Invoker
from sandbox.lifecycle import Sandbox
from sandbox.pollers import Pollers
from sandbox.replicator import Replicator
from sandbox.router import Resolver, Router
from sandbox.state import LOG_DIR

log = logging.getLogger(__name__)

#: The data plane's own AWS calls fail fast: a hung region must not stall the others.
FAST = AwsSettings(connect_timeout=0.5, read_timeout=1.5, max_attempts=1)


@dataclass
class DataPlaneSettings:
    """What the local data plane adds to the deployed stack: asynchronous replication's lag
    (AWS seconds; 0: a write is acknowledged once another region has it). Route 53's checks,
    the TTLs and the schedules are the deployed ones, on the sandbox's clock."""

    replication_lag: float = 0.0


@dataclass
class DataPlane:
    """Everything that serves traffic in the sandbox; ``start`` it, then call :attr:`url`."""

    box: Sandbox
    settings: DataPlaneSettings = field(default_factory=DataPlaneSettings)
    endpoints: dict[str, RegionalEndpoint] = field(default_factory=dict, init=False)
    _alive: dict[str, tuple[float, bool]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        topology, manifest = self.box.topology, self.box.manifest
        self.clients = Clients(endpoints=manifest.endpoints, settings=FAST)
        state_dir = self.box.state_dir
        self.invoker = Invoker(
            manifest.endpoints,
            state_dir / "lambda",
            state_dir / LOG_DIR / "functions",
            self.box.state.secret,
        )
        self.invoker.start()  # from this thread: the runtime's processes live as long as it
        # Lambda's and the API's metrics, into each region's own CloudWatch
        self.metrics = Metrics(lambda region: self.clients.client("cloudwatch", region))
        self.invoker.observers.append(LambdaMetrics(self.metrics))
        self.replicator = Replicator(
            topology, manifest, self.clients, lag=self.settings.replication_lag
        )
        self.pollers = Pollers(
            topology,
            manifest,
            self.clients,
            self.invoker,
        )
        found = next((n for n, c in topology.of_kind(Kind.API)), None)
        dns = next((c for _, c in topology.of_kind(Kind.DNS)), None)
        api = topology.components.get(found or "")
        if found is None or not isinstance(api, ApiSpec) or not isinstance(dns, DnsSpec):
            self.invoker.close()
            raise UsageError("the data plane needs an api and a dns component in the topology")
        self.api_name = found
        strong = self.settings.replication_lag == 0
        for region in topology.regions.all:
            api_id = manifest.ref(found, region).arn.rsplit("/", 1)[-1]
            self.endpoints[region] = RegionalEndpoint(
                region,
                deployed_routes(self.clients, region, api_id),
                self.invoker,
                self.alive,
                after_write=self.replicator.sync if strong else None,
                answered=functools.partial(self._answered, region, api_id),
            )
        self.resolver = Resolver(self.clients, manifest)
        self.router = Router(self.resolver, {r: e.url for r, e in self.endpoints.items()})

    @property
    def url(self) -> str:
        """Where clients send requests: the router."""
        return self.router.url

    def start(self) -> None:
        """Start endpoints, checks, router, replicator and pollers, each function warm in every
        region (one environment each, as provisioned concurrency would)."""
        self.warm()
        self.metrics.start()
        for endpoint in self.endpoints.values():
            endpoint.start()
        # Route 53's checkers (in the global server) now reach each regional API host here
        self.box.serve_api(
            {
                host: self.endpoints[region].url
                for host, region in self.resolver.host_region().items()
            }
        )
        self.router.start()
        self.replicator.start()
        self.pollers.start()
        log.info("data plane up: router %s", self.url)

    def stop(self) -> None:
        """Stop everything this started (nothing is left listening)."""
        self.pollers.stop()
        self.replicator.stop()
        self.router.stop()
        with contextlib.suppress(FailoverError):  # a sandbox already down has no checkers
            self.box.serve_api({})
        for endpoint in self.endpoints.values():
            endpoint.stop()
        self.metrics.stop()
        self.invoker.close()

    def _answered(self, region: str, api_id: str, status: int) -> None:
        """The HTTP API's metrics of one answer (``Count``, ``4xx``, ``5xx``, by API and
        stage), as API Gateway records them."""
        dims = {"ApiId": api_id, "Stage": "$default"}
        self.metrics.add(region, "AWS/ApiGateway", "Count", dims, 1.0)
        self.metrics.add(region, "AWS/ApiGateway", "4xx", dims, float(400 <= status < 500))
        self.metrics.add(region, "AWS/ApiGateway", "5xx", dims, float(status >= 500))

    def warm(self) -> None:
        """Start one environment of every function the topology declares in every region."""
        for region in self.box.topology.regions.all:
            for name, _ in self.box.topology.of_kind(Kind.FUNCTION):
                ref = self.box.manifest.ref(name, region)
                self.invoker.warm(region, ref.name, ref.alias)

    def alive(self, region: str) -> bool:
        """Does ``region``'s emulator answer within a second? (cached for a quarter second)"""
        now = time.monotonic()
        with self._lock:
            cached = self._alive.get(region)
            if cached and now - cached[0] < 0.25:
                return cached[1]
        url = self.box.manifest.endpoints[region] + "/moto-api/"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - loopback
                ok = bool(response.status < 500)
        except OSError:
            ok = False
        with self._lock:
            self._alive[region] = (time.monotonic(), ok)
        return ok

    def probe(self, region: str) -> bool:
        """GET the region's health route through its endpoint."""
        url = self.endpoints[region].url + self._health_path()
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 - loopback
                return 200 <= int(response.status) < 300
        except OSError:
            return False

    def http_probe(self, region: str, url: str) -> bool:
        """The watcher's HTTP probe: the same check, on the region's local endpoint."""
        return self.probe(region)

    def _health_path(self) -> str:
        api = self.box.topology.components[self.api_name]
        return str(getattr(api, "health_path", "/health"))
