"""Security rules of the Pulumi program, checked on the resources it registers under mocks.

One role per function per region; no wildcard action; no ``*`` resource where an ARN is known;
a function's policy names only resources of its own region; the controller may only do what the
controller does and only the deployer may ship code; no long-lived keys; no secrets in env.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from infra.common import STAR_ONLY_ACTIONS
from infra.regional import UNSET
from tests.kit.pulumi_mocks import SECRET_VALUE, Run, is_watcher

ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
SECRET_SHAPED = re.compile(r"^[A-Za-z0-9/+=]{40}$")
SECRET_SIG, SECRET_MARK = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def unsecret(value: Any) -> Any:
    """The plain value of an input the engine received as a secret."""
    if isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARK:
        return value["value"]
    return value


def policies(run: Run) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every permission policy document (inline and managed), with its resource name."""
    for typ in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        for res in run.of(typ):
            yield res.name, json.loads(res.inputs["policy"])


def statements(doc: dict[str, Any]) -> Iterator[tuple[list[str], list[str]]]:
    """The Allow statements' actions and resources (a Deny only guards the watchers)."""
    for st in doc["Statement"]:
        assert "NotAction" not in st and "NotResource" not in st
        if st["Effect"] == "Deny":
            assert all(is_watcher(r) for r in st["Resource"]), st
            continue
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        yield actions, resources


def function_policy(run: Run, function: str, region: str) -> dict[str, list[str]]:
    """action -> resources of one function's inline policy in one region."""
    name = f"{run.topology.physical_name(function, region)}-policy"
    doc = next(d for n, d in policies(run) if n == name)
    out: dict[str, list[str]] = {}
    for actions, resources in statements(doc):
        for action in actions:
            out.setdefault(action, []).extend(resources)
    return out


def test_each_function_has_its_own_role_in_each_region(run: Run) -> None:
    functions = [f for f in run.of("aws:lambda/function:Function") if not is_watcher(f.name)]
    names = [
        n
        for n, _ in run.topology.components.items()
        if run.topology.components[n].kind == "function"
    ]
    assert len(functions) == len(names) * len(run.topology.regions.all)
    roles = [f.inputs["role"] for f in functions]
    assert len(set(roles)) == len(roles), "a role is shared between functions"
    for fn in functions:
        assert fn.inputs["role"].endswith(f"role/{fn.inputs['name']}")
        assert fn.inputs["name"].endswith(fn.region), "role/function not named for its region"


def test_no_policy_has_a_wildcard_action(run: Run) -> None:
    for name, doc in policies(run):
        for actions, _ in statements(doc):
            for action in actions:
                assert action != "*" and not action.endswith(":*"), (name, action)
                assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", action), (name, action)


def test_no_star_resource_where_an_arn_is_known(run: Run) -> None:
    for name, doc in policies(run):
        for actions, resources in statements(doc):
            for resource in resources:
                if resource == "*":
                    assert set(actions) <= STAR_ONLY_ACTIONS, (name, actions)
                    continue
                fields = resource.split(":", 5)
                assert len(fields) == 6 and fields[0] == "arn", (name, resource)
                # partition, service, region and account are always exact
                assert "*" not in "".join(fields[1:5]), (name, resource)
                # a wildcard only after an exact resource prefix (objects, streams, indexes)
                head = fields[5].split("*")[0]
                assert len(head) >= 6, (name, resource)


def test_function_policy_names_only_its_own_region(run: Run) -> None:
    # (a watcher acts on every region, as the controller does: test_infra_watchers.py)
    for fn in (f for f in run.of("aws:lambda/function:Function") if not is_watcher(f.name)):
        component = next(
            c
            for c in run.topology.components
            if run.topology.physical_name(c, fn.region or "") == fn.inputs["name"]
        )
        for resources in function_policy(run, component, fn.region or "").values():
            for arn in resources:
                region = arn.split(":")[3] if arn.startswith("arn:") else ""
                assert region in ("", fn.region), (fn.name, arn)


