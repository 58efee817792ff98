"""The names a function needs (never secrets), and the one place that reads an environment.

Called by the Lambda entry points (``Settings.from_env(os.environ)``) and by the sandbox, which
builds a ``Settings`` per region directly or from a dict shaped like the Lambda environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


def env_key(*parts: str) -> str:
    """The environment variable the Pulumi program sets for a dependency.

    >>> env_key("queue", "orders-queue", "url")
    'QUEUE_ORDERS_QUEUE_URL'
    """
    return "_".join(parts).upper().replace("-", "_")


@dataclass(frozen=True)
class Settings:
    """Where this function's resources are in one region; ``None`` for what it does not use."""

    region: str
    mode_parameter: str
    component_mode_parameter: str | None = None
    table: str | None = None
    queue_url: str | None = None
    bucket: str | None = None
    config_parameter: str | None = None
    app: str = "orders"
    component: str = "unknown"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from a Lambda-shaped environment (``os.environ`` in Lambda, a dict elsewhere).

        >>> Settings.from_env({"AWS_REGION": "eu-west-1", "FAILOVER_MODE_PARAMETER": "/m",
        ...                    "TABLE_ORDERS_TABLE": "t"}).table
        't'
        """
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if not region or not environ.get("FAILOVER_MODE_PARAMETER"):
            raise KeyError("AWS_REGION and FAILOVER_MODE_PARAMETER must be set")
        return cls(
            region=region,
            mode_parameter=environ["FAILOVER_MODE_PARAMETER"],
            component_mode_parameter=environ.get("FAILOVER_COMPONENT_MODE_PARAMETER") or None,
            table=environ.get(env_key("table", "orders-table")),
            queue_url=environ.get(env_key("queue", "orders-queue", "url")),
            bucket=environ.get(env_key("bucket", "receipts-bucket")),
            config_parameter=environ.get(env_key("parameter", "config")),
            app=environ.get("FAILOVER_APP", "orders"),
            component=environ.get("FAILOVER_COMPONENT", "unknown"),
        )


def tracing_disabled(environ: Mapping[str, str]) -> bool:
    """True outside Lambda (no X-Ray daemon there) or when POWERTOOLS_TRACE_DISABLED is set.

    >>> tracing_disabled({}), tracing_disabled({"LAMBDA_TASK_ROOT": "/var/task"})
    (True, False)
    """
    flag = environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in {"1", "true", "yes"}
    return flag or not environ.get("LAMBDA_TASK_ROOT")
