"""The one place that makes AWS clients.

Called by the actions, the health reads, the control table and the sandbox. One client per
(service, region), cached and shared between threads (botocore clients are thread safe);
botocore's own retry modes; short connect and read timeouts so that a dead region fails fast
instead of hanging the controller. Endpoints come from the standard ``AWS_ENDPOINT_URL``
variables or, for the embedded emulator, from the manifest's endpoint map. Credentials come from
the standard chain only; against the emulator, which accepts any key, a fixed placeholder is used
so that no real credential is ever sent to it.

The clients are botocore's, made from a botocore session: a boto3 client is the same object, but
importing boto3 costs every CLI call about 0.1 s of CPU (it imports s3transfer and
multiprocessing) for its resources and S3 transfer helpers, which the controller never uses.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload
from urllib.parse import urlsplit

import botocore.config
import botocore.session

from controller import clock
from controller.aws.models import use_model_cache
from controller.contract import GLOBAL, HOME_AGENT, SANDBOX_RELAY_PATH, home_region, is_loopback
from controller.errors import SpecError

if TYPE_CHECKING:  # the [dev] extra's types-boto3 stubs; nothing of them at run time
    from types_boto3_apigatewayv2.client import ApiGatewayV2Client
    from types_boto3_cloudwatch.client import CloudWatchClient
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodbstreams.client import DynamoDBStreamsClient
    from types_boto3_events.client import EventBridgeClient
    from types_boto3_iam.client import IAMClient
    from types_boto3_kinesis.client import KinesisClient
    from types_boto3_lambda.client import LambdaClient
    from types_boto3_logs.client import CloudWatchLogsClient
    from types_boto3_route53.client import Route53Client
    from types_boto3_s3.client import S3Client
    from types_boto3_sqs.client import SQSClient
    from types_boto3_ssm.client import SSMClient
    from types_boto3_sts.client import STSClient

log = logging.getLogger(__name__)

GLOBAL_SERVICES = frozenset({"route53", "iam", "sts", "route53-recovery-control-config"})
#: Placeholder credentials for the loopback emulator only; they are not AWS credentials.
EMULATOR_KEY = "sandbox"

#: Proxy settings that make botocore ignore ``HTTP(S)_PROXY``: a loopback call stays on loopback.
NO_PROXY = {"http": "", "https": ""}

Hook = tuple[str, Callable[..., Any]]


class _Shared(NamedTuple):
    """What makes two clients alike: the key of the process's shared clients."""

    service: str
    region: str
    endpoint: str | None
    settings: AwsSettings
    hooks: tuple[Hook, ...]
    home: str | None


#: One botocore session, and the clients made from it, for the whole process. Making a session, and
#: a service's first client in it, costs tens of milliseconds of CPU (the service model is parsed
#: per session); a status read or a precheck that made its own would pay it on every call.
_SHARED_LOCK = threading.Lock()
_SHARED: dict[_Shared, Any] = {}
_SESSIONS: dict[bool, botocore.session.Session] = {}


def close_connections(endpoints: Iterable[str]) -> int:
    """Close the idle connections of every shared client that sends to one of ``endpoints`` (a
    sandbox's servers, gone down); the number of clients.

    The sandbox's servers keep a connection open between requests, as AWS's endpoints do: a
    client's pool would hold those of a sandbox that is gone, a file descriptor each, for the
    life of the process. A client closed here still works: its next call connects again.
    """
    urls = {url.rstrip("/") for url in endpoints}
    with _SHARED_LOCK:
        chosen = [made for key, made in _SHARED.items() if (key.endpoint or "").rstrip("/") in urls]
    for made in chosen:
        made.close()
    return len(chosen)


def emulator_session() -> botocore.session.Session:
    """A botocore session for the loopback emulator: its placeholder keys, and no AWS profile.

    An operator's ``AWS_PROFILE`` names a profile of theirs; the emulator needs none, and a
    profile missing from this machine's config must not stop the sandbox.

    >>> emulator_session().get_credentials().access_key == EMULATOR_KEY
    True
    """
    unset = (None, None, None, None)  # read from no config key, no variable, no default
    session = botocore.session.Session(session_vars={"profile": unset})
    session.set_credentials(EMULATOR_KEY, EMULATOR_KEY)
    return session


#: On a sandbox's scaled clock, a socket waits at least this long on the wall: the emulator's
#: answer is this machine's CPU, which does not shrink with k (a loopback call takes 5-50 ms).
#: At 0.3 s it bound at k = 10 where k = 5 does not: a watcher's 1.5 s read of a hung region
#: waited 3 AWS s (k = 5: 1.5), a fence's 2 s read 3 (k = 5: 2), so hang was detected and fenced
#: 1.5-4 AWS s later at k = 10. Under the bench's load at k = 10, 2 calls to live regions of
#: about 70,000 outlived 0.2 s (14 outlived 0.15), each a transient error to its caller.
SOCKET_WALL_FLOOR = 0.2