def test_example_function_policies_follow_their_dependencies(runs: dict[str, Run]) -> None:
    run = runs["example"]
    t = run.topology
    for region in t.regions.all:
        queue = f"arn:aws:sqs:{region}:123456789012:{t.physical_name('orders-queue', region)}"
        table = f"arn:aws:dynamodb:{region}:123456789012:table/orders-orders-table-us-east-1"
        worker = function_policy(run, "worker", region)
        assert worker["sqs:ReceiveMessage"] == [queue]
        assert "sqs:SendMessage" not in worker
        assert table in worker["dynamodb:PutItem"]
        api = function_policy(run, "api-handler", region)
        assert api["sqs:SendMessage"] == [queue]
        assert "sqs:ReceiveMessage" not in api
        projector = function_policy(run, "projector", region)
        assert projector["dynamodb:GetRecords"] == [f"{table}/stream/2026-01-01T00:00:00.000"]
        assert "dynamodb:PutItem" not in projector, "projector does not depend on writing it"
        receipts = run.bucket("receipts-bucket", region)
        assert projector["s3:PutObject"] == [f"arn:aws:s3:::{receipts}/*"]
        for policy in (worker, api, projector):
            modes = policy["ssm:GetParameter"]
            assert (
                f"arn:aws:ssm:{region}:123456789012:parameter/failover/orders/{region}/mode"
                in modes
            )
            assert any(
                m.endswith(f"/failover/orders/{region}/mode/{c}")
                for m in modes
                for c in ("worker", "api-handler", "projector")
            )
            assert policy["logs:PutLogEvents"][0].startswith(
                f"arn:aws:logs:{region}:123456789012:log-group:/aws/lambda/orders-"
            )


def test_read_only_function_gets_no_write_actions(runs: dict[str, Run]) -> None:
    run = runs["generated"]
    notifier = function_policy(run, "notifier", "ap-southeast-2")
    assert "s3:PutObject" not in notifier and "s3:GetObject" in notifier
    assert "dynamodb:PutItem" not in notifier
    assert "dynamodb:GetRecords" in notifier  # entries is one of its event sources
    front = function_policy(run, "front", "ap-southeast-2")
    assert front["lambda:InvokeFunction"] == [
        "arn:aws:lambda:ap-southeast-2:123456789012:function:ledger-ingest-ap-southeast-2:live"
    ]
    assert front["kinesis:PutRecord"] and "kinesis:GetRecords" not in front


def test_controller_role_only_takes_controller_actions(run: Run) -> None:
    controller = f"{run.topology.app}-failover-controller"
    actions = {
        a
        for name, doc in policies(run)
        if name.startswith(controller)
        for acts, _ in statements(doc)
        for a in acts
    }
    assert {
        "lambda:PutFunctionConcurrency",
        "lambda:UpdateEventSourceMapping",
        "lambda:UpdateAlias",
        "events:EnableRule",
        "events:DisableRule",
        "route53:ChangeResourceRecordSets",
        "route53:UpdateHealthCheck",
        "ssm:PutParameter",
        "dynamodb:PutItem",
        "cloudwatch:DescribeAlarms",
    } <= actions
    assert {a.split(":")[0] for a in actions} <= {
        "lambda",
        "events",
        "route53",
        "ssm",
        "dynamodb",
        "cloudwatch",
        "sqs",
        "kinesis",
        "s3",
        "apigateway",
    }
    reads = r":(Get|BatchGet|GET|Describe|List|Query|Scan|Head)"
    writes = {a for a in actions if not re.search(reads, a)}
    assert writes == {
        "lambda:CreateAlias",
        "lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionConcurrency",
        "lambda:UpdateAlias",
        "lambda:UpdateEventSourceMapping",
        "events:EnableRule",
        "events:DisableRule",
        "route53:ChangeResourceRecordSets",
        "route53:UpdateHealthCheck",
        "ssm:PutParameter",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    }
    assert (
        not {
            "lambda:UpdateFunctionCode",
            "lambda:PublishVersion",
            "iam:PassRole",
            "lambda:CreateFunction",
        }
        & actions
    )


#: How each action module names its client of a service whose IAM actions are its operations.
CLIENTS = {"lambda_": "lambda", "r53": "route53", "events": "events", "ssm": "ssm"}


