"""What the sandbox deploys is what the Pulumi program declares, read back from the emulator.

``failover sandbox up`` runs the program in ``infra/`` against the emulator; its stack state
(``stack.json``: every resource with the program's inputs) says what was asked. For two
topologies (the example, and the Pulumi tests' generated one: other regions, a Kinesis stream, a
secure parameter, a second API), every resource the program declares is read back with plain
boto3 clients and compared with the program's inputs, for every setting the controller reads or
acts on: alarms, mappings, reserved concurrency, rules and their targets, health checks, records,
parameters, queues' redrive, tables and their replicas. A resource type without a check here
fails the test: a new type is checked when it is mapped.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.contract import GLOBAL
from sandbox import Sandbox
from sandbox.deploy.engine import Made, load_stack
from sandbox.state import STACK_FILE
from tests.kit.emulator import plain
from tests.kit.pulumi_mocks import GENERATED

pytestmark = pytest.mark.sandbox

Check = Callable[[Sandbox, Made], None]
CHECKS: dict[str, Check] = {}


def checks(typ: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[typ] = fn
        return fn

    return register


@pytest.fixture(scope="module")
def generated(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The second topology, deployed in a sandbox of its own."""
    tmp = tmp_path_factory.mktemp("generated")
    spec = tmp / "topology.yaml"
    spec.write_text(GENERATED, encoding="utf-8")
    (tmp / "functions").mkdir()
    (tmp / "functions" / "app.py").write_text(
        "def handler(event, context):\n    return {}\n", encoding="utf-8"
    )
    box = Sandbox.up(spec, tmp / ".failover")
    try:
        yield box
    finally:
        box.down()


@pytest.fixture(params=["example", "generated"])
def deployed(request: pytest.FixtureRequest) -> Sandbox:
    box: Sandbox = request.getfixturevalue("sandbox" if request.param == "example" else "generated")
    box.reset()
    return box


def stack(box: Sandbox) -> list[Made]:
    return load_stack(box.state_dir / STACK_FILE)


def test_every_resource_the_program_declares_holds_its_inputs(deployed: Sandbox) -> None:
    resources = stack(deployed)
    types = {m.typ for m in resources}
    assert types - set(CHECKS) == set(), "a resource type the test does not check"
    assert len(resources) > 200  # every region's functions, alarms, parameters, ...
    for made in resources:
        try:
            CHECKS[made.typ](deployed, made)
        except AssertionError as exc:
            raise AssertionError(f"{made.typ} {made.name} in {made.region}: {exc}") from exc


def test_the_manifest_is_the_programs_output(deployed: Sandbox) -> None:
    """The manifest names what the stack state holds (not what the sandbox made up)."""
    resources = stack(deployed)
    functions = {m.outputs["name"] for m in resources if m.typ == "aws:lambda/function:Function"}
    alarms = {m.inputs["name"] for m in resources if m.typ.endswith("metricAlarm:MetricAlarm")}
    uuids = {m.id for m in resources if m.typ.endswith("eventSourceMapping:EventSourceMapping")}
    manifest = deployed.manifest
    for part in manifest.regions.values():
        for ref in part.components.values():
            if ref.kind == "function":
                assert ref.name in functions
                assert set(ref.alarms) <= alarms and set(ref.mappings) <= uuids
        assert part.watcher is not None and part.watcher.function in functions
    assert manifest.endpoints == {
        n: s.url for n, s in deployed.state.servers.items() if n != "control-store"
    }


def test_each_watcher_is_told_the_period_its_rule_invokes_it_at(deployed: Sandbox) -> None:
    """The deployed watcher evaluates inside the period its environment names: the rule's."""
    from controller.contract import ENV_WATCHER_PERIOD
    from sandbox.watchers import period

    for region, part in deployed.manifest.regions.items():
        assert part.watcher is not None
        name = part.watcher.function
        config = plain(deployed, "lambda", region).get_function(FunctionName=name)
        told = config["Configuration"]["Environment"]["Variables"][ENV_WATCHER_PERIOD]
        rule = plain(deployed, "events", region).describe_rule(Name=f"{name}-schedule")
        assert float(told) == period(rule["ScheduleExpression"]) == 60.0, region


