"""The one exception hierarchy of the controller.

Everything below the CLI raises a subclass of :class:`FailoverError`; the CLI turns any of them
into one line and an exit code. Step errors say whether a retry can help (kopf's
``TemporaryError`` / ``PermanentError`` split).
"""

from __future__ import annotations

from datetime import UTC, datetime


class FailoverError(Exception):
    """Root of every error the controller raises on purpose."""

    exit_code: int = 1


class SpecError(FailoverError):
    """A topology (or manifest) file is missing, malformed or inconsistent.

    The message names the file, and where known the component and the field.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        component: str | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.source = source
        self.component = component
        self.field = field
        self.line = line
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.source:
            where = self.source + (f":{self.line}" if self.line else "")
        path = ".".join(
            p for p in ("components" if self.component else None, self.component, self.field) if p
        )
        if not self.component and self.field:
            path = self.field
        head = ": ".join(p for p in (where, path) if p)
        return f"{head}: {self.reason}" if head else self.reason


class UsageError(FailoverError):
    """A request is invalid for this topology (unknown region or component, same from and to)."""

    exit_code = 2


class PlanError(FailoverError):
    """A plan cannot be built or run as asked (prechecks failed, nothing to fail over to)."""

    exit_code = 1


class LeaseHeldError(FailoverError):
    """Another controller holds the lease; the message names the holder and until when.

    >>> print(LeaseHeldError("ops@host:41/x", 0.0))  # doctest: +NORMALIZE_WHITESPACE
    another controller holds the lease: ops@host:41/x until 1970-01-01T00:00:00Z
    (renewed while it runs)
    """

    exit_code = 3

    def __init__(self, holder: str, expires_at: float | None = None) -> None:
        self.holder = holder
        self.expires_at = expires_at
        until = ""
        if expires_at is not None:
            stamp = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            until = f" until {stamp} (renewed while it runs)"
        super().__init__(f"another controller holds the lease: {holder}{until}")


class StaleTokenError(FailoverError):
    """A journal write carried a fencing token older than the lease's: this controller lost it."""

    exit_code = 3


class NoMajorityError(FailoverError):
    """No control region answers with a majority of the control table behind it.

    A multi-Region strongly consistent table serves a request only where a majority of its
    regions can be reached; when none of its replicas can, no lease can be taken or renewed and
    nothing may act. The message names what each control region answered, in one line.
    Watchers rely on it: one that gets this error never acts. Raised by a write, it means the
    write was not applied: each attempt was refused before it was sent (no connection) or
    answered with an error (exit code 1); a write that was sent and not answered raises
    :class:`OutcomeUnknownError` instead.
    """

    exit_code = 1


class OutcomeUnknownError(FailoverError):
    """A control-table write was sent and its answer lost: it may have been applied, or may
    still be (exit code 4).

    A request that timed out or whose connection was cut can wait in a hung server and land
    when it resumes; on AWS too a request whose answer was lost may have been applied. Saying
    "failed" would be a lie either way, so the message names what was written and the command
    that shows what the control table holds now (``check``). Every such write is conditional on
    what its writer last read, so a late one cannot land over a newer decision.
    """

    exit_code = 4

    def __init__(self, message: str, *, check: str = "`failover status`") -> None:
        self.reason = message
        self.check = check
        super().__init__(f"{message}; it may still be applied: check with {check}")

    def checked_with(self, what: str, check: str) -> OutcomeUnknownError:
        """The same error naming ``what`` was written and how to see what the table holds."""
        return OutcomeUnknownError(f"{what}: {self.reason}", check=check)


class ConflictError(FailoverError):
    """Another controller changed the active region since this one read it (exit code 3).

    A decision taken on what was true before another run started is not carried out: the
    operator (or the watcher) reads again and decides again.
    """

    exit_code = 3


class RunInterruptedError(FailoverError):
    """A run was stopped by SIGINT or SIGTERM: journalled ``interrupted``, lease released.

    The message names the run and the command that continues it (exit code 130).
    """

    exit_code = 130

    def __init__(self, run_id: str, why: str = "interrupted") -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id} {why}: the journal says interrupted and the lease is "
            f"released; continue it with: failover resume {run_id}"
        )


class AwsError(FailoverError):
    """An AWS call failed in a way the operator must act on; the flags say which way.

    The message is one line: what failed, where, and what to do. Code that reacts to the error
    reads the flags, never the message.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        missing: bool = False,
        denied: bool = False,
        unreachable: bool = False,
        transient: bool = False,
    ) -> None:
        #: The service's error code (``ResourceNotFoundException``), or the botocore error's name.
        self.code = code
        #: The resource does not exist (a wrong manifest, or a wiped resource).
        self.missing = missing
        #: The credentials were refused.
        self.denied = denied
        #: The endpoint did not answer.
        self.unreachable = unreachable
        #: A retry may help.
        self.transient = transient
        if transient and not missing:
            self.exit_code = 1
        super().__init__(message)


class ActionError(FailoverError):
    """An AWS action on one component in one region failed."""

    def __init__(self, message: str, *, component: str = "", region: str = "") -> None:
        self.component = component
        self.region = region
        where = "/".join(p for p in (component, region) if p)
        super().__init__(f"{where}: {message}" if where else message)


class TransientStepError(ActionError):
    """A step failed in a way a retry may fix (throttled, 5xx, timeout, unreachable)."""

    def __init__(
        self,
        message: str,
        *,
        component: str = "",
        region: str = "",
        delay: float = 0.5,
        unreachable: bool = False,
    ) -> None:
        self.delay = delay
        #: True when the endpoint did not answer at all (refused or timed out).
        self.unreachable = unreachable
        super().__init__(message, component=component, region=region)


class PermanentStepError(ActionError):
    """A step failed in a way no retry can fix (resource missing, access denied)."""


class RunNotFoundError(UsageError):
    """The journal has no run of that id (``failover runs`` lists them)."""
