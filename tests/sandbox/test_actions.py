"""The actions against the emulator: idempotent, read back with plain boto3, and fault-tolerant.

Every test starts from a fresh sandbox (the example topology; us-east-1 active). What an action
did is checked with plain boto3 clients, not through our code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

from controller.actions.base import Action, State
from controller.actions.registry import action_for
from controller.actions.table import read_replication_lag
from controller.aws import AwsSettings, Clients
from controller.contract import GLOBAL, DegradedMode
from controller.errors import PermanentStepError, TransientStepError
from controller.topology import Topology
from controller.topology.manifest import ComponentRef
from sandbox import Sandbox
from tests.kit.emulator import HANG_BOUND, fault, plain, region_host

pytestmark = pytest.mark.sandbox

PRIMARY, STANDBY, OTHER = "us-east-1", "us-west-2", "eu-west-1"
PASSIVE = ["config", "orders-table", "receipts-bucket", "orders-queue", "api"]


def action(box: Sandbox, component: str, region: str, clients: Clients | None = None) -> Action:
    return action_for(box.topology, box.manifest, clients or box.clients, component, region)


def mode_of(box: Sandbox, component: str, region: str) -> str:
    name = box.topology.component_mode_parameter(component, region)
    return str(plain(box, "ssm", region).get_parameter(Name=name)["Parameter"]["Value"])


def function_facts(box: Sandbox, component: str, region: str) -> tuple[Any, list[str]]:
    """(reserved concurrency or None, mapping states), read with plain boto3."""
    ref = box.manifest.ref(component, region)
    lam = plain(box, "lambda", region)
    concurrency = lam.get_function_concurrency(FunctionName=ref.name).get(
        "ReservedConcurrentExecutions"
    )
    return concurrency, [lam.get_event_source_mapping(UUID=u)["State"] for u in ref.mappings]


# -- idempotence and read-back ----------------------------------------------------------------


@pytest.mark.parametrize("component", ["worker", "api-handler"])
def test_function_fence_then_activate_twice_is_once(fresh_sandbox: Sandbox, component: str) -> None:
    box = fresh_sandbox
    act = action(box, component, PRIMARY)
    assert act.read().state == State.ACTIVE

    first, second = act.deactivate(), act.deactivate()
    assert (first.changed, second.changed) == (True, False)
    assert first.observed.state == second.observed.state == State.FENCED
    concurrency, mappings = function_facts(box, component, PRIMARY)
    assert concurrency == 0
    assert set(mappings) <= {"Disabled"}
    assert mode_of(box, component, PRIMARY) == "fenced"

    first, second = act.activate(), act.activate()
    assert (first.changed, second.changed) == (True, False)
    assert first.observed.state == second.observed.state == State.ACTIVE
    concurrency, mappings = function_facts(box, component, PRIMARY)
    assert concurrency is None
    assert set(mappings) <= {"Enabled"}
    ref = box.manifest.ref(component, PRIMARY)
    plain(box, "lambda", PRIMARY).get_alias(FunctionName=ref.name, Name="live")
    assert mode_of(box, component, PRIMARY) == "active"


def test_a_fenced_functions_reserved_concurrency_is_in_its_get_function_answer(
    fresh_sandbox: Sandbox,
) -> None:
    """A function is read with GetFunction alone: its answer holds the reserved concurrency,
    0 when fenced, as Lambda's does (moto's left a 0 out), and nothing when none is reserved."""
    box = fresh_sandbox
    ref = box.manifest.ref("worker", PRIMARY)
    lam = plain(box, "lambda", PRIMARY)
    assert "Concurrency" not in lam.get_function(FunctionName=ref.name)
    assert action(box, "worker", PRIMARY).read().state == State.ACTIVE
    lam.put_function_concurrency(FunctionName=ref.name, ReservedConcurrentExecutions=0)
    answer = lam.get_function(FunctionName=ref.name)["Concurrency"]
    assert answer == {"ReservedConcurrentExecutions": 0}
    assert action(box, "worker", PRIMARY).read().state == State.FENCED


def test_standby_function_activates_its_mappings(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    act = action(box, "worker", STANDBY)
    assert act.read().state == State.STANDBY
    assert function_facts(box, "worker", STANDBY)[1] == ["Disabled"]

    assert act.activate().changed
    assert function_facts(box, "worker", STANDBY)[1] == ["Enabled"]
    assert act.read().state == State.ACTIVE


def test_degraded_activation_is_idempotent_and_upgrades_to_active(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    act = action(box, "worker", STANDBY)
    first = act.activate(DegradedMode.QUEUE_WRITES)
    second = act.activate(DegradedMode.QUEUE_WRITES)
    assert (first.changed, second.changed) == (True, False)
    assert second.observed.state == State.DEGRADED
    assert mode_of(box, "worker", STANDBY) == "queue_writes"

    upgraded = act.activate()
    assert upgraded.changed and upgraded.observed.state == State.ACTIVE
    assert mode_of(box, "worker", STANDBY) == "active"


def test_schedule_rule_is_disabled_by_fencing_and_enabled_by_activation(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    rule = box.manifest.ref("nightly-report", PRIMARY).name
    events = plain(box, "events", PRIMARY)
    act = action(box, "nightly-report", PRIMARY)

    assert [act.deactivate().changed, act.deactivate().changed] == [True, False]
    assert events.describe_rule(Name=rule)["State"] == "DISABLED"
    assert act.read().state == State.FENCED
    assert [act.activate().changed, act.activate().changed] == [True, False]
    assert events.describe_rule(Name=rule)["State"] == "ENABLED"


@pytest.mark.parametrize("component", PASSIVE)
def test_passive_kinds_fence_and_activate_by_their_mode(
    fresh_sandbox: Sandbox, component: str
) -> None:
    box = fresh_sandbox
    act = action(box, component, STANDBY)
    assert act.read().state == State.STANDBY

    assert [act.activate().changed, act.activate().changed] == [True, False]
    assert act.read().state == State.ACTIVE
    assert mode_of(box, component, STANDBY) == "active"
    assert [act.deactivate().changed, act.deactivate().changed] == [True, False]
    assert act.read().state == State.FENCED
    assert mode_of(box, component, STANDBY) == "fenced"


def test_dns_fence_inverts_the_check_and_activation_moves_both_records(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    dns = box.manifest.dns
    assert dns is not None
    r53 = plain(box, "route53", GLOBAL)

    def inverted(region: str) -> bool:
        check = r53.get_health_check(HealthCheckId=dns.health_checks[region])["HealthCheck"]
        return bool(check["HealthCheckConfig"].get("Inverted"))

    def records() -> dict[str, tuple[str, str]]:
        sets = r53.list_resource_record_sets(HostedZoneId=dns.zone_id)["ResourceRecordSets"]
        return {
            r["SetIdentifier"]: (r["ResourceRecords"][0]["Value"], r["HealthCheckId"])
            for r in sets
            if r.get("SetIdentifier")
        }

    def host(region: str) -> str:
        return region_host(box, region)

    assert records()["primary"] == (host(PRIMARY), dns.health_checks[PRIMARY])
    fence = action(box, "dns", PRIMARY)
    assert [fence.deactivate().changed, fence.deactivate().changed] == [True, False]
    assert inverted(PRIMARY)

    target = action(box, "dns", STANDBY)
    first, second = target.activate(), target.activate()
    assert (first.changed, second.changed) == (True, False)
    assert second.observed.state == State.ACTIVE
    assert records()["primary"] == (host(STANDBY), dns.health_checks[STANDBY])
    # The fenced primary is skipped: the next region in order becomes the secondary.
    assert records()["secondary"] == (host(OTHER), dns.health_checks[OTHER])
    assert not inverted(STANDBY)
    assert fence.read().state == State.FENCED


def test_dns_activation_clears_the_inversion_of_the_target(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    act = action(box, "dns", PRIMARY)
    act.deactivate()
    assert act.activate().observed.state == State.ACTIVE
    assert act.read().facts["inverted"] is False


# -- missing resources ------------------------------------------------------------------------


def test_activating_a_missing_function_is_permanent_and_names_it(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    plain(box, "lambda", OTHER).delete_function(
        FunctionName=box.manifest.ref("api-handler", OTHER).name
    )
    act = action(box, "api-handler", OTHER)
    assert act.read().state == State.MISSING
    with pytest.raises(PermanentStepError, match="api-handler/eu-west-1") as err:
        act.activate()
    assert (err.value.component, err.value.region) == ("api-handler", OTHER)
    assert act.deactivate().changed is False


def test_a_missing_queue_reads_missing_and_cannot_be_activated(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    ref = box.manifest.ref("orders-queue", STANDBY)
    plain(box, "sqs", STANDBY).delete_queue(QueueUrl=ref.queue_url)
    act = action(box, "orders-queue", STANDBY)
    assert act.read().state == State.MISSING
    with pytest.raises(PermanentStepError, match="orders-queue/us-west-2"):
        act.activate()


def test_a_missing_bucket_reads_missing_from_its_versioning_alone(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    name = box.manifest.ref("receipts-bucket", STANDBY).name
    s3 = plain(box, "s3", STANDBY)
    for version in s3.list_object_versions(Bucket=name).get("Versions", []):
        s3.delete_object(Bucket=name, Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket=name)
    observed = action(box, "receipts-bucket", STANDBY).read()
    assert (observed.state, observed.detail) == (State.MISSING, f"bucket {name} does not exist")


# -- injected faults --------------------------------------------------------------------------


def faulty(box: Sandbox, hook: Callable[..., Any], attempts: int) -> Clients:
    settings = AwsSettings(connect_timeout=1, read_timeout=2, max_attempts=attempts)
    return Clients(
        endpoints=box.manifest.endpoints, settings=settings, hooks=[("before-send.lambda", hook)]
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "ThrottlingException"), (429, "TooManyRequestsException"), (500, "ServiceException")],
)
def test_persistent_throttling_or_500_is_a_transient_error(
    fresh_sandbox: Sandbox, status: int, code: str
) -> None:
    hook, calls = fault(status, code)
    act = action(fresh_sandbox, "worker", PRIMARY, faulty(fresh_sandbox, hook, attempts=2))
    with pytest.raises(TransientStepError, match="worker/us-east-1"):
        act.deactivate()
    assert calls[1] == 2  # botocore retried once, then gave up
    assert function_facts(fresh_sandbox, "worker", PRIMARY)[0] is None  # nothing was done


@pytest.mark.parametrize(
    ("status", "code"), [(400, "ThrottlingException"), (500, "ServiceException")]
)
def test_intermittent_faults_are_retried_through(
    fresh_sandbox: Sandbox, status: int, code: str
) -> None:
    hook, calls = fault(status, code, every=4)
    act = action(fresh_sandbox, "worker", PRIMARY, faulty(fresh_sandbox, hook, attempts=3))
    assert act.deactivate().observed.state == State.FENCED
    assert act.activate().observed.state == State.ACTIVE
    assert calls[1] > 0
    assert function_facts(fresh_sandbox, "worker", PRIMARY) == (None, ["Enabled"])


def test_a_read_timeout_is_a_transient_unreachable_error(fresh_sandbox: Sandbox) -> None:
    def timeout(request: Any, **_: Any) -> None:
        raise botocore.exceptions.ReadTimeoutError(endpoint_url=request.url)

    act = action(fresh_sandbox, "worker", PRIMARY, faulty(fresh_sandbox, timeout, attempts=2))
    with pytest.raises(TransientStepError, match="unreachable"):
        act.read()


def test_a_hung_region_fails_fast_and_transient(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    fast = Clients(
        endpoints=box.manifest.endpoints,
        settings=AwsSettings(connect_timeout=1, read_timeout=1, max_attempts=1),
    )
    box.fail(STANDBY, "hang")
    try:
        started = time.monotonic()
        with pytest.raises(TransientStepError, match="us-west-2"):
            action(box, "worker", STANDBY, fast).activate()
        assert time.monotonic() - started < HANG_BOUND
        # The global endpoint still answers: the hung region's traffic is fenced all the same,
        # with the default (retrying) clients, without waiting on the region's mode parameter.
        started = time.monotonic()
        assert action(box, "dns", STANDBY).deactivate().changed
        assert time.monotonic() - started < HANG_BOUND
    finally:
        box.heal(STANDBY)


def test_stream_kind_reads_activates_and_goes_missing(fresh_sandbox: Sandbox) -> None:
    """The example has no stream: add one to a copy of the topology and the manifest."""
    box = fresh_sandbox
    data = box.topology.model_dump(mode="json", exclude_none=True)
    data["components"]["events"] = {"kind": "stream"}
    topology = Topology.model_validate(data)
    manifest = box.manifest.model_copy(deep=True)
    name = topology.physical_name("events", STANDBY)
    manifest.regions[STANDBY].components["events"] = ComponentRef(kind="stream", name=name)
    kinesis = plain(box, "kinesis", STANDBY)
    kinesis.create_stream(StreamName=name, ShardCount=1)

    act = action_for(topology, manifest, box.clients, "events", STANDBY)
    assert act.read().state == State.STANDBY  # no mode of its own: the region's
    assert [act.activate().changed, act.activate().changed] == [True, False]
    assert act.read().facts["status"] == "ACTIVE"
    kinesis.delete_stream(StreamName=name)
    assert act.read().state == State.MISSING


def test_replication_lag_reads_the_cloudwatch_metric(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    assert (
        read_replication_lag(box.clients, box.manifest, "orders-table", PRIMARY, STANDBY)[0] is None
    )
    plain(box, "cloudwatch", PRIMARY).put_metric_data(
        Namespace="AWS/DynamoDB",
        MetricData=[
            {
                "MetricName": "ReplicationLatency",
                "Unit": "Milliseconds",
                "Value": value,
                "Dimensions": [
                    {"Name": "TableName", "Value": box.manifest.ref("orders-table", PRIMARY).name},
                    {"Name": "ReceivingRegion", "Value": STANDBY},
                ],
            }
            for value in (1200.0, 2500.0)
        ],
    )
    lag = read_replication_lag(box.clients, box.manifest, "orders-table", PRIMARY, STANDBY)[0]
    assert lag == pytest.approx(2.5)


def test_schedule_degraded_to_unavailable_is_a_disabled_rule(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    act = action(box, "nightly-report", PRIMARY)
    first = act.activate(DegradedMode.UNAVAILABLE)
    second = act.activate(DegradedMode.UNAVAILABLE)
    assert (first.changed, second.changed) == (True, False)
    assert second.observed.state == State.DEGRADED
    rule = box.manifest.ref("nightly-report", PRIMARY).name
    assert plain(box, "events", PRIMARY).describe_rule(Name=rule)["State"] == "DISABLED"


def test_a_component_mode_of_normal_defers_to_the_region_mode(fresh_sandbox: Sandbox) -> None:
    """Pulumi deploys component modes as ``normal``: the region's mode decides then."""
    box = fresh_sandbox
    for region in (PRIMARY, STANDBY):
        plain(box, "ssm", region).put_parameter(
            Name=box.topology.component_mode_parameter("orders-queue", region),
            Value="normal",
            Type="String",
            Overwrite=True,
        )
    assert action(box, "orders-queue", PRIMARY).read().state == State.ACTIVE
    assert action(box, "orders-queue", STANDBY).read().state == State.STANDBY
    assert action(box, "orders-queue", PRIMARY).activate().changed  # writes "active" once
    assert not action(box, "orders-queue", PRIMARY).activate().changed