@dataclass(frozen=True)
class AwsSettings:
    """How clients talk to AWS: fail fast, retry with botocore's own modes."""

    connect_timeout: float = 2.0
    read_timeout: float = 4.0
    max_attempts: int = 3
    retry_mode: Literal["legacy", "standard", "adaptive"] = "standard"


class Guarded:
    """A shared client whose every request first runs ``guard``, which raises to stop it.

    A run's lease check (:mod:`controller.engine.guarded`) was a botocore ``before-call`` hook,
    and a hook is part of what makes a client (:class:`_Shared`): every run made its acting and
    fencing clients again (16-27 a failover of the example, each 5-15 ms of CPU, a tenth of a
    watcher's vCPU on AWS) and kept them for the life of the process. Here the run's guard wraps
    the clients every run shares. It runs once per call, before botocore validates, signs or
    sends anything, as the hook did (``before-call`` is emitted once per call, not per retry).

    >>> def stop() -> None:
    ...     raise PermissionError("no lease")
    >>> sqs = Clients(endpoints={"us-east-1": "http://127.0.0.1:9"}, guard=stop)
    >>> sqs.client("sqs", "us-east-1").list_queues()
    Traceback (most recent call last):
    PermissionError: no lease
    >>> sqs.client("sqs", "us-east-1").meta.region_name
    'us-east-1'
    """

    def __init__(self, client: Any, guard: Callable[[], None]) -> None:
        self._client = client
        self._guard = guard

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name not in self._client.meta.method_to_api_mapping:
            return found  # not a request: the client's meta, exceptions, ...
        guard = self._guard

        @functools.wraps(found)
        def call(*args: Any, **kwargs: Any) -> Any:
            guard()
            return found(*args, **kwargs)

        setattr(self, name, call)  # made once per operation
        return call