def test_every_call_the_controllers_actions_make_is_allowed_to_the_controller(run: Run) -> None:
    """Read the calls in ``controller/actions`` and name them as botocore's model does: a call
    the role does not allow (``create_alias``) fails with AccessDenied in the middle of a run."""
    import botocore.session

    from infra.common import PROJECT_ROOT

    session = botocore.session.get_session()
    allowed = {
        a
        for name, doc in policies(run)
        if name.startswith(f"{run.topology.app}-failover-controller")
        for acts, _ in statements(doc)
        for a in acts
    }
    calls = set()
    for path in (PROJECT_ROOT / "controller" / "actions").glob("*.py"):
        for client, method in re.findall(
            r"\b(lambda_|r53|events|ssm)\.([a-z_]+)\(", path.read_text()
        ):
            service = CLIENTS[client]
            model = session.get_service_model(service)
            ops = {xform(op): op for op in model.operation_names}
            calls.add(f"{service}:{ops[method]}")
    assert {"lambda:CreateAlias", "lambda:PutFunctionConcurrency"} <= calls
    assert calls <= allowed, sorted(calls - allowed)


def xform(operation: str) -> str:
    """botocore's method name for an operation (``CreateAlias`` -> ``create_alias``)."""
    from botocore import xform_name

    return str(xform_name(operation))


def test_only_the_deployer_can_ship_code(run: Run) -> None:
    deployer = f"{run.topology.app}-failover-deployer"
    for name, doc in policies(run):
        for actions, resources in statements(doc):
            if {"lambda:UpdateFunctionCode", "lambda:PublishVersion"} & set(actions):
                assert name.startswith(deployer), name
                assert all(":function:" in r for r in resources)


def test_controller_ssm_access_is_scoped_to_the_app(run: Run) -> None:
    controller = f"{run.topology.app}-failover-controller"
    for name, doc in policies(run):
        if not name.startswith(controller):
            continue
        for actions, resources in statements(doc):
            if "ssm:PutParameter" in actions:
                assert sorted(resources) == sorted(
                    f"arn:aws:ssm:{r}:123456789012:parameter/failover/{run.topology.app}/*"
                    for r in run.topology.regions.all
                )


def test_trust_policies_name_a_service_or_this_account(run: Run) -> None:
    for role in run.of("aws:iam/role:Role"):
        for st in json.loads(role.inputs["assumeRolePolicy"])["Statement"]:
            principal = st["Principal"]
            assert principal != "*" and principal.get("AWS") != "*", role.name
            services = principal.get("Service")
            accounts = principal.get("AWS", [])
            assert services in ("lambda.amazonaws.com", "s3.amazonaws.com") or all(
                a.startswith("arn:aws:iam::123456789012:") and not a.endswith(":root")
                for a in accounts
            ), role.name


def test_no_long_lived_keys_or_users(run: Run) -> None:
    assert not run.of("aws:iam/accessKey:AccessKey")
    assert not run.of("aws:iam/user:User")
    assert all("accessKey" not in r.inputs and "secretKey" not in r.inputs for r in run.resources)


def test_env_vars_carry_names_never_secrets(run: Run) -> None:
    names = {str(v) for r in run.resources for k, v in r.inputs.items() if k in ("name", "bucket")}
    names |= {r.state["url"] for r in run.of("aws:sqs/queue:Queue")}
    names |= {run.topology.app, *run.topology.components}
    for fn in (f for f in run.of("aws:lambda/function:Function") if not is_watcher(f.name)):
        variables = fn.inputs["environment"]["variables"]
        assert variables["FAILOVER_MODE_PARAMETER"].endswith(f"/{fn.region}/mode")
        for key, value in variables.items():
            assert not ACCESS_KEY.search(value), (fn.name, key)
            assert not SECRET_SHAPED.match(value), (fn.name, key)
            assert SECRET_VALUE not in value, (fn.name, key)
            assert value in names, f"{fn.name}: {key} is not the name of a resource"


def test_secure_parameters_are_secure_strings_without_a_value_in_code(run: Run) -> None:
    t = run.topology
    for name, spec in t.of_kind("parameter"):
        for region in t.regions.all:
            param = next(
                p
                for p in run.of("aws:ssm/parameter:Parameter")
                if p.inputs["name"] == t.physical_name(name, region)
            )
            value = unsecret(param.inputs["value"])
            if spec.secure:
                assert param.inputs["type"] == "SecureString"
                assert value == run.settings.secrets.get(name, UNSET)
            else:
                assert param.inputs["type"] == "String"
                assert value == (spec.value or UNSET)