def test_the_dead_man_alarms_are_made_once_the_manifest_item_exists(deployed: Sandbox) -> None:
    """Until the manifest item exists no watcher can evaluate: an alarm on their silence made
    before it would fire for nothing on every new stack."""
    order = [m.typ + " " + m.name for m in stack(deployed)]
    [item] = [i for i, m in enumerate(order) if m.startswith("aws:dynamodb/tableItem:")]
    silent = [i for i, m in enumerate(order) if m.endswith("-silent")]
    assert len(silent) == len(deployed.topology.regions.all)
    assert min(silent) > item


def read_deployed(box: Sandbox) -> Any:
    """What ``pulumi up`` reads of the deployment before creating anything
    (:func:`infra.deployed.read`), run as the sandbox runs the program: against the emulator."""
    import asyncio

    import pulumi

    from infra.deployed import read
    from infra.program import providers_for
    from sandbox.deploy.engine import STACK, EmulatorMocks, sandbox_settings

    settings = sandbox_settings(box.topology, box.manifest.endpoints)
    mocks = EmulatorMocks(dict(settings.endpoints))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(mocks, project="failover", stack=STACK, preview=False)
    got: list[Any] = []

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        got.append(read(box.topology, providers_for(box.topology, settings=settings), settings))

    try:
        program()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert mocks.refused == []
    return got[0]


def test_pulumi_up_reads_the_pins_and_the_serving_region_from_the_emulators_control_table(
    fresh_sandbox: Sandbox,
) -> None:
    """The program's invoke of the control table (``getTableItem``) is answered by the
    emulator as the provider answers it: the manifest item's pins; no lease item yet (a
    failover writes it: "empty result", nothing to honour); once failed over, the region that
    serves."""
    from controller.engine.executor import Executor
    from controller.plan import graph as graphs
    from controller.plan.build import build_plan
    from infra.deployed import pins, serving_region

    box = fresh_sandbox
    first = read_deployed(box)
    assert (first.active, first.holder, first.pins) == (None, None, pins(box.topology))
    standby = box.topology.regions.standby[0]
    plan = build_plan(box.topology, graphs.build(box.topology), target=standby)
    Executor(box.topology, box.manifest, box.clients, accept_unknown_lag=True).execute(plan)
    after = read_deployed(box)
    assert (after.active, after.holder) == (standby, None)
    assert serving_region(box.topology, after) == standby


def test_the_control_tables_absent_table_and_absent_item_are_answered_in_the_providers_words(
    fresh_sandbox: Sandbox,
) -> None:
    from controller import contract
    from sandbox.deploy import mapping
    from sandbox.deploy.at import At, InvokeFailedError

    box = fresh_sandbox
    region = box.topology.control_regions.replicas[0]
    at = At(
        "aws:dynamodb/getTableItem:getTableItem",
        "invoke",
        region,
        {"dynamodb": box.manifest.endpoints[region]},
    )
    key = json.dumps({"pk": {"S": contract.MANIFEST_ITEM}, "sk": {"S": contract.MANIFEST_ITEM}})
    wanted = {
        "tableName": box.manifest.control.table,
        "key": key,
        "projectionExpression": "#a",
        "expressionAttributeNames": {"#a": "pins"},
    }
    got = mapping.invoke(at, wanted)
    assert set(json.loads(got["item"])) == {"pins"}  # only what the projection names
    with pytest.raises(InvokeFailedError) as absent:
        mapping.invoke(at, {**wanted, "tableName": "no-such-table"})
    assert str(absent.value) == (
        "reading DynamoDB Table Item (no-such-table|manifest|manifest): couldn't find resource"
    )
    lease = json.dumps({"pk": {"S": "no-such-item"}, "sk": {"S": "no-such-item"}})
    with pytest.raises(InvokeFailedError, match=r"\): empty result$"):
        mapping.invoke(at, {"tableName": box.manifest.control.table, "key": lease})


# -- one check per resource type -------------------------------------------------------------


def client(box: Sandbox, service: str, made: Made) -> Any:
    return plain(box, service, made.region)


@checks("aws:ssm/parameter:Parameter")
def _parameter(box: Sandbox, made: Made) -> None:
    got = client(box, "ssm", made).get_parameter(Name=made.inputs["name"], WithDecryption=True)
    parameter = got["Parameter"]
    assert (parameter["Type"], parameter["Value"]) == (made.inputs["type"], made.inputs["value"])