@dataclass
class Clients:
    """A cache of AWS clients, one per (service, region).

    Parameters
    ----------
    endpoints : region name (or ``"global"``) to endpoint URL, as the sandbox's manifest gives;
        empty on real AWS.
    settings : timeouts and retry mode.
    hooks : botocore event handlers registered on every client made (fault injection in tests).
    home : the region this controller runs in (default :func:`controller.contract.home_region`);
        its clients say so in their User-Agent, which the sandbox reads to tell a region's own
        callers from the others during a partition.

    Examples
    --------
    >>> clients = Clients(endpoints={"us-east-1": "http://127.0.0.1:1"})
    >>> clients.client("sqs", "us-east-1").meta.endpoint_url
    'http://127.0.0.1:1'
    """

    endpoints: Mapping[str, str] = field(default_factory=dict)
    settings: AwsSettings = field(default_factory=AwsSettings)
    hooks: Sequence[Hook] = ()
    home: str | None = field(default_factory=home_region)
    #: Run before every request (it raises to stop it): a run's lease check (see :class:`Guarded`).
    guard: Callable[[], None] | None = None
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)

    def derive(
        self,
        *,
        settings: AwsSettings | None = None,
        hook: Hook | None = None,
        guard: Callable[[], None] | None = None,
    ) -> Clients:
        """Clients to the same endpoints from the same home, with other ``settings``, one more
        ``hook`` and/or a ``guard``: the one way to make a variant (it has a cache of its own;
        clients alike in every respect are still made once, see :meth:`client`).

        >>> base = Clients(endpoints={"us-east-1": "http://127.0.0.1:1"})
        >>> fast = base.derive(settings=AwsSettings(max_attempts=1))
        >>> fast.endpoints == base.endpoints, fast.settings.max_attempts, fast.hooks == base.hooks
        (True, 1, True)
        """
        return replace(
            self,
            settings=settings or self.settings,
            hooks=(*self.hooks, hook) if hook else self.hooks,
            guard=guard or self.guard,
        )

    def http_url(self, url: str) -> str:
        """The URL a plain HTTP call to ``url`` (a region's health route) takes: ``url`` on AWS;
        with a sandbox's endpoints, through its network (the global endpoint's relay, which
        goes where the name resolves there), so that no call of a sandbox leaves this machine.

        >>> Clients().http_url("https://a.execute-api.us-east-1.amazonaws.com/health")
        'https://a.execute-api.us-east-1.amazonaws.com/health'
        >>> Clients(endpoints={"global": "http://127.0.0.1:5"}).http_url(
        ...     "https://a.execute-api.us-east-1.amazonaws.com/health")
        'http://127.0.0.1:5/_relay/a.execute-api.us-east-1.amazonaws.com/health'
        """
        if not self.endpoints:
            return url
        parts = urlsplit(url)
        relay = self.endpoint("route53", GLOBAL) or ""
        return f"{relay.rstrip('/')}{SANDBOX_RELAY_PATH}{parts.hostname or ''}{parts.path or '/'}"

    # One overload per service the controller and the sandbox call: a typed client each.
    @overload
    def client(self, service: Literal["apigatewayv2"], region: str) -> ApiGatewayV2Client: ...
    @overload
    def client(self, service: Literal["cloudwatch"], region: str) -> CloudWatchClient: ...
    @overload
    def client(self, service: Literal["dynamodb"], region: str) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["dynamodbstreams"], region: str) -> DynamoDBStreamsClient: ...
    @overload
    def client(self, service: Literal["events"], region: str) -> EventBridgeClient: ...
    @overload
    def client(self, service: Literal["iam"], region: str) -> IAMClient: ...
    @overload
    def client(self, service: Literal["kinesis"], region: str) -> KinesisClient: ...
    @overload
    def client(self, service: Literal["lambda"], region: str) -> LambdaClient: ...
    @overload
    def client(self, service: Literal["logs"], region: str) -> CloudWatchLogsClient: ...
    @overload
    def client(self, service: Literal["route53"], region: str) -> Route53Client: ...
    @overload
    def client(self, service: Literal["s3"], region: str) -> S3Client: ...
    @overload
    def client(self, service: Literal["sqs"], region: str) -> SQSClient: ...
    @overload
    def client(self, service: Literal["ssm"], region: str) -> SSMClient: ...
    @overload
    def client(self, service: Literal["sts"], region: str) -> STSClient: ...
    @overload
    def client(self, service: str, region: str) -> Any: ...

    def client(self, service: str, region: str) -> Any:
        """The cached client of ``service`` in ``region`` (global services go to ``global``)."""
        key = (service, region)
        cached = self._cache.get(key)
        if cached is None:
            # Clients alike in endpoint, settings and hooks share one (clients are thread safe).
            shared = _Shared(
                service,
                region,
                self.endpoint(service, region),
                self.settings,
                tuple(self.hooks),
                self.home,
            )
            with _SHARED_LOCK:  # a botocore session is not thread safe: make clients one at a time
                cached = _SHARED.get(shared)
                if cached is None:
                    cached = _SHARED[shared] = self._make(service, region)
            if self.guard is not None:
                cached = Guarded(cached, self.guard)
            self._cache[key] = cached
        return cached

    def endpoint(self, service: str, region: str) -> str | None:
        """The endpoint URL a client of ``service`` in ``region`` uses, or None for AWS's own.

        Raises
        ------
        SpecError
            The clients have endpoints and ``region`` has none, or one off loopback: the
            call would otherwise leave this machine, with whatever credentials the caller has.
        """
        if not self.endpoints:
            return None
        name = GLOBAL if service in GLOBAL_SERVICES or region == GLOBAL else region
        url = self.endpoints.get(name)
        if not url:
            raise SpecError(
                f"no endpoint for {name!r}: a sandbox manifest names every region's "
                "emulator, and no call of it may reach AWS",
                source="manifest",
                field=f"endpoints.{name}",
            )
        if not is_loopback(url):
            raise SpecError(
                f"{url} is not on loopback: a sandbox manifest's calls stay on this machine",
                source="manifest",
                field=f"endpoints.{name}",
            )
        return url

    def _make(self, service: str, region: str) -> Any:
        config = botocore.config.Config(
            # AWS seconds, on the wall at 1/k on a sandbox's scaled clock, never below the
            # emulator's own answer time (SOCKET_WALL_FLOOR): AWS's timeout, not k times it
            connect_timeout=clock.wall(
                clock.patient(self.settings.connect_timeout, SOCKET_WALL_FLOOR)
            ),
            read_timeout=clock.wall(clock.patient(self.settings.read_timeout, SOCKET_WALL_FLOOR)),
            # total_max_attempts counts the first try; botocore's max_attempts would not.
            retries={
                "total_max_attempts": self.settings.max_attempts,
                "mode": self.settings.retry_mode,
            },
            max_pool_connections=32,
            proxies=NO_PROXY if self.endpoints else None,
            user_agent_extra=f"{HOME_AGENT}/{self.home}" if self.home else None,
        )
        signing_region = "us-east-1" if region == GLOBAL else region
        kwargs: dict[str, Any] = {"region_name": signing_region, "config": config}
        endpoint = self.endpoint(service, region)
        if endpoint:
            kwargs["endpoint_url"] = endpoint
            kwargs["aws_access_key_id"] = EMULATOR_KEY
            kwargs["aws_secret_access_key"] = EMULATOR_KEY
        local = bool(endpoint)
        if local not in _SESSIONS:
            session = emulator_session() if local else botocore.session.Session()
            _SESSIONS[local] = use_model_cache(session)  # the models parsed once per machine
        # A service name known only at run time: the overloads of client() type the callers.
        client = _SESSIONS[local].create_client(service, **kwargs)
        for event, handler in self.hooks:
            client.meta.events.register(event, handler)
        log.debug("client %s/%s -> %s", service, region, endpoint or "aws")
        return client
