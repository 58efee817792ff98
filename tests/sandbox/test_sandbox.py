"""The sandbox, checked from outside: plain boto3 calls against each region's own server.

Nothing here goes through ``controller.aws`` or the actions: every check is a boto3 client made
on the spot with the endpoint from the sandbox's state, so a bug in our clients cannot hide a
bug in the sandbox.
"""

from __future__ import annotations

import errno
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest

from controller.errors import FailoverError
from controller.topology import Kind, Topology
from controller.topology.manifest import load_manifest
from sandbox import Sandbox
from sandbox import down as sandbox_down
from sandbox import servers as sandbox_servers
from tests.kit.emulator import pid_alive
from tests.kit.paths import EXAMPLE

pytestmark = pytest.mark.sandbox

PRIMARY, STANDBY, OTHER = "us-east-1", "us-west-2", "eu-west-1"
REGIONS = (PRIMARY, STANDBY, OTHER)


def client(box: Sandbox, service: str, region: str, *, read_timeout: float = 10.0) -> Any:
    """A plain boto3 client on ``region``'s own server (``global`` for Route 53 and control)."""
    config = botocore.config.Config(
        connect_timeout=1,
        read_timeout=read_timeout,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    return boto3.client(
        service,
        endpoint_url=box.state.servers[region].url,
        region_name="us-east-1" if region == "global" else region,
        config=config,
    )


@pytest.fixture(scope="module")
def pristine(sandbox: Sandbox) -> Sandbox:
    """The sandbox as ``up`` leaves it, shared by the read-only checks of this module."""
    sandbox.reset()
    return sandbox


def names(topology: Topology, kind: Kind, region: str) -> list[str]:
    return [topology.physical_name(n, region) for n, _ in topology.of_kind(kind)]


def region_target(box: Sandbox, region: str) -> str:
    """The host the failover records name for ``region``: its custom domain's target."""
    endpoint = box.manifest.ref("dns", region).endpoint
    assert endpoint is not None
    return endpoint.split("://")[1]


# -- what the program deployed (every setting of every resource: test_deployed.py) ----------


@pytest.mark.parametrize("region", REGIONS)
def test_api_has_its_routes_and_an_open_health_route(pristine: Sandbox, region: str) -> None:
    gateway = client(pristine, "apigatewayv2", region)
    apis = {a["Name"]: a for a in gateway.get_apis()["Items"]}
    api = apis[pristine.topology.physical_name("api", region)]
    routes = {r["RouteKey"]: r for r in gateway.get_routes(ApiId=api["ApiId"])["Items"]}
    assert set(routes) == {"GET /orders/{id}", "POST /orders", "GET /health"}
    assert routes["GET /health"]["AuthorizationType"] == "NONE"
    # JWT, not IAM: a SigV4 signature is for one region and the name moves between regions
    assert routes["POST /orders"]["AuthorizationType"] == "JWT"
    assert routes["POST /orders"]["AuthorizerId"] == routes["GET /orders/{id}"]["AuthorizerId"]
    assert pristine.manifest.regions[region].api_endpoint == api["ApiEndpoint"]


def test_mappings_are_enabled_only_in_the_primary(pristine: Sandbox) -> None:
    """The application's mappings; the watcher's chain mapping runs in every region (the
    watchers watch from everywhere: controller.watchers.chain)."""
    for region in REGIONS:
        lam = client(pristine, "lambda", region)
        watcher = pristine.manifest.regions[region].watcher
        assert watcher is not None
        every = lam.list_event_source_mappings()["EventSourceMappings"]
        mine = {
            m["UUID"]
            for m in lam.list_event_source_mappings(FunctionName=watcher.function)[
                "EventSourceMappings"
            ]
        }
        app = [m for m in every if m["UUID"] not in mine]
        assert {m["State"] for m in app} == ({"Enabled"} if region == PRIMARY else {"Disabled"})
        assert len(app) == 2, region
        assert len(mine) == 1 and {m["State"] for m in every if m["UUID"] in mine} == {"Enabled"}


def test_schedules_are_enabled_only_in_the_primary(pristine: Sandbox) -> None:
    for region in REGIONS:
        events = client(pristine, "events", region)
        rule = events.describe_rule(Name=pristine.topology.physical_name("nightly-report", region))
        assert rule["State"] == ("ENABLED" if region == PRIMARY else "DISABLED"), region
        target = events.list_targets_by_rule(Rule=rule["Name"])["Targets"][0]
        assert target["Arn"].endswith(f"orders-worker-{region}:live")


def test_mode_parameters_say_active_in_the_primary_and_standby_elsewhere(pristine: Sandbox) -> None:
    """The region's mode says it; each component's says ``normal`` (the region's mode holds)."""
    topology = pristine.topology
    for region in REGIONS:
        ssm = client(pristine, "ssm", region)
        wanted = "active" if region == PRIMARY else "standby"
        assert (
            ssm.get_parameter(Name=topology.mode_parameter(region))["Parameter"]["Value"] == wanted
        )
        for name in topology.components:
            parameter = topology.component_mode_parameter(name, region)
            assert ssm.get_parameter(Name=parameter)["Parameter"]["Value"] == "normal", parameter


def test_failover_records_point_at_the_primary(pristine: Sandbox) -> None:
    route53 = client(pristine, "route53", "global")
    dns = pristine.manifest.dns
    assert dns is not None
    records = {
        r["SetIdentifier"]: r
        for r in route53.list_resource_record_sets(HostedZoneId=dns.zone_id)["ResourceRecordSets"]
        if r.get("Failover")
    }
    # a record names the regional target of the region's custom domain; its health check
    # probes the region's own API host
    targets = {r: region_target(pristine, r) for r in REGIONS}
    hosts = {r: pristine.manifest.regions[r].api_endpoint.split("://")[1] for r in REGIONS}
    assert records["primary"]["Failover"] == "PRIMARY"
    assert records["primary"]["ResourceRecords"] == [{"Value": targets[PRIMARY]}]
    assert records["primary"]["HealthCheckId"] == dns.health_checks[PRIMARY]
    assert records["secondary"]["Failover"] == "SECONDARY"
    assert records["secondary"]["ResourceRecords"] == [{"Value": targets[STANDBY]}]
    for region in REGIONS:
        check = route53.get_health_check(HealthCheckId=dns.health_checks[region])["HealthCheck"]
        assert check["HealthCheckConfig"]["FullyQualifiedDomainName"] == hosts[region]
        assert check["HealthCheckConfig"]["ResourcePath"] == "/health"
        assert (check["HealthCheckConfig"]["Type"], check["HealthCheckConfig"]["Port"]) == (
            "HTTPS",
            443,
        )
        gateway = client(pristine, "apigatewayv2", region)
        domain = gateway.get_domain_name(DomainName=dns.record)["DomainNameConfigurations"][0]
        assert domain["ApiGatewayDomainName"] == targets[region]


def test_control_table_answers_through_its_replica_regions(pristine: Sandbox) -> None:
    for region in ("us-east-1", "us-west-2"):  # the example's replicas (us-east-2: witness)
        table = client(pristine, "dynamodb", region).describe_table(
            TableName="orders-failover-control"
        )["Table"]
        assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert pristine.manifest.control.regions == ["us-east-1", "us-west-2"]


def test_manifest_on_disk_names_every_component_in_every_region(pristine: Sandbox) -> None:
    manifest = load_manifest(pristine.manifest_path)
    for region in REGIONS:
        assert set(manifest.regions[region].components) == set(pristine.topology.components)
        assert manifest.endpoints[region] == pristine.state.servers[region].url
    worker = manifest.ref("worker", PRIMARY)
    assert worker.alias == "live" and len(worker.mappings) == 1 and worker.role_arn
    assert manifest.ref("dns", STANDBY).set_identifier == "secondary"


def test_enabled_mappings_leave_messages_and_stream_records_to_the_sandbox(
    fresh_sandbox: Sandbox,
) -> None:
    """moto would consume them with a stub invocation; the sandbox's own pollers need them."""
    queue = fresh_sandbox.manifest.ref("orders-queue", PRIMARY)
    sqs = client(fresh_sandbox, "sqs", PRIMARY)
    sqs.send_message(QueueUrl=queue.queue_url, MessageBody="order 1")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=queue.queue_url)["Messages"]] == [
        "order 1"
    ]
    table = fresh_sandbox.manifest.ref("orders-table", PRIMARY)
    client(fresh_sandbox, "dynamodb", PRIMARY).put_item(
        TableName=table.name, Item={"order_id": {"S": "1"}}
    )
    streams = client(fresh_sandbox, "dynamodbstreams", PRIMARY)
    shard = streams.describe_stream(StreamArn=table.stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=table.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT"]


# -- failing and healing ---------------------------------------------------------------------


def answers(box: Sandbox, region: str) -> bool:
    client(box, "sqs", region, read_timeout=5).list_queues()
    return True


def failure(call: Callable[[], Any]) -> BaseException | None:
    """What ``call`` (one attempt: :func:`client`) raised, or None. Its type says how the call
    ended (refused, or its read timed out) without timing it: on two busy cores a wall bound
    fails now and then for no fault of the code."""
    try:
        call()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        return exc
    return None


def test_fail_down_refuses_calls_at_once_while_other_regions_answer(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.fail(PRIMARY, "down")
    error = failure(lambda: client(fresh_sandbox, "sqs", PRIMARY).list_queues())
    # refused: a connect that timed out would be a ConnectTimeoutError, which this is not
    assert isinstance(error, botocore.exceptions.EndpointConnectionError), error
    assert answers(fresh_sandbox, STANDBY) and answers(fresh_sandbox, OTHER)
    assert answers(fresh_sandbox, "global")


def test_a_downed_regions_port_stays_reserved_for_its_return(fresh_sandbox: Sandbox) -> None:
    """Nothing else (another sandbox, a client's ephemeral port) can take a dead region's port:
    the launcher keeps it bound, never listening, so it refuses and the region comes back on it."""
    port = fresh_sandbox.state.servers[STANDBY].port
    fresh_sandbox.fail(STANDBY, "down")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        with pytest.raises(OSError) as taken:
            other.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE
        with pytest.raises(ConnectionRefusedError):
            other.connect(("127.0.0.1", port))
    fresh_sandbox.heal(STANDBY)
    assert fresh_sandbox.state.servers[STANDBY].port == port
    assert answers(fresh_sandbox, STANDBY)


def test_a_region_killed_and_healed_comes_back_with_what_it_held(fresh_sandbox: Sandbox) -> None:
    """An AWS region's outage takes no resource and no data with it: a primary comes back still
    active (the watchers fence it), with the item written before it went down, its mappings,
    rules and mode as they were, and its ids (the manifest still names them)."""
    box = fresh_sandbox
    topology = box.topology
    manifest_before = box.manifest.model_copy(deep=True)
    table = box.manifest.ref("orders-table", PRIMARY).name
    client(box, "dynamodb", PRIMARY).put_item(TableName=table, Item={"order_id": {"S": "kept"}})
    box.fail(PRIMARY, "down")
    assert not sandbox_servers.is_ours(box.state.servers[PRIMARY])
    box.heal(PRIMARY)
    lam = client(box, "lambda", PRIMARY)
    for name in names(topology, Kind.FUNCTION, PRIMARY):
        lam.get_alias(FunctionName=name, Name="live")
    uuids = box.manifest.ref("worker", PRIMARY).mappings
    assert lam.get_event_source_mapping(UUID=uuids[0])["State"] == "Enabled"
    rule = client(box, "events", PRIMARY).describe_rule(
        Name=topology.physical_name("nightly-report", PRIMARY)
    )
    assert rule["State"] == "ENABLED"
    mode = client(box, "ssm", PRIMARY).get_parameter(Name=topology.mode_parameter(PRIMARY))
    assert mode["Parameter"]["Value"] == "active"
    got = client(box, "dynamodb", PRIMARY).get_item(
        TableName=table, Key={"order_id": {"S": "kept"}}
    )
    assert "Item" in got
    assert box.manifest == manifest_before
    box.reset()  # and a reset after it still puts back what the program deployed
    gone = client(box, "dynamodb", PRIMARY).get_item(
        TableName=table, Key={"order_id": {"S": "kept"}}
    )
    assert "Item" not in gone


def test_fail_hang_makes_calls_time_out_and_heal_resumes_its_alarms_untouched(
    fresh_sandbox: Sandbox,
) -> None:
    """A hung region's alarms are not set by the sandbox (issue 25): they keep the states they
    had through the outage and the heal, until its own evaluator, from its metrics, says
    otherwise (test_lambda.py)."""
    health = [
        a for ref in fresh_sandbox.manifest.regions[STANDBY].components.values() for a in ref.alarms
    ]
    cloudwatch = client(fresh_sandbox, "cloudwatch", STANDBY)
    before = {a["AlarmName"]: a["StateValue"] for a in cloudwatch.describe_alarms(
        AlarmNames=health)["MetricAlarms"]}  # fmt: skip
    fresh_sandbox.fail(STANDBY, "hang")
    error = failure(lambda: client(fresh_sandbox, "sqs", STANDBY, read_timeout=1).list_queues())
    assert isinstance(error, botocore.exceptions.ReadTimeoutError), error  # accepted, unanswered
    assert answers(fresh_sandbox, PRIMARY) and answers(fresh_sandbox, OTHER)
    fresh_sandbox.heal(STANDBY)
    assert answers(fresh_sandbox, STANDBY)
    states = cloudwatch.describe_alarms(AlarmNames=health)["MetricAlarms"]
    assert len(states) == len(health) > 0
    assert {a["AlarmName"]: a["StateValue"] for a in states} == before
    assert not [a for a in states if a["StateReason"].startswith("sandbox: region")]


def test_fail_rejects_an_unknown_region(fresh_sandbox: Sandbox) -> None:
    with pytest.raises(FailoverError, match="unknown region"):
        fresh_sandbox.fail("ap-south-1", "down")


def test_second_up_is_refused_and_changes_nothing(fresh_sandbox: Sandbox) -> None:
    before = fresh_sandbox.state_dir.joinpath("sandbox.json").read_text()
    with pytest.raises(FailoverError, match="already running"):
        Sandbox.up(EXAMPLE, fresh_sandbox.state_dir)
    assert fresh_sandbox.state_dir.joinpath("sandbox.json").read_text() == before
    assert all(answers(fresh_sandbox, r) for r in (*REGIONS, "global"))


def test_reset_restores_a_failed_region(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.fail(PRIMARY, "down")
    fresh_sandbox.fail(STANDBY, "hang")
    fresh_sandbox.reset()
    assert all(answers(fresh_sandbox, r) for r in REGIONS)
    lam = client(fresh_sandbox, "lambda", PRIMARY)
    assert {m["State"] for m in lam.list_event_source_mappings()["EventSourceMappings"]} == {
        "Enabled"
    }


def fingerprint(box: Sandbox, *, ids: bool = True) -> dict[str, Any]:
    """What a test may change, read from every server: functions and their mappings, queues and
    their messages, tables and their items, parameters, rules, alarms, and the DNS records;
    without ``ids``, leaving out the ids moto draws (mappings', health checks', and a stream's
    label, a time), which two provisionings draw differently."""
    seen: dict[str, Any] = {}
    for region in REGIONS:
        lam, sqs = client(box, "lambda", region), client(box, "sqs", region)
        ddb, ssm = client(box, "dynamodb", region), client(box, "ssm", region)
        events, cloudwatch = client(box, "events", region), client(box, "cloudwatch", region)
        queues = sqs.list_queues().get("QueueUrls", [])
        seen[region] = {
            "functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]),
            "mappings": sorted(
                (m["UUID"] if ids else m["EventSourceArn"].split("/stream/")[0], m["State"])
                for m in lam.list_event_source_mappings()["EventSourceMappings"]
            ),
            "queues": {
                url: sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
                for url in queues
            },
            "items": {t: ddb.scan(TableName=t)["Items"] for t in ddb.list_tables()["TableNames"]},
            "parameters": sorted(
                (p["Name"], p["Value"]) for p in ssm.get_parameters_by_path(Path="/")["Parameters"]
            ),
            "rules": sorted((r["Name"], r["State"]) for r in events.list_rules()["Rules"]),
            "alarms": sorted(
                (a["AlarmName"], a["StateValue"])
                for a in cloudwatch.describe_alarms()["MetricAlarms"]
            ),
        }
    dns = box.manifest.dns
    assert dns is not None
    route53 = client(box, "route53", "global")
    records = route53.list_resource_record_sets(HostedZoneId=dns.zone_id)["ResourceRecordSets"]
    seen["dns"] = [
        r if ids else {k: v for k, v in r.items() if k != "HealthCheckId"} for r in records
    ]
    return seen


def scribble(box: Sandbox, region: str) -> None:
    """Change something of every kind the fingerprint reads, in ``region``."""
    topology = box.topology
    lam, sqs = client(box, "lambda", region), client(box, "sqs", region)
    queue = sqs.get_queue_url(QueueName=names(topology, Kind.QUEUE, region)[0])["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="left over")
    sqs.create_queue(QueueName="left-over")
    table = box.manifest.ref(next(n for n, _ in topology.of_kind(Kind.TABLE)), region).name
    client(box, "dynamodb", region).put_item(TableName=table, Item={"order_id": {"S": "left-over"}})
    client(box, "ssm", region).put_parameter(
        Name=topology.mode_parameter(region), Value="fenced", Type="String", Overwrite=True
    )
    for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    rule = topology.physical_name("nightly-report", region)
    client(box, "events", region).disable_rule(Name=rule)
    alarm = client(box, "cloudwatch", region).describe_alarms()["MetricAlarms"][0]["AlarmName"]
    client(box, "cloudwatch", region).set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="a test"
    )


def test_a_reset_puts_back_exactly_what_up_deployed(fresh_sandbox: Sandbox) -> None:
    before = fingerprint(fresh_sandbox)
    for region in REGIONS:
        scribble(fresh_sandbox, region)
    assert fingerprint(fresh_sandbox) != before
    fresh_sandbox.reset()
    assert fingerprint(fresh_sandbox) == before
    assert fresh_sandbox.manifest == load_manifest(fresh_sandbox.manifest_path)


def test_a_reset_forgets_the_cut_off_marker_a_partitioned_watcher_wrote(
    fresh_sandbox: Sandbox,
) -> None:
    """Self-fencing keeps since when a region is cut off in an SSM parameter the program does
    not declare: the controller writes it (no sandbox module does), and a reset, which puts
    back what the program deployed, leaves none behind for the next test's watcher to count."""
    from controller.watchers.isolation import CUT_OFF, Isolation, cut_off_parameter
    from sandbox.deploy.engine import load_stack
    from sandbox.state import STACK_FILE

    box = fresh_sandbox
    name = cut_off_parameter(box.topology, box.manifest, PRIMARY)
    declared = {
        m.inputs["name"]
        for m in load_stack(box.state_dir / STACK_FILE)
        if m.typ == "aws:ssm/parameter:Parameter"
    }
    assert name not in declared and box.topology.mode_parameter(PRIMARY) in declared
    ssm = client(box, "ssm", PRIMARY)
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=name)
    verdict = Isolation(box.topology, box.manifest, box.clients, PRIMARY).cut_off()
    assert verdict.action == CUT_OFF  # counted from now: nothing fenced yet
    assert float(ssm.get_parameter(Name=name)["Parameter"]["Value"]) > 0
    box.reset()
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=name)


def test_a_restarted_server_reads_its_snapshot_from_its_file_and_keeps_it(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    before = fingerprint(box)
    box.fail(STANDBY, "down")
    box.heal(STANDBY)  # a new process: what it holds came from the file written at its kill
    url = box.state.servers[STANDBY].url
    assert not sandbox_servers.restore(url)  # nothing of its own in memory
    scribble(box, PRIMARY)
    scribble(box, STANDBY)
    box.reset()  # the deployment's copy, read from its file, and kept from then on
    assert fingerprint(box) == before
    scribble(box, STANDBY)
    assert sandbox_servers.restore(url)
    assert fingerprint(box)[STANDBY] == before[STANDBY]


# -- the CLI, on a sandbox of its own ---------------------------------------------------------


def test_cli_up_show_fail_heal_down_leaves_no_process(
    sandbox_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Any]
) -> None:
    monkeypatch.chdir(tmp_path)
    pids: list[int] = []
    try:
        up = cli("sandbox", "up", "--spec", EXAMPLE, "--json")
        assert up.code == 0, up.err
        pids = [s["pid"] for s in json.loads(up.out)["servers"].values()]
        assert (tmp_path / ".failover" / "manifest.json").exists()
        again = cli("sandbox", "up", "--spec", EXAMPLE)
        assert again.code == 1 and "already running" in again.err
        shown = json.loads(cli("sandbox", "show", "--json").out)
        assert set(shown["servers"]) == {*REGIONS, "us-east-2", "global", "control-store"}
        assert all(s["alive"] and s["condition"] == "running" for s in shown["servers"].values())
        assert cli("sandbox", "fail", OTHER, "--mode", "hang").code == 0
        shown = json.loads(cli("sandbox", "show", "--json").out)
        assert shown["servers"][OTHER]["condition"] == "hung"
        assert cli("sandbox", "heal", OTHER).code == 0
        down = cli("sandbox", "down")
        assert down.code == 0, down.err
        assert not any(pid_alive(pid) for pid in pids)
        assert not (tmp_path / ".failover" / "sandbox.json").exists()
        assert cli("sandbox", "show").code == 1
    finally:
        sandbox_down(tmp_path / ".failover")  # does nothing when the test stopped it


def test_every_server_takes_a_modelled_round_trip_and_can_drop_it(fresh_sandbox: Sandbox) -> None:
    import urllib.request

    from sandbox import controls, launcher

    box = fresh_sandbox
    box.model_round_trip(0.01)
    try:
        for server in box.state.servers.values():
            url = f"{server.url}{launcher.ROUND_TRIP_PATH}?seconds=0.01"  # loopback only
            request = urllib.request.Request(  # noqa: S310
                url, method="POST", headers={controls.SECRET_HEADER: box.state.secret}
            )
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                assert answer.status == 204  # moto itself answers 404 to a path it does not know
        ssm = boto3.client(
            "ssm", region_name="us-east-1", endpoint_url=box.manifest.endpoints["us-east-1"]
        )
        assert (
            ssm.get_parameter(Name=box.topology.mode_parameter("us-east-1"))["Parameter"]["Value"]
            == "active"
        )
    finally:
        box.model_round_trip(0.0)
