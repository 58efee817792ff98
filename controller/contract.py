"""Names that the controller, the sandbox and the Pulumi program must agree on, in one place.

Imported by the controller, by ``sandbox`` and by ``infra``; it imports nothing of theirs (only
the standard library), so a Lambda bundle, the emulator and ``pulumi up`` all read the same
spelling. A function's environment, its alias, the mode values, the name of the global services'
"region", how a host is compared and how a physical name is cut to a service's limit live here
and nowhere else.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

#: Where the sandbox writes the manifest and every verb that acts reads it by default.
DEFAULT_MANIFEST = Path(".failover") / "manifest.json"
#: Seconds ``failover status`` waits for a region's answers before calling it unreachable.
STATUS_DEADLINE_SECONDS = 4.0

#: The pseudo-region of the global services (Route 53, IAM, STS) in a manifest and the sandbox.
GLOBAL = "global"
#: The alias every function is invoked through; the controller acts on it, traffic reaches it.
ALIAS = "live"

# The environment every deployed function gets (the sandbox gives its in-process functions the
# same): who it is and where its modes live. Dependencies add ``env_key(kind, name[, "url"])``.
ENV_APP = "FAILOVER_APP"
ENV_COMPONENT = "FAILOVER_COMPONENT"
ENV_MODE_PARAMETER = "FAILOVER_MODE_PARAMETER"
ENV_COMPONENT_MODE_PARAMETER = "FAILOVER_COMPONENT_MODE_PARAMETER"

# The deployed watchers (controller.watchers.lambda_entry): where each finds its deployment, and the
# metric every evaluation emits (the dead-man alarm in infra/watchers.py watches it).
#: The control table (name, and its regions comma-separated) whose ``manifest`` item holds the
#: deployed manifest as JSON, written by ``pulumi up`` (a DynamoDB item: no size worry, and the
#: table every watcher must reach anyway).
ENV_WATCHER_CONTROL_TABLE = "FAILOVER_CONTROL_TABLE"
ENV_WATCHER_CONTROL_REGIONS = "FAILOVER_CONTROL_REGIONS"
#: The key (pk and sk) of that item, and its attribute holding the JSON.
MANIFEST_ITEM = "manifest"
#: The control table's lease item (pk and sk), which also holds the desired state: its
#: ``active`` attribute names the region that serves (``pulumi up`` reads it too).
LEASE_ITEM = "lease"
DESIRED_ACTIVE = "active"
#: A manifest file instead (the sandbox's watchers read the sandbox's own manifest.json).
ENV_WATCHER_MANIFEST = "FAILOVER_MANIFEST"
#: The topology file; default: ``topology.yaml`` shipped in the watcher's bundle.
ENV_WATCHER_SPEC = "FAILOVER_SPEC"
#: The CloudWatch namespace and metric of the watchers' evaluations (embedded metric format).
WATCHER_NAMESPACE = "Failover/Watchers"
WATCHER_METRIC = "Evaluations"
#: Seconds a watcher's evaluation is given on top of the watch interval before its invocation's
#: end: the next evaluation starts only when this much is left. The deployed watcher and the
#: sandbox's stand-in for Lambda (which sets the invocation's deadline) must agree on it.
WATCHER_MARGIN_SECONDS = 3.0
#: Seconds an evaluation needs at most: the health reads' deadline and its writes. One starts
#: only when it can end before its invocation's minute does.
WATCHER_EVALUATION_SECONDS = STATUS_DEADLINE_SECONDS + WATCHER_MARGIN_SECONDS
#: The seconds between two scheduled invocations, as the function is told (the sandbox, whose
#: tests shorten its schedule, tells its own).
ENV_WATCHER_PERIOD = "FAILOVER_WATCHER_PERIOD"
#: The Pulumi stack the watcher belongs to (its physical names carry it); empty in the sandbox.
ENV_WATCHER_STACK = "FAILOVER_STACK"
#: The URL of the watcher's chain queue in its region (:mod:`controller.watchers.chain`); unset:
#: a watcher that must evaluate again sleeps inside its invocation instead.
ENV_WATCHER_CHAIN_QUEUE = "FAILOVER_WATCHER_CHAIN_QUEUE"
#: The file name the topology has in the watcher's bundle.
WATCHER_SPEC_FILE = "topology.yaml"


class WatcherCadence(StrEnum):
    """How often each deployed watcher evaluates within its minute
    (:mod:`controller.watchers.cadence`)."""

    #: One watcher outside the active region evaluates every interval; the others once a minute,
    #: and every interval only while something is not calm.
    SENTINEL = "sentinel"
    #: Every watcher evaluates every interval through its minute (the cadence before issue #27:
    #: the cost bench's baseline).
    MINUTE = "minute"


@dataclass(frozen=True)
class WatcherSchedule:
    """How the deployed watchers are invoked, and for how long: the schedule's one place.

    ``infra/watchers.py`` deploys it (the rule, the function's timeout and memory, its
    asynchronous-invocation config), :mod:`controller.watchers.lambda_entry` loops by it.
    EventBridge invokes asynchronously: an event that meets a busy or throttled function waits in
    Lambda's queue (6 hours by default) and a failed one is retried twice, so a minute's invocation
    could run minutes late, beside the next. Here an event older than its minute is dropped, a
    failed one is not retried (the next minute's comes), and each invocation stops evaluating inside
    its minute; only a failover started by its last evaluation runs on, within the timeout.

    >>> s = WatcherSchedule()
    >>> s.expression, s.timeout_seconds(240), s.timeout_seconds(10_000)
    ('rate(1 minute)', 300, 900)
    >>> [t for t in range(0, 60, 10) if s.may_start(t)]  # a 10 s interval: six a minute
    [0, 10, 20, 30, 40, 50]
    """

    #: Seconds between two invocations: EventBridge's smallest rate.
    period_seconds: int = 60
    #: Lambda's smallest maximum event age: an invocation that did not start in its minute
    #: (the function throttled) is dropped, not run late.
    max_event_age_seconds: int = 60
    #: No retry of a failed invocation: the next minute's is the retry.
    retries: int = 0
    #: The function's memory (MB); its CPU share (of a vCPU at 1,769 MB) scales with it.
    #: Measured by ``bench/cost.py``: an invocation peaks at about 105 MB resident (a first
    #: evaluation that reads every component), a steady evaluation takes about 0.035 s of CPU,
    #: 0.3 s at 192 MB's share. 256 MB would put the example's watchers over $10 a month.
    memory_mb: int = 192
    #: Which watchers evaluate every interval (:class:`WatcherCadence`).
    cadence: WatcherCadence = WatcherCadence.SENTINEL
    #: The longest timeout given: 15 minutes, which every Lambda API version and provider
    #: accepts (botocore's model now documents 1,800 s).
    max_timeout_seconds: int = 900

    @property
    def expression(self) -> str:
        """The EventBridge schedule expression."""
        minutes = self.period_seconds // 60
        return f"rate({minutes} minute{'s' if minutes > 1 else ''})"

    def timeout_seconds(self, run_budget: float) -> int:
        """The function's timeout: its minute of evaluations, then a failover's whole budget
        (started by the minute's last evaluation), at most Lambda's longest."""
        return min(self.max_timeout_seconds, int(self.period_seconds + run_budget))

    def may_start(self, elapsed: float, period: float | None = None) -> bool:
        """Whether an evaluation starting ``elapsed`` seconds into the invocation ends inside
        its period (``period``: the one the function is told, else this schedule's)."""
        return elapsed + WATCHER_EVALUATION_SECONDS <= (period or self.period_seconds)


#: The deployed watchers' schedule.
WATCHER_SCHEDULE = WatcherSchedule()


class DegradedMode(StrEnum):
    """What a component answers when something it needs cannot be activated."""

    READ_ONLY = "read_only"
    QUEUE_WRITES = "queue_writes"
    STATIC = "static"
    UNAVAILABLE = "unavailable"


class Mode(StrEnum):
    """Every value a region's or a component's mode parameter can hold.

    ``normal`` is a component's "as deployed" (the region's mode holds); the degraded modes are
    :class:`DegradedMode`'s values.

    >>> Mode("fenced") is Mode.FENCED, Mode.READ_ONLY == DegradedMode.READ_ONLY
    (True, True)
    """

    ACTIVE = "active"
    STANDBY = "standby"
    FENCED = "fenced"
    NORMAL = "normal"
    READ_ONLY = DegradedMode.READ_ONLY.value
    QUEUE_WRITES = DegradedMode.QUEUE_WRITES.value
    STATIC = DegradedMode.STATIC.value
    UNAVAILABLE = DegradedMode.UNAVAILABLE.value


class FunctionAlarm(StrEnum):
    """The alarms ``infra/`` gives every function: the last part of their names
    (``<function>-<suffix>``), from which the controller knows what an alarm measures.

    >>> FunctionAlarm.of("orders-api-handler-us-east-1-throttles-high")
    <FunctionAlarm.THROTTLES_HIGH: 'throttles-high'>
    >>> FunctionAlarm.of("orders-dead-letters-0-us-east-1") is None
    True
    """

    ERRORS_HIGH = "errors-high"
    THROTTLES_HIGH = "throttles-high"
    DURATION_HIGH = "duration-high"
    #: Only for the functions an API routes to: traffic stopped reaching them.
    INVOCATIONS_LOW = "invocations-low"

    @classmethod
    def of(cls, alarm: str) -> FunctionAlarm | None:
        """The kind of a function's alarm named ``alarm``; None for any other alarm."""
        return next((kind for kind in cls if alarm.endswith(f"-{kind.value}")), None)


class FailMode(StrEnum):
    """How the sandbox makes a region fail: killed (calls refused) or stopped (calls hang)."""

    DOWN = "down"
    HANG = "hang"
    #: Cut off: it serves its own clients, but reaches no other region and none reaches it.
    PARTITION = "partition"


#: Where a sandbox's global endpoint relays a plain HTTP call (``<path><host>/<path>``) to where
#: the host resolves in the sandbox: the controller's HTTP probe of a region's health route.
SANDBOX_RELAY_PATH = "/_relay/"

#: The sandbox's scaled clock (:mod:`controller.clock`): AWS time = origin + k * (wall - origin),
#: one origin (wall epoch seconds) and one k for every process of a sandbox. Unset: the real clock.
ENV_TIME_ORIGIN = "FAILOVER_TIME_ORIGIN"
ENV_TIME_SCALE = "FAILOVER_TIME_SCALE"
#: The sandbox's default k: the deployed configuration at five times AWS's pace. Every wall
#: second of this machine's CPU counts k AWS seconds: measured on two cores (bench/detect.py),
#: the sandbox took 15-23% of each period at k = 5 and 53-58% at k = 10, where a loaded run's
#: own latency started to read as outages (all warm-up requests degraded, a failover to the
#: wrong standby).
DEFAULT_TIME_SCALE = 5.0
#: AWS seconds the demo and the drill keep their load on after the first client's resolver
#: moved: the last one may hold the old answer a TTL longer (60 s in the example), and full
#: service is the end of the last request not served at once.
DEMO_AFTER_SECONDS = 90.0
#: The demo's clients' requests per AWS second, by default (``failover demo --rate``; what
#: each costs: :class:`sandbox.demo.DemoOptions`).
DEMO_RATE = 2.0

#: Names the region a controller (or a watcher) runs in: it tries its own control region
#: first, and the sandbox lets it through when its region is cut off from the others.
ENV_HOME_REGION = "FAILOVER_HOME_REGION"
#: What every client of a controller with a home region adds to its User-Agent
#: (``failover-home/us-west-2``): where a call comes from, for the sandbox and CloudTrail.
HOME_AGENT = "failover-home"


#: Set by AWS Lambda (and the sandbox's runtime) in a function's environment: code runs in one.
ENV_LAMBDA_FUNCTION = "AWS_LAMBDA_FUNCTION_NAME"


def home_region(environ: Mapping[str, str] | None = None) -> str | None:
    """The region this controller runs in: ``FAILOVER_HOME_REGION``, else a Lambda
    function's own ``AWS_REGION``; None on an operator's machine.

    >>> home_region({"FAILOVER_HOME_REGION": "us-west-2"})
    'us-west-2'
    >>> home_region({"AWS_REGION": "eu-west-1"}) is None  # not in Lambda: not a home
    True
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_HOME_REGION):
        return env[ENV_HOME_REGION]
    if env.get(ENV_LAMBDA_FUNCTION) and env.get("AWS_REGION"):
        return env["AWS_REGION"]
    return None


def cache_folder() -> Path:
    """The controller's cache, kept between processes (hints and copies, never a verdict):
    ``$FAILOVER_CACHE_DIR``, else ``$XDG_CACHE_HOME/failover``, else ``~/.cache/failover``, else
    (no home at all: a function's sandbox) the temporary folder's ``failover``."""
    folder = os.environ.get("FAILOVER_CACHE_DIR")
    if folder:
        return Path(folder)
    cache = os.environ.get("XDG_CACHE_HOME")
    if not cache:
        try:
            cache = str(Path.home() / ".cache")
        except RuntimeError:
            import tempfile  # only here: contract imports little, and this is rare

            cache = tempfile.gettempdir()
    return Path(cache) / "failover"


def env_key(*parts: str) -> str:
    """An environment variable name from parts: upper case, anything else to underscores.

    >>> env_key("queue", "orders-queue", "url")
    'QUEUE_ORDERS_QUEUE_URL'
    """
    return re.sub(r"[^A-Z0-9_]", "_", "_".join(parts).upper())


def normalize_host(value: str) -> str:
    """A record value or an endpoint URL as a comparable host name.

    >>> normalize_host("https://abc.execute-api.us-east-1.amazonaws.com/prod")
    'abc.execute-api.us-east-1.amazonaws.com'
    >>> normalize_host("Api.Example.com.")
    'api.example.com'
    """
    if "://" in value:
        value = value.split("://", 1)[1]
    return value.split("/", 1)[0].rstrip(".").lower()


def is_loopback(where: str) -> bool:
    """True when ``where`` (a URL, or a bare host) names this machine's loopback interface.

    The one rule for "this call stays on this machine": a sandbox manifest's endpoints, the
    clients made from them, and the status page's own address all go by it.

    >>> is_loopback("http://127.0.0.1:5000"), is_loopback("[::1]"), is_loopback("localhost")
    (True, True, True)
    >>> is_loopback("https://sqs.us-west-2.amazonaws.com"), is_loopback("0.0.0.0")
    (False, False)
    """
    host = (urlsplit(where).hostname if "://" in where else where.strip("[]")) or ""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stack_qualifier(stack: str) -> str:
    """A Pulumi stack name as the part of a physical name that keeps two stacks apart.

    Lower case, anything but letters, digits and dashes to dashes, at most 16 characters (a
    longer name keeps a stable hash), so that ``<app>-<stack>-<component>-<region>`` still fits
    the shortest limits (64 for functions, roles and rules).

    >>> stack_qualifier("Prod_EU.1"), stack_qualifier("")
    ('prod-eu-1', '')
    >>> len(stack_qualifier("a-very-long-stack-name-for-review-42"))
    16
    """
    cleaned = re.sub(r"[^a-z0-9-]+", "-", stack.lower()).strip("-")
    return fit(cleaned, 16)


def fit(name: str, limit: int) -> str:
    """``name`` if it fits in ``limit`` characters, else a prefix plus a short stable hash.

    >>> fit("orders-worker-us-east-1", 64)
    'orders-worker-us-east-1'
    >>> len(fit("x" * 100, 64)), fit("x" * 100, 64) == fit("x" * 100, 64)
    (64, True)
    """
    if len(name) <= limit:
        return name
    import hashlib  # only for names too long (hashlib costs start-up)

    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}-{digest}"


__all__ = [
    "ALIAS",
    "DEFAULT_MANIFEST",
    "ENV_APP",
    "ENV_COMPONENT",
    "ENV_COMPONENT_MODE_PARAMETER",
    "ENV_MODE_PARAMETER",
    "GLOBAL",
    "STATUS_DEADLINE_SECONDS",
    "DegradedMode",
    "FailMode",
    "FunctionAlarm",
    "Mode",
    "env_key",
    "fit",
    "is_loopback",
    "normalize_host",
    "stack_qualifier",
]
