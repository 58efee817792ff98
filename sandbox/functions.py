"""A function and everything it owns in one region: role, code, version, alias, logs, alarms.

Called by :mod:`sandbox.regional`, in the region's own moto process (moto's Lambda
accepts only a role that exists in the same process). Mirrors ``infra/function.py``: one role per
function per region, a ``live`` alias on a published version, a log group with retention and a
high and a low alarm.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any, Literal

from controller.aws import Clients
from controller.contract import (
    ALIAS,
    ENV_APP,
    ENV_COMPONENT,
    ENV_COMPONENT_MODE_PARAMETER,
    ENV_MODE_PARAMETER,
)
from controller.topology import Topology
from controller.topology.kinds import FunctionSpec
from controller.topology.manifest import ComponentRef

LOG_RETENTION_DAYS = 14
TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def alarm_names(physical: str) -> list[str]:
    """The two alarms of a function: errors too high, invocations too low."""
    return [f"{physical}-errors-high", f"{physical}-invocations-low"]


def _code(handler: str) -> bytes:
    """A tiny zip with the handler's module (the emulator never runs it)."""
    module = handler.rsplit(".", 1)[0].replace(".", "/")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{module}.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def _role(clients: Clients, region: str, physical: str) -> str:
    iam = clients.client("iam", region)
    role = iam.create_role(
        RoleName=f"{physical}-role",
        AssumeRolePolicyDocument=TRUST_POLICY,
        Description=f"execution role of {physical}",
    )["Role"]
    log_arn = f"arn:aws:logs:{region}:*:log-group:/aws/lambda/{physical}:*"
    iam.put_role_policy(
        RoleName=role["RoleName"],
        PolicyName="logs",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": log_arn,
                    }
                ],
            }
        ),
    )
    return str(role["Arn"])


def provision_function(
    topology: Topology, region: str, name: str, spec: FunctionSpec, clients: Clients
) -> ComponentRef:
    """Create the function ``name`` in ``region`` with its role, alias, log group and alarms."""
    physical = topology.physical_name(name, region)
    role_arn = _role(clients, region, physical)
    lam = clients.client("lambda", region)
    function = lam.create_function(
        FunctionName=physical,
        Runtime=spec.runtime,
        Role=role_arn,
        Handler=spec.handler,
        Code={"ZipFile": _code(spec.handler)},
        MemorySize=spec.memory,
        Timeout=spec.timeout,
        TracingConfig={"Mode": "Active"},
        Environment={
            "Variables": {
                ENV_APP: topology.app,
                ENV_COMPONENT: name,
                ENV_MODE_PARAMETER: topology.mode_parameter(region),
                ENV_COMPONENT_MODE_PARAMETER: topology.component_mode_parameter(name, region),
            }
        },
    )
    version = lam.publish_version(FunctionName=physical)["Version"]
    lam.create_alias(FunctionName=physical, Name=ALIAS, FunctionVersion=version)
    if spec.reserved_concurrency is not None:
        lam.put_function_concurrency(
            FunctionName=physical, ReservedConcurrentExecutions=spec.reserved_concurrency
        )
    _logs(clients, region, physical)
    alarms = _alarms(clients, region, physical)
    return ComponentRef(
        kind="function",
        name=physical,
        arn=function["FunctionArn"],
        alias=ALIAS,
        role_arn=role_arn,
        alarms=alarms,
        mode_parameter=topology.component_mode_parameter(name, region),
    )


def alias_arn(ref: ComponentRef) -> str:
    """The ARN of a function's ``live`` alias, what event sources and APIs invoke."""
    return f"{ref.arn}:{ref.alias or ALIAS}"


def _logs(clients: Clients, region: str, physical: str) -> None:
    logs = clients.client("logs", region)
    group = f"/aws/lambda/{physical}"
    logs.create_log_group(logGroupName=group)
    logs.put_retention_policy(logGroupName=group, retentionInDays=LOG_RETENTION_DAYS)


def _alarms(clients: Clients, region: str, physical: str) -> list[str]:
    cloudwatch = clients.client("cloudwatch", region)
    high, low = alarm_names(physical)
    common: dict[str, Any] = {
        "Namespace": "AWS/Lambda",
        "Dimensions": [{"Name": "FunctionName", "Value": physical}],
        "Period": 60,
        "EvaluationPeriods": 3,
        "Statistic": "Sum",
    }
    cloudwatch.put_metric_alarm(
        AlarmName=high,
        MetricName="Errors",
        Threshold=5.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
        **common,
    )
    cloudwatch.put_metric_alarm(
        AlarmName=low,
        MetricName="Invocations",
        Threshold=1.0,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="notBreaching",
        **common,
    )
    set_alarms(clients, region, [high, low], "OK")
    return [high, low]


def set_alarms(clients: Clients, region: str, names: list[str], state: str) -> None:
    """Set ``names`` to ``state`` (OK or ALARM), as a region going down or coming back would."""
    cloudwatch = clients.client("cloudwatch", region)
    value: Literal["OK", "ALARM"] = "ALARM" if state == "ALARM" else "OK"
    for alarm in names:
        cloudwatch.set_alarm_state(
            AlarmName=alarm,
            StateValue=value,
            StateReason=f"sandbox: region {region} {state.lower()}",
        )
