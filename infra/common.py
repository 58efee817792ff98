"""What every part of the Pulumi program shares: settings, references, names, ARNs, policies.

Imported by ``function``, ``api``, ``regional``, ``global_`` and ``program``; it creates no
resources. Names and ARNs are derived here in one place so the parts agree with each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from infra import aws

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Actions AWS only grants on Resource "*" (they have no resource-level permissions).
STAR_ONLY_ACTIONS = frozenset(
    {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:GetMetricStatistics"}
)


class InfraError(pulumi.RunError, ValueError):
    """The topology asks for something the program refuses to deploy (an open route, …).

    A ``pulumi.RunError``: ``pulumi up`` stops with this one line, not a stack trace.
    """

    def __init__(self, component: str, message: str) -> None:
        super().__init__(f"components.{component}: {message}")
        self.component = component


@dataclass(frozen=True)
class Settings:
    """Everything the program reads from stack config besides the topology itself.

    ``__main__`` fills it from ``pulumi.Config()``; tests build it directly.
    """

    spec_path: str = ""
    # The Pulumi stack: part of every physical name, so that two stacks of one application
    # (staging and prod) in one account never share one (``Topology.for_stack``).
    stack: str = ""
    # Where a relative ``code`` folder is resolved (a topology read from a file has absolute ones).
    code_root: Path = PROJECT_ROOT
    # Where each function code folder's bundle (code + dependencies, a zip) is written.
    bundle_dir: Path = PROJECT_ROOT / ".failover" / "bundles"
    log_retention_days: int = 30
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    # Values of secure parameters, by component name (pulumi config secrets, never plain text).
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Who may assume the controller and the deployer roles (IAM ARNs); none: no such role.
    controller_principals: tuple[str, ...] = ()
    deployer_principals: tuple[str, ...] = ()
    # Hosted zone ids by zone name (else the program looks the public zone up by its name).
    zone_ids: Mapping[str, str] = field(default_factory=dict)
    # Deletion protection on data tables (turn off for throw-away stacks).
    protect_data: bool = True
    api_throttle_rate: float = 100.0
    api_throttle_burst: int = 200
    # An emulator's endpoint per region, and ``global`` (Route 53's): where every provider sends
    # its calls, and what the manifest says the controller calls. Empty on AWS.
    endpoints: Mapping[str, str] = field(default_factory=dict)


#: Every service the program creates resources in, as pulumi-aws names its endpoint setting.
SERVICES = (
    "acm",
    "apigatewayv2",
    "cloudwatch",
    "cloudwatchevents",
    "cloudwatchlogs",
    "dynamodb",
    "iam",
    "kinesis",
    "kms",
    "lambda_",
    "s3",
    "sns",
    "sqs",
    "ssm",
    "sts",
)


def provider_settings(settings: Settings, region: str) -> dict[str, Any]:
    """What a provider of ``region`` needs besides its region: nothing on AWS; against an
    emulator (``settings.endpoints``), every service at the region's endpoint and Route 53 at
    the global one. IAM and STS stay with the region: an emulator that runs each region in a
    process of its own looks a function's role up in the function's region (moto's Lambda does).
    """
    if not settings.endpoints:
        return {}
    here = settings.endpoints[region]
    return {
        "endpoints": [
            aws.ProviderEndpointArgs(
                **dict.fromkeys(SERVICES, here), route53=settings.endpoints["global"]
            )
        ],
        "s3_use_path_style": True,
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
    }


@dataclass(frozen=True)
class Account:
    """The partition and account id every constructed ARN needs."""

    partition: pulumi.Input[str]
    account_id: pulumi.Input[str]

    def arn(self, service: str, region: str, resource: str) -> pulumi.Output[str]:
        """``arn:<partition>:<service>:<region>:<account>:<resource>``."""
        return pulumi.Output.concat(
            "arn:", self.partition, f":{service}:{region}:", self.account_id, f":{resource}"
        )


@dataclass(frozen=True)
class Ref:
    """One component's resource in one region, as the components that need it see it."""

    kind: str
    name: pulumi.Input[str]
    arn: pulumi.Input[str]
    stream_arn: pulumi.Input[str] | None = None
    url: pulumi.Input[str] | None = None
    #: What a function that depends on it may do to ``arn``, when its kind says so itself
    #: (a kind deployed by its own module, e.g. ``infra.bus``); else ``function._uses`` decides.
    use_actions: tuple[str, ...] = ()


def statement(actions: Sequence[str], resources: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """One Allow statement; actions sorted so that policies diff cleanly."""
    return {"Effect": "Allow", "Action": sorted(set(actions)), "Resource": list(resources)}


def deny(actions: Sequence[str], resources: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """One Deny statement: what an Allow on a pattern must not reach (the watchers)."""
    return {"Effect": "Deny", "Action": sorted(set(actions)), "Resource": list(resources)}


def policy_json(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    """An IAM policy document as JSON, resolving any outputs inside the statements."""
    return pulumi.Output.from_input(list(statements)).apply(
        lambda s: json.dumps({"Version": "2012-10-17", "Statement": s}, sort_keys=True)
    )


def assume_role_policy(
    service: str | None = None,
    principals: Sequence[pulumi.Input[str]] = (),
    source_account: pulumi.Input[str] | None = None,
) -> pulumi.Output[str]:
    """A trust policy for one AWS service, or for the given IAM principals.

    ``source_account``: the service may assume the role only on behalf of this account's
    resources (``aws:SourceAccount``), the confused-deputy guard.
    """
    principal: dict[str, Any] = {"Service": service} if service else {"AWS": list(principals)}
    trust: dict[str, Any] = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}
    if source_account is not None:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return pulumi.Output.from_input(trust).apply(
        lambda t: json.dumps({"Version": "2012-10-17", "Statement": [t]}, sort_keys=True)
    )
