"""The one reading of botocore's errors: what an error says, once, and what it means for us.

Called by the actions (through :mod:`controller.actions.base`), the health reads, the control
table and the CLI's error boundary. :func:`decode` reads a botocore error once;
:func:`classify` makes it a transient or a permanent step error; :func:`explain` makes it one
line for an operator. Nothing else in the controller reads a botocore error's response.
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions

from controller.errors import (
    ActionError,
    AwsError,
    FailoverError,
    PermanentStepError,
    TransientStepError,
)

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