@checks("aws:sqs/queue:Queue")
def _queue(box: Sandbox, made: Made) -> None:
    attrs = client(box, "sqs", made).get_queue_attributes(QueueUrl=made.id, AttributeNames=["All"])
    got = attrs["Attributes"]
    assert got["QueueArn"] == made.outputs["arn"]
    assert int(got["VisibilityTimeout"]) == int(made.inputs.get("visibilityTimeoutSeconds", 30))
    assert int(got["MessageRetentionPeriod"]) == int(
        made.inputs.get("messageRetentionSeconds", 345600)
    )
    assert got.get("SqsManagedSseEnabled") == "true"
    redrive = made.inputs.get("redrivePolicy")
    assert (json.loads(got["RedrivePolicy"]) if "RedrivePolicy" in got else None) == (
        json.loads(redrive) if redrive else None
    )


@checks("aws:sqs/queuePolicy:QueuePolicy")
def _queue_policy(box: Sandbox, made: Made) -> None:
    got = client(box, "sqs", made).get_queue_attributes(
        QueueUrl=made.inputs["queueUrl"], AttributeNames=["Policy"]
    )
    assert json.loads(got["Attributes"]["Policy"]) == json.loads(made.inputs["policy"])


@checks("aws:kinesis/stream:Stream")
def _stream(box: Sandbox, made: Made) -> None:
    got = client(box, "kinesis", made).describe_stream_summary(StreamName=made.inputs["name"])
    summary = got["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == int(made.inputs["shardCount"])
    assert summary["RetentionPeriodHours"] == int(made.inputs["retentionPeriod"])
    assert (summary["EncryptionType"], summary["KeyId"]) == ("KMS", made.inputs["kmsKeyId"])


@checks("aws:sns/topic:Topic")
def _topic(box: Sandbox, made: Made) -> None:
    got = client(box, "sns", made).get_topic_attributes(TopicArn=made.id)["Attributes"]
    assert got.get("KmsMasterKeyId") == made.inputs.get("kmsMasterKeyId")
    if made.inputs.get("kmsMasterKeyId", "").startswith("arn:"):  # a key of the stack's own
        key = client(box, "kms", made).describe_key(KeyId=got["KmsMasterKeyId"])["KeyMetadata"]
        assert (key["Arn"], key["KeyState"]) == (got["KmsMasterKeyId"], "Enabled")


@checks("aws:kms/key:Key")
def _key(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    kms = client(box, "kms", made)
    key = kms.describe_key(KeyId=made.id)["KeyMetadata"]
    assert (
        key["Arn"],
        key["Description"],
        key["KeyState"],
        key["KeyManager"],
        key["KeySpec"],
        key["KeyUsage"],
    ) == (
        made.outputs["arn"],
        inputs["description"],
        "Enabled",
        "CUSTOMER",
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
    )
    rotation = kms.get_key_rotation_status(KeyId=made.id)["KeyRotationEnabled"]
    assert rotation == inputs.get("enableKeyRotation", False)
    policy = kms.get_key_policy(KeyId=made.id, PolicyName="default")["Policy"]
    assert json.loads(policy) == json.loads(inputs["policy"])


@checks("aws:dynamodb/table:Table")
def _table(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    keys = [(inputs["hashKey"], "HASH")] + (
        [(inputs["rangeKey"], "RANGE")] if "rangeKey" in inputs else []
    )
    replicas = inputs.get("replicas", [])
    strong = any(r.get("consistencyMode") == "STRONG" for r in replicas)
    for region in [made.region, *(r["regionName"] for r in replicas)]:
        ddb = plain(box, "dynamodb", region)
        table = ddb.describe_table(TableName=inputs["name"])["Table"]
        assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == keys, region
        assert table["BillingModeSummary"]["BillingMode"] == inputs["billingMode"]
        assert table["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": inputs["streamViewType"],
        }
        assert table["DeletionProtectionEnabled"] == inputs["deletionProtectionEnabled"]
        backups = ddb.describe_continuous_backups(TableName=inputs["name"])
        recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        assert recovery["PointInTimeRecoveryStatus"] == "ENABLED", region
    if strong:  # one store behind every replica region: a write through one is read through all
        first, *others = [made.region, *(r["regionName"] for r in replicas)]
        key = {"pk": {"S": "deployed-test"}, "sk": {"S": first}}
        plain(box, "dynamodb", first).put_item(TableName=inputs["name"], Item=key)
        for region in others:
            assert "Item" in plain(box, "dynamodb", region).get_item(
                TableName=inputs["name"], Key=key
            )


@checks("aws:dynamodb/tableItem:TableItem")
def _table_item(box: Sandbox, made: Made) -> None:
    item = json.loads(made.inputs["item"])
    keys = [made.inputs["hashKey"], made.inputs.get("rangeKey")]
    key = {k: item[k] for k in keys if k}
    got = client(box, "dynamodb", made).get_item(TableName=made.inputs["tableName"], Key=key)
    assert got["Item"] == item


@checks("aws:s3/bucket:Bucket")
def _bucket(box: Sandbox, made: Made) -> None:
    assert made.id.startswith(made.inputs["bucketPrefix"])
    located = client(box, "s3", made).get_bucket_location(Bucket=made.id)["LocationConstraint"]
    assert (located or "us-east-1") == made.region


@checks("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
def _bucket_private(box: Sandbox, made: Made) -> None:
    got = client(box, "s3", made).get_public_access_block(Bucket=made.inputs["bucket"])
    config = got["PublicAccessBlockConfiguration"]
    assert config == {
        "BlockPublicAcls": made.inputs["blockPublicAcls"],
        "IgnorePublicAcls": made.inputs["ignorePublicAcls"],
        "BlockPublicPolicy": made.inputs["blockPublicPolicy"],
        "RestrictPublicBuckets": made.inputs["restrictPublicBuckets"],
    }


@checks("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
def _bucket_encryption(box: Sandbox, made: Made) -> None:
    got = client(box, "s3", made).get_bucket_encryption(Bucket=made.inputs["bucket"])
    rule = got["ServerSideEncryptionConfiguration"]["Rules"][0]
    wanted = made.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == wanted


@checks("aws:s3/bucketPolicy:BucketPolicy")
def _bucket_policy(box: Sandbox, made: Made) -> None:
    got = client(box, "s3", made).get_bucket_policy(Bucket=made.inputs["bucket"])["Policy"]
    assert json.loads(got) == json.loads(made.inputs["policy"])


@checks("aws:s3/bucketVersioning:BucketVersioning")
def _bucket_versioning(box: Sandbox, made: Made) -> None:
    got = client(box, "s3", made).get_bucket_versioning(Bucket=made.inputs["bucket"])
    assert got.get("Status") == made.inputs["versioningConfiguration"]["status"]


@checks("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
def _bucket_replication(box: Sandbox, made: Made) -> None:
    got = client(box, "s3", made).get_bucket_replication(Bucket=made.inputs["bucket"])
    config = got["ReplicationConfiguration"]
    assert config["Role"] == made.inputs["role"]
    assert sorted((r["ID"], r["Destination"]["Bucket"]) for r in config["Rules"]) == sorted(
        (r["id"], r["destination"]["bucket"]) for r in made.inputs["rules"]
    )


@checks("aws:iam/role:Role")
def _role(box: Sandbox, made: Made) -> None:
    got = client(box, "iam", made).get_role(RoleName=made.inputs["name"])["Role"]
    assert got["Arn"] == made.outputs["arn"]
    document = got["AssumeRolePolicyDocument"]
    assert (json.loads(document) if isinstance(document, str) else document) == json.loads(
        made.inputs["assumeRolePolicy"]
    )


@checks("aws:iam/rolePolicy:RolePolicy")
def _role_policy(box: Sandbox, made: Made) -> None:
    got = client(box, "iam", made).get_role_policy(
        RoleName=made.inputs["role"], PolicyName=made.outputs["name"]
    )
    document = got["PolicyDocument"]
    assert (json.loads(document) if isinstance(document, str) else document) == json.loads(
        made.inputs["policy"]
    )


@checks("aws:iam/policy:Policy")
def _managed_policy(box: Sandbox, made: Made) -> None:
    iam = client(box, "iam", made)
    policy = iam.get_policy(PolicyArn=made.id)["Policy"]
    version = iam.get_policy_version(PolicyArn=made.id, VersionId=policy["DefaultVersionId"])
    document = version["PolicyVersion"]["Document"]
    assert (json.loads(document) if isinstance(document, str) else document) == json.loads(
        made.inputs["policy"]
    )


@checks("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _attachment(box: Sandbox, made: Made) -> None:
    got = client(box, "iam", made).list_attached_role_policies(RoleName=made.inputs["role"])
    assert made.inputs["policyArn"] in {p["PolicyArn"] for p in got["AttachedPolicies"]}


@checks("aws:cloudwatch/logGroup:LogGroup")
def _log_group(box: Sandbox, made: Made) -> None:
    groups = client(box, "logs", made).describe_log_groups(logGroupNamePrefix=made.inputs["name"])
    group = next(g for g in groups["logGroups"] if g["logGroupName"] == made.inputs["name"])
    assert group["retentionInDays"] == int(made.inputs["retentionInDays"])


@checks("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    [alarm] = client(box, "cloudwatch", made).describe_alarms(AlarmNames=[inputs["name"]])[
        "MetricAlarms"
    ]
    assert (
        alarm["Namespace"],
        alarm["MetricName"],
        alarm["Statistic"],
        alarm["ComparisonOperator"],
        alarm["Threshold"],
        alarm["EvaluationPeriods"],
        alarm["Period"],
        alarm["TreatMissingData"],
    ) == (
        inputs["namespace"],
        inputs["metricName"],
        inputs["statistic"],
        inputs["comparisonOperator"],
        float(inputs["threshold"]),
        int(inputs["evaluationPeriods"]),
        int(inputs["period"]),
        inputs["treatMissingData"],
    )
    assert alarm.get("DatapointsToAlarm") == (
        int(inputs["datapointsToAlarm"]) if "datapointsToAlarm" in inputs else None
    )
    assert alarm["AlarmActions"] == inputs["alarmActions"]
    assert alarm["OKActions"] == inputs["okActions"]
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == inputs["dimensions"]


@checks("aws:cloudwatch/eventBus:EventBus")
def _bus(box: Sandbox, made: Made) -> None:
    got = client(box, "events", made).describe_event_bus(Name=made.inputs["name"])
    assert got["Arn"] == made.outputs["arn"]


@checks("aws:cloudwatch/eventRule:EventRule")
def _rule(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    bus = {"EventBusName": inputs["eventBusName"]} if "eventBusName" in inputs else {}
    rule = client(box, "events", made).describe_rule(Name=inputs["name"], **bus)
    assert rule["State"] == inputs.get("state", "ENABLED")
    assert rule.get("ScheduleExpression") == inputs.get("scheduleExpression")
    pattern = inputs.get("eventPattern")
    assert (json.loads(rule["EventPattern"]) if "EventPattern" in rule else None) == (
        json.loads(pattern) if pattern else None
    )


@checks("aws:cloudwatch/eventTarget:EventTarget")
def _target(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    bus = {"EventBusName": inputs["eventBusName"]} if "eventBusName" in inputs else {}
    targets = client(box, "events", made).list_targets_by_rule(Rule=inputs["rule"], **bus)
    [target] = [t for t in targets["Targets"] if t["Id"] == made.outputs["targetId"]]
    assert target["Arn"] == inputs["arn"]
    retry = inputs.get("retryPolicy")
    if retry:
        assert target["RetryPolicy"] == {
            "MaximumEventAgeInSeconds": int(retry["maximumEventAgeInSeconds"]),
            "MaximumRetryAttempts": int(retry["maximumRetryAttempts"]),
        }
    if inputs.get("deadLetterConfig"):
        assert target["DeadLetterConfig"] == {"Arn": inputs["deadLetterConfig"]["arn"]}


@checks("aws:lambda/function:Function")
def _function(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    lam = client(box, "lambda", made)
    config = lam.get_function(FunctionName=inputs["name"])["Configuration"]
    assert (
        config["Handler"],
        config["Runtime"],
        config["Timeout"],
        config["MemorySize"],
        config["Role"],
        config["TracingConfig"]["Mode"],
    ) == (
        inputs["handler"],
        inputs["runtime"],
        int(inputs["timeout"]),
        int(inputs["memorySize"]),
        inputs["role"],
        inputs["tracingConfig"]["mode"],
    )
    assert config["Environment"]["Variables"] == inputs["environment"]["variables"]
    code = Path(inputs["code"]["archive"]).read_bytes()
    assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    reserved = lam.get_function_concurrency(FunctionName=inputs["name"]).get(
        "ReservedConcurrentExecutions"
    )
    wanted = inputs.get("reservedConcurrentExecutions")
    assert reserved == (int(wanted) if wanted is not None else None)


@checks("aws:lambda/alias:Alias")
def _alias(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    got = client(box, "lambda", made).get_alias(
        FunctionName=inputs["functionName"], Name=inputs["name"]
    )
    assert got["FunctionVersion"] == inputs["functionVersion"] != "$LATEST"


@checks("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
def _async_config(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    qualifier = {"Qualifier": inputs["qualifier"]} if "qualifier" in inputs else {}
    got = client(box, "lambda", made).get_function_event_invoke_config(
        FunctionName=inputs["functionName"], **qualifier
    )
    assert got["FunctionArn"].endswith(f":function:{inputs['functionName']}")  # unqualified
    assert got["MaximumEventAgeInSeconds"] == int(inputs["maximumEventAgeInSeconds"])
    assert got["MaximumRetryAttempts"] == int(inputs.get("maximumRetryAttempts", 2))


@checks("aws:lambda/eventSourceMapping:EventSourceMapping")
def _mapping(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    got = client(box, "lambda", made).get_event_source_mapping(UUID=made.id)
    assert got["FunctionArn"] == inputs["functionName"]  # the alias, as Lambda reports it
    assert got["EventSourceArn"] == inputs["eventSourceArn"]
    assert got["State"] == ("Enabled" if inputs["enabled"] else "Disabled")
    assert got["BatchSize"] == int(inputs["batchSize"])
    assert got.get("FunctionResponseTypes") == inputs.get("functionResponseTypes")
    assert got.get("StartingPosition") == inputs.get(
        "startingPosition", got.get("StartingPosition")
    )
    if "startingPosition" in inputs:
        assert got["StartingPosition"] == inputs["startingPosition"]
    retries = inputs.get("maximumRetryAttempts")
    assert got.get("MaximumRetryAttempts") == (int(retries) if retries is not None else None)
    assert got.get("BisectBatchOnFunctionError") == inputs.get("bisectBatchOnFunctionError")
    failure = (inputs.get("destinationConfig") or {}).get("onFailure")
    assert (got.get("DestinationConfig") or {}).get("OnFailure") == (
        {"Destination": failure["destinationArn"]} if failure else None
    )


@checks("aws:lambda/permission:Permission")
def _permission(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    qualifier = {"Qualifier": inputs["qualifier"]} if "qualifier" in inputs else {}
    got = client(box, "lambda", made).get_policy(FunctionName=inputs["function"], **qualifier)
    [statement] = [
        s for s in json.loads(got["Policy"])["Statement"] if s["Sid"] == made.outputs["statementId"]
    ]
    assert statement["Principal"] == {"Service": inputs["principal"]}
    assert statement["Action"] == inputs["action"]


@checks("aws:apigatewayv2/api:Api")
def _api(box: Sandbox, made: Made) -> None:
    got = client(box, "apigatewayv2", made).get_api(ApiId=made.id)
    assert (got["Name"], got["ProtocolType"]) == (made.inputs["name"], made.inputs["protocolType"])
    assert got["ApiEndpoint"] == made.outputs["apiEndpoint"]


@checks("aws:apigatewayv2/stage:Stage")
def _stage(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    got = client(box, "apigatewayv2", made).get_stage(
        ApiId=inputs["apiId"], StageName=inputs["name"]
    )
    assert got["AutoDeploy"] == inputs["autoDeploy"]
    throttle = inputs["defaultRouteSettings"]
    assert got["DefaultRouteSettings"]["ThrottlingBurstLimit"] == int(
        throttle["throttlingBurstLimit"]
    )


@checks("aws:apigatewayv2/authorizer:Authorizer")
def _authorizer(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    got = client(box, "apigatewayv2", made).get_authorizer(
        ApiId=inputs["apiId"], AuthorizerId=made.id
    )
    assert got["AuthorizerType"] == inputs["authorizerType"]
    assert got["JwtConfiguration"]["Issuer"] == inputs["jwtConfiguration"]["issuer"]


@checks("aws:apigatewayv2/integration:Integration")
def _integration(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    got = client(box, "apigatewayv2", made).get_integration(
        ApiId=inputs["apiId"], IntegrationId=made.id
    )
    assert (got["IntegrationType"], got["IntegrationUri"], got["PayloadFormatVersion"]) == (
        inputs["integrationType"],
        inputs["integrationUri"],
        inputs["payloadFormatVersion"],
    )


@checks("aws:apigatewayv2/route:Route")
def _route(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    got = client(box, "apigatewayv2", made).get_route(ApiId=inputs["apiId"], RouteId=made.id)
    assert (got["RouteKey"], got["Target"], got["AuthorizationType"]) == (
        inputs["routeKey"],
        inputs["target"],
        inputs["authorizationType"],
    )
    assert got.get("AuthorizerId") == inputs.get("authorizerId")


@checks("aws:apigatewayv2/domainName:DomainName")
def _domain(box: Sandbox, made: Made) -> None:
    got = client(box, "apigatewayv2", made).get_domain_name(DomainName=made.id)
    [config] = got["DomainNameConfigurations"]
    target = made.outputs["domainNameConfiguration"]["targetDomainName"]
    assert config["ApiGatewayDomainName"] == target
    assert target.endswith(f".execute-api.{made.region}.amazonaws.com")


@checks("aws:apigatewayv2/apiMapping:ApiMapping")
def _api_mapping(box: Sandbox, made: Made) -> None:
    got = client(box, "apigatewayv2", made).get_api_mappings(DomainName=made.inputs["domainName"])
    assert made.inputs["apiId"] in {m["ApiId"] for m in got["Items"]}


@checks("aws:acm/certificate:Certificate")
def _certificate(box: Sandbox, made: Made) -> None:
    got = client(box, "acm", made).describe_certificate(CertificateArn=made.id)["Certificate"]
    assert got["DomainName"] == made.inputs["domainName"]


@checks("aws:acm/certificateValidation:CertificateValidation")
def _validation(box: Sandbox, made: Made) -> None:
    acm = client(box, "acm", made)
    got = acm.describe_certificate(CertificateArn=made.inputs["certificateArn"])["Certificate"]
    assert got["Status"] == "ISSUED"
    route53 = plain(box, "route53", GLOBAL)
    zones = route53.list_hosted_zones()["HostedZones"]
    named = {
        r["Name"].rstrip(".")
        for z in zones
        for r in route53.list_resource_record_sets(HostedZoneId=z["Id"])["ResourceRecordSets"]
    }
    assert {f.rstrip(".") for f in made.inputs["validationRecordFqdns"]} <= named


@checks("aws:route53/healthCheck:HealthCheck")
def _health_check(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    got = plain(box, "route53", GLOBAL).get_health_check(HealthCheckId=made.id)["HealthCheck"]
    config = got["HealthCheckConfig"]
    assert (
        config["Type"],
        config["FullyQualifiedDomainName"],
        config["Port"],
        config["ResourcePath"],
        config["RequestInterval"],
        config["FailureThreshold"],
        config.get("Inverted", False),
    ) == (
        inputs["type"],
        inputs["fqdn"],
        int(inputs["port"]),
        inputs["resourcePath"],
        int(inputs["requestInterval"]),
        int(inputs["failureThreshold"]),
        inputs["invertHealthcheck"],
    )


@checks("aws:route53/record:Record")
def _record(box: Sandbox, made: Made) -> None:
    inputs = made.inputs
    listed = plain(box, "route53", GLOBAL).list_resource_record_sets(HostedZoneId=inputs["zoneId"])
    name = inputs["name"].rstrip(".")
    [record] = [
        r
        for r in listed["ResourceRecordSets"]
        if r["Name"].rstrip(".") == name
        and r["Type"] == inputs["type"]
        and r.get("SetIdentifier") == inputs.get("setIdentifier")
    ]
    assert record["TTL"] == int(inputs["ttl"])
    assert [v["Value"] for v in record["ResourceRecords"]] == inputs["records"]
    assert record.get("HealthCheckId") == inputs.get("healthCheckId")
    policies = inputs.get("failoverRoutingPolicies") or []
    assert record.get("Failover") == (policies[0]["type"] if policies else None)
