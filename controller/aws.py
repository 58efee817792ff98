"""The one place that makes AWS clients.

Called by ``actions/``, ``health``, ``journal`` and the sandbox. One client per (service, region),
cached and shared between threads (botocore clients are thread safe); botocore's own retry modes;
short connect and read timeouts so that a dead region fails fast instead of hanging the
controller. Endpoints come from the standard ``AWS_ENDPOINT_URL`` variables or, for the embedded
emulator, from the manifest's endpoint map. Credentials come from the standard chain only; against
the emulator, which accepts any key, a fixed placeholder is used so that no real credential is
ever sent to it.

The clients are botocore's, made from a botocore session: a boto3 client is the same object, but
importing boto3 costs every CLI call about 0.1 s of CPU (it imports s3transfer and
multiprocessing) for its resources and S3 transfer helpers, which the controller never uses.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import urlsplit

import botocore.config
import botocore.exceptions
import botocore.session

from controller.contract import GLOBAL, HOME_AGENT, home_region
from controller.errors import (
    ActionError,
    AwsError,
    FailoverError,
    PermanentStepError,
    SpecError,
    TransientStepError,
)

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

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ResourceConflictException",
        # MRSC: another region writes the same item at once; AWS says retry (a 400)
        "ReplicatedWriteConflictException",
        "TransactionInProgressException",
        "ResourceInUseException",
    }
)

NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "ResourceNotFound",
        "NotFoundException",
        "NotFound",
        "404",
        "NoSuchEntity",
        "NoSuchHostedZone",
        "NoSuchHealthCheck",
        "ParameterNotFound",
        "NoSuchBucket",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)
#: Proxy settings that make botocore ignore ``HTTP(S)_PROXY``: a loopback call stays on loopback.
NO_PROXY = {"http": "", "https": ""}

Hook = tuple[str, Callable[..., Any]]

#: One botocore session, and the clients made from it, for the whole process. Making a session, and
#: a service's first client in it, costs tens of milliseconds of CPU (the service model is parsed
#: per session); a status read or a precheck that made its own would pay it on every call.
_SHARED_LOCK = threading.Lock()
_SHARED: dict[tuple[Any, ...], Any] = {}
_SESSIONS: dict[bool, botocore.session.Session] = {}


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


@dataclass(frozen=True)
class AwsSettings:
    """How clients talk to AWS: fail fast, retry with botocore's own modes."""

    connect_timeout: float = 2.0
    read_timeout: float = 4.0
    max_attempts: int = 3
    retry_mode: Literal["legacy", "standard", "adaptive"] = "standard"


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
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def emulated(self) -> bool:
        """True when every call goes to the loopback emulator."""
        return bool(self.endpoints)

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
            shared = (
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
            self._cache[key] = cached
        return cached

    def endpoint(self, service: str, region: str) -> str | None:
        """The endpoint URL a client of ``service`` in ``region`` uses, or None for AWS's own.

        Raises
        ------
        SpecError
            The clients are emulated and ``region`` has no endpoint, or one off loopback: the
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
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
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
        emulated = bool(endpoint)
        if emulated not in _SESSIONS:
            _SESSIONS[emulated] = emulator_session() if emulated else botocore.session.Session()
        # A service name known only at run time: the overloads of client() type the callers.
        client = _SESSIONS[emulated].create_client(service, **kwargs)
        for event, handler in self.hooks:
            client.meta.events.register(event, handler)
        log.debug("client %s/%s -> %s", service, region, endpoint or "aws")
        return client


def is_loopback(url: str) -> bool:
    """True when ``url`` names this machine's loopback interface.

    >>> is_loopback("http://127.0.0.1:5000"), is_loopback("https://sqs.us-west-2.amazonaws.com")
    (True, False)
    """
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Decoded:
    """What a botocore error says, read once: the one decoder of the controller.

    ``code`` and ``status`` come from the service's answer (empty and 0 when there was none).
    """

    code: str
    status: int
    message: str
    operation: str
    #: The endpoint did not answer at all (refused, or timed out).
    unreachable: bool
    #: A retry may help: throttled, 5xx, unreachable.
    transient: bool
    #: The resource does not exist.
    missing: bool
    #: The caller is not allowed (or not known).
    denied: bool
    #: The request was sent and no answer came back (read timeout, connection cut): the
    #: service may have applied it. An error answer, or a connection never made, is not lost.
    lost: bool = False


def decode(exc: BaseException) -> Decoded | None:
    """Read a botocore error once; None when ``exc`` is not one.

    >>> decode(botocore.exceptions.ConnectTimeoutError(endpoint_url="x")).unreachable
    True
    >>> decode(ValueError()) is None
    True
    """
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        missing = code in NOT_FOUND_CODES or code.endswith("NotFound") or code.startswith("NoSuch")
        return Decoded(
            code,
            status,
            str(err.get("Message", "")),
            exc.operation_name,
            unreachable=False,
            transient=code in TRANSIENT_CODES or status >= 500 or status == 429,
            missing=missing,
            denied=code in DENIED_CODES,
        )
    unreachable = isinstance(
        exc,
        botocore.exceptions.ConnectionError
        | botocore.exceptions.ConnectionClosedError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.EndpointConnectionError,
    )
    if unreachable or isinstance(exc, botocore.exceptions.BotoCoreError):
        return Decoded(
            type(exc).__name__,
            0,
            str(exc),
            "",
            unreachable=unreachable,
            transient=True,
            missing=False,
            denied=isinstance(exc, botocore.exceptions.NoCredentialsError),
            lost=answer_lost(exc),
        )
    return None


def answer_lost(exc: BaseException) -> bool:
    """True when ``exc`` says a request was sent and its answer never came: it may have been
    applied (or may still be, when it waits in a hung server's socket).

    botocore raises ``EndpointConnectionError``, ``ConnectTimeoutError`` and
    ``ProxyConnectionError`` before a connection exists, so before the request leaves; a read
    timeout, a connection closed before the answer, a broken answer or any other HTTP client
    error come after it may have left (an SSL error too: it can end a connection mid-answer).

    >>> answer_lost(botocore.exceptions.ReadTimeoutError(endpoint_url="x"))
    True
    >>> answer_lost(botocore.exceptions.ConnectTimeoutError(endpoint_url="x"))
    False
    """
    never_sent = (
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ProxyConnectionError
    )
    if isinstance(exc, never_sent):
        return False
    return isinstance(exc, botocore.exceptions.HTTPClientError | botocore.exceptions.SSLError)


def error_code(exc: BaseException) -> str:
    """The service's error code of a botocore error (``""`` for anything else)."""
    decoded = decode(exc)
    return decoded.code if decoded and decoded.status else ""


def classify(exc: BaseException, *, component: str = "", region: str = "") -> Exception:
    """Map a botocore error to a transient or a permanent step error.

    Throttling, 5xx, timeouts and unreachable endpoints are transient (a retry may help);
    everything else (missing resource, access denied, validation) is permanent.

    >>> classify(botocore.exceptions.ConnectTimeoutError(endpoint_url="x")).__class__.__name__
    'TransientStepError'
    """
    if isinstance(exc, TransientStepError | PermanentStepError):
        return exc
    if isinstance(exc, FailoverError) and not isinstance(exc, ActionError | AwsError):
        return exc  # ours, raised on purpose below the call (a lost lease): not a step error
    decoded = decode(exc)
    if decoded is not None and decoded.unreachable:
        return TransientStepError(
            f"unreachable: {decoded.code}", component=component, region=region, unreachable=True
        )
    if isinstance(exc, ConnectionError | TimeoutError):
        return TransientStepError(
            f"unreachable: {type(exc).__name__}",
            component=component,
            region=region,
            unreachable=True,
        )
    if decoded is not None:
        message = (
            f"{decoded.code}: {decoded.message}".strip() if decoded.status else decoded.message
        )
        cls = TransientStepError if decoded.transient else PermanentStepError
        return cls(message, component=component, region=region)
    return PermanentStepError(f"{type(exc).__name__}: {exc}", component=component, region=region)


def is_unreachable(exc: BaseException) -> bool:
    """True when the error says the endpoint did not answer (refused, or timed out)."""
    decoded = decode(exc)
    return bool(decoded and decoded.unreachable)


def is_not_found(exc: BaseException) -> bool:
    """True when a botocore error says the resource does not exist."""
    decoded = decode(exc)
    return bool(decoded and decoded.missing)


def explain(exc: BaseException, *, what: str = "", where: str = "") -> AwsError | None:
    """An AWS error as one operator's line: what failed, where, and what to do; None when
    ``exc`` is not an AWS error.

    >>> err = explain(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"),
    ...               what="the control table t", where="us-east-1")
    >>> err.unreachable, str(err).startswith("the control table t is unreachable in us-east-1")
    (True, True)
    """
    decoded = decode(exc)
    if decoded is None:
        return None
    subject = what or (f"AWS call {decoded.operation}" if decoded.operation else "an AWS call")
    place = f" in {where}" if where else ""
    if decoded.missing:
        text = f"{subject} does not exist{place}: is the manifest right? ({decoded.code})"
    elif decoded.denied:
        text = (
            f"{subject} was refused{place} ({decoded.code}): check the credentials and "
            "their permissions"
        )
    elif decoded.unreachable:
        text = f"{subject} is unreachable{place}: is the region (or the sandbox) up?"
    elif decoded.transient:
        text = f"{subject} failed{place} ({decoded.code}): AWS is busy or failing; try again"
    else:
        detail = f"{decoded.code}: {decoded.message}" if decoded.status else decoded.message
        text = f"{subject} failed{place} ({detail.strip()}): is the manifest right?"
    return AwsError(
        " ".join(text.split()),
        code=decoded.code,
        missing=decoded.missing,
        denied=decoded.denied,
        unreachable=decoded.unreachable,
        transient=decoded.transient,
    )
