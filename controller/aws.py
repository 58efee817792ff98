"""The one place that makes boto3 clients.

Called by ``actions/``, ``health``, ``journal`` and the sandbox. One client per (service, region),
cached and shared between threads (boto3 clients are thread safe); botocore's own retry modes;
short connect and read timeouts so that a dead region fails fast instead of hanging the
controller. Endpoints come from the standard ``AWS_ENDPOINT_URL`` variables or, for the embedded
emulator, from the manifest's endpoint map. Credentials come from the standard chain only; against
the emulator, which accepts any key, a fixed placeholder is used so that no real credential is
ever sent to it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

from controller.contract import GLOBAL
from controller.errors import ActionError, FailoverError, PermanentStepError, TransientStepError

log = logging.getLogger(__name__)

GLOBAL_SERVICES = frozenset({"route53", "iam", "sts", "route53-recovery-control-config"})
#: Placeholder credentials for the loopback emulator only; they are not AWS credentials.
EMULATOR_KEY = "sandbox"

TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestThrottledException", "SlowDown", "PriorRequestNotComplete",
    "InternalFailure", "InternalError", "InternalServerError", "ServiceUnavailable",
    "ServiceUnavailableException", "ResourceConflictException", "TransactionInProgressException",
    "ResourceInUseException",
})

Hook = tuple[str, Callable[..., Any]]

#: One boto3 session, and the clients made from it, for the whole process. Making a session, and
#: a service's first client in it, costs tens of milliseconds of CPU (the service model is parsed
#: per session); a status read or a precheck that made its own would pay it on every call.
_SHARED_LOCK = threading.Lock()
_SHARED: dict[tuple[Any, ...], Any] = {}
_SESSIONS: dict[bool, boto3.session.Session] = {}


def emulator_session(region: str | None = None) -> boto3.session.Session:
    """A boto3 session for the loopback emulator: its placeholder keys, and no AWS profile.

    An operator's ``AWS_PROFILE`` names a profile of theirs; the emulator needs none, and a
    profile missing from this machine's config must not stop the sandbox.

    >>> emulator_session("us-west-2").region_name
    'us-west-2'
    """
    unset = (None, None, None, None)  # read from no config key, no variable, no default
    core = botocore.session.Session(session_vars={"profile": unset})
    return boto3.session.Session(aws_access_key_id=EMULATOR_KEY,
                                 aws_secret_access_key=EMULATOR_KEY, region_name=region,
                                 botocore_session=core)


@dataclass(frozen=True)
class AwsSettings:
    """How clients talk to AWS: fail fast, retry with botocore's own modes."""

    connect_timeout: float = 2.0
    read_timeout: float = 4.0
    max_attempts: int = 3
    retry_mode: str = "standard"


@dataclass
class Clients:
    """A cache of boto3 clients, one per (service, region).

    Parameters
    ----------
    endpoints : region name (or ``"global"``) to endpoint URL, as the sandbox's manifest gives;
        empty on real AWS.
    settings : timeouts and retry mode.
    hooks : botocore event handlers registered on every client made (fault injection in tests).

    Examples
    --------
    >>> clients = Clients(endpoints={"us-east-1": "http://127.0.0.1:1"})
    >>> clients.client("sqs", "us-east-1").meta.endpoint_url
    'http://127.0.0.1:1'
    """

    endpoints: Mapping[str, str] = field(default_factory=dict)
    settings: AwsSettings = field(default_factory=AwsSettings)
    hooks: Sequence[Hook] = ()
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def emulated(self) -> bool:
        """True when every call goes to the loopback emulator."""
        return bool(self.endpoints)

    def client(self, service: str, region: str) -> Any:
        """The cached client of ``service`` in ``region`` (global services go to ``global``)."""
        key = (service, region)
        cached = self._cache.get(key)
        if cached is None:
            # Clients alike in endpoint, settings and hooks share one (clients are thread safe).
            shared = (service, region, self.endpoint(service, region), self.settings,
                      tuple(self.hooks))
            with _SHARED_LOCK:  # a boto3 session is not thread safe: make clients one at a time
                cached = _SHARED.get(shared)
                if cached is None:
                    cached = _SHARED[shared] = self._make(service, region)
            self._cache[key] = cached
        return cached

    def endpoint(self, service: str, region: str) -> str | None:
        """The endpoint URL a client of ``service`` in ``region`` uses, or None for AWS's own."""
        if not self.endpoints:
            return None
        if service in GLOBAL_SERVICES or region == GLOBAL:
            return self.endpoints.get(GLOBAL)
        return self.endpoints.get(region)

    def _make(self, service: str, region: str) -> Any:
        config = botocore.config.Config(
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
            # total_max_attempts counts the first try; botocore's max_attempts would not.
            retries={"total_max_attempts": self.settings.max_attempts,
                     "mode": self.settings.retry_mode},
            max_pool_connections=32,
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
            _SESSIONS[emulated] = emulator_session() if emulated else boto3.session.Session()
        client = _SESSIONS[emulated].client(service, **kwargs)
        for event, handler in self.hooks:
            client.meta.events.register(event, handler)
        log.debug("client %s/%s -> %s", service, region, endpoint or "aws")
        return client


def classify(exc: BaseException, *, component: str = "", region: str = "") -> Exception:
    """Map a botocore error to a transient or a permanent step error.

    Throttling, 5xx, timeouts and unreachable endpoints are transient (a retry may help);
    everything else (missing resource, access denied, validation) is permanent.

    >>> classify(botocore.exceptions.ConnectTimeoutError(endpoint_url="x")).__class__.__name__
    'TransientStepError'
    """
    if isinstance(exc, TransientStepError | PermanentStepError):
        return exc
    if isinstance(exc, FailoverError) and not isinstance(exc, ActionError):
        return exc  # ours, raised on purpose below the call (a lost lease): not a step error
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"{code}: {err.get('Message', '')}".strip()
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientStepError(message, component=component, region=region)
        return PermanentStepError(message, component=component, region=region)
    if isinstance(exc, botocore.exceptions.ConnectionError | botocore.exceptions.ReadTimeoutError
                  | botocore.exceptions.ConnectTimeoutError | ConnectionError | TimeoutError):
        return TransientStepError(
            f"unreachable: {type(exc).__name__}", component=component, region=region,
            unreachable=True,
        )
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return TransientStepError(str(exc), component=component, region=region)
    return PermanentStepError(f"{type(exc).__name__}: {exc}", component=component, region=region)


def is_unreachable(exc: BaseException) -> bool:
    """True when the error says the endpoint did not answer (refused, or timed out)."""
    return isinstance(exc, botocore.exceptions.ConnectionError
                      | botocore.exceptions.ReadTimeoutError
                      | botocore.exceptions.ConnectTimeoutError
                      | botocore.exceptions.EndpointConnectionError)
