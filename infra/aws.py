"""The pulumi-aws modules the program declares resources from, each imported by name.

``import pulumi_aws`` makes mypy read all of pulumi-aws (3,140 modules): its package imports every
service for type checkers. Imported one by one, as here, with the package itself skipped
(pyproject.toml), mypy reads only these, still fully typed: ``make typecheck`` from a cold cache
in 24 s, not 74 s, and 0.9 GB of memory, not 2.7 (medians of 3).
The program writes ``aws.iam.Role`` as before, through ``from infra import aws``.
"""

from pulumi_aws import (
    acm,
    apigatewayv2,
    cloudwatch,
    dynamodb,
    iam,
    kinesis,
    kms,
    lambda_,
    route53,
    s3,
    sns,
    sqs,
    ssm,
)
from pulumi_aws._inputs import ProviderDefaultTagsArgs, ProviderEndpointArgs
from pulumi_aws.get_caller_identity import get_caller_identity_output
from pulumi_aws.get_partition import get_partition_output
from pulumi_aws.provider import Provider

__all__ = [
    "Provider",
    "ProviderDefaultTagsArgs",
    "ProviderEndpointArgs",
    "acm",
    "apigatewayv2",
    "cloudwatch",
    "dynamodb",
    "get_caller_identity_output",
    "get_partition_output",
    "iam",
    "kinesis",
    "kms",
    "lambda_",
    "route53",
    "s3",
    "sns",
    "sqs",
    "ssm",
]
