"""Route 53's checkers in the sandbox, on the scaled clock: they probe, the records answer from
what they found (issue 25, item 3); and CloudWatch's alarms, evaluated from Lambda's metrics on
the same clock (item 2). Durations are asserted in AWS seconds, never wall seconds."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from controller import clock
from controller.contract import GLOBAL
from controller.health.verdicts import route53_healthy
from sandbox import Sandbox
from sandbox.cloudwatch.evaluator import EVALUATION_INTERVAL
from sandbox.cloudwatch.metrics import LambdaMetrics, Metrics
from sandbox.lambda_.invoke import Outcome, Throttled
from sandbox.route53 import ANSWER_SECONDS, PROBE_WALL_FLOOR
from sandbox.router import Resolver
from tests.kit.emulator import new_invoker
from tests.kit.paths import EXAMPLE
from tests.kit.polling import until

pytestmark = pytest.mark.sandbox

PRIMARY, STANDBY = "us-east-1", "us-west-2"
K = 10.0


@pytest.fixture(scope="module")
def box(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The example as deployed (10 s checks, threshold 3, TTL 60 s), at k = 10."""
    sandbox = Sandbox.up(EXAMPLE, tmp_path_factory.mktemp("r53") / ".failover", time_scale=K)
    try:
        yield sandbox
    finally:
        sandbox.down()


def status(box: Sandbox, region: str) -> str:
    """``Success`` or ``Failure``: the region's check as Route 53 counts its checkers."""
    check = box.manifest.dns.health_checks[region] if box.manifest.dns else ""
    got = box.clients.client("route53", GLOBAL).get_health_check_status(HealthCheckId=check)
    return "Success" if route53_healthy(got["HealthCheckObservations"]) else "Failure"


def check_config(box: Sandbox, region: str) -> dict[str, Any]:
    check = box.manifest.dns.health_checks[region] if box.manifest.dns else ""
    got = box.clients.client("route53", GLOBAL).get_health_check(HealthCheckId=check)
    return dict(got["HealthCheck"]["HealthCheckConfig"])


def test_a_hung_regions_health_check_turns_unhealthy_after_threshold_x_interval_and_the_failover_record_answers_the_standby(  # noqa: E501
    box: Sandbox,
) -> None:
    box.reset()
    config = check_config(box, PRIMARY)
    interval, threshold = config["RequestInterval"], config["FailureThreshold"]
    assert (interval, threshold) == (10, 3)  # the deployed configuration, unchanged
    assert clock.current().scale == K
    until(lambda: status(box, PRIMARY).startswith("Success"), 30, "the primary's check is healthy")
    assert Resolver(box.clients, box.manifest).resolve() == PRIMARY
    hung_at = clock.now()
    box.fail(PRIMARY, "hang")
    try:
        until(lambda: status(box, PRIMARY).startswith("Failure"), 120, "the check never failed")
        took = clock.now() - hung_at  # AWS seconds
        # threshold failures in a row, one per interval, each ended by its probe's timeout at
        # the latest (the hung region accepts the connection, and gives no answer): never sooner
        # than (threshold - 1) intervals; later only by the sandbox's CPU (one more interval of
        # slack: 56 AWS s were seen at a load average of 60 on 2 cores)
        probe_timeout = clock.patient(ANSWER_SECONDS, PROBE_WALL_FLOOR)
        assert (threshold - 1) * interval <= took <= (threshold + 2) * interval + probe_timeout
        assert status(box, STANDBY).startswith("Success")
        assert Resolver(box.clients, box.manifest).resolve() == STANDBY
    finally:
        box.heal(PRIMARY)
    until(lambda: status(box, PRIMARY).startswith("Success"), 120, "the check never recovered")


def test_an_inverted_check_sends_the_record_to_the_standby_while_its_checkers_see_it_healthy(
    box: Sandbox,
) -> None:
    """The controller fences traffic by inverting the primary's check: the failover record
    answers the standby although nothing failed; the observations say what the checkers saw."""
    box.reset()
    r53 = box.clients.client("route53", GLOBAL)
    check = box.manifest.dns.health_checks[PRIMARY] if box.manifest.dns else ""
    assert Resolver(box.clients, box.manifest).resolve() == PRIMARY
    r53.update_health_check(HealthCheckId=check, Inverted=True)
    assert status(box, PRIMARY).startswith("Success")
    assert Resolver(box.clients, box.manifest).resolve() == STANDBY


def test_a_resolver_keeps_its_answer_for_the_records_ttl_in_aws_seconds(box: Sandbox) -> None:
    box.reset()
    r53 = box.clients.client("route53", GLOBAL)
    check = box.manifest.dns.health_checks[PRIMARY] if box.manifest.dns else ""
    resolver = Resolver(box.clients, box.manifest)
    asked = clock.monotonic()
    assert resolver.resolve() == PRIMARY
    r53.update_health_check(HealthCheckId=check, Inverted=True)
    changed = until(
        lambda: resolver.resolve() == STANDBY and clock.monotonic(), 60, "the answer never changed"
    )
    assert changed - asked >= 60.0  # the record's TTL (AWS seconds), not a second sooner


def test_a_reset_sandbox_starts_every_check_healthy_again(box: Sandbox) -> None:
    box.reset()
    box.fail(PRIMARY, "down")
    until(lambda: status(box, PRIMARY).startswith("Failure"), 120, "the check never failed")
    box.reset()
    assert status(box, PRIMARY).startswith("Success")


# -- CloudWatch on the same scaled clock: metrics feed the alarms (issue 25, item 2) ------------


def test_a_function_fenced_to_0_that_still_gets_calls_fires_its_throttles_alarm_which_recovers_only_through_metrics(  # noqa: E501
    box: Sandbox,
) -> None:
    """Reserved concurrency 0 (what a fence writes) and calls still arriving: each is throttled
    and counted; Lambda's Throttles metric reaches the region's CloudWatch, whose evaluator
    (once a minute of AWS time) puts the deployed throttles alarm (Sum >= 1 over 300 s, one
    period) in ALARM at its first evaluation after the datapoint: nothing sets the state, not
    even a hang and a heal of the region; it returns to OK only through its metrics."""
    box.reset()
    ref = box.manifest.ref("api-handler", PRIMARY)
    alarm = next(a for a in ref.alarms if a.endswith("throttles-high"))
    cloudwatch = box.clients.client("cloudwatch", PRIMARY)
    assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] != (
        "ALARM"
    )
    box.clients.client("lambda", PRIMARY).put_function_concurrency(
        FunctionName=ref.name, ReservedConcurrentExecutions=0
    )
    invoker = new_invoker(box)
    metrics = Metrics(lambda region: box.clients.client("cloudwatch", region))
    invoker.observers.append(LambdaMetrics(metrics))
    box.evaluate_alarms(True)
    period = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["Period"]
    # Throttle well inside one period: throttles that a loaded machine delays past its end fall
    # into the next one (the alarm fires a period later, or sees two datapoints of 1).
    until(lambda: clock.now() % period < period - EVALUATION_INTERVAL, 120, "a period starts")
    try:
        throttled_at = clock.now()
        for _ in range(2):
            with pytest.raises(Throttled):
                invoker.invoke(PRIMARY, ref.arn, {}, source="api")
        assert invoker.counts[(PRIMARY, ref.name)][Outcome.THROTTLED] == 2
        metrics.flush()

        def fired() -> dict[str, Any] | None:
            found = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
            return dict(found) if found["StateValue"] == "ALARM" else None

        found = until(fired, 90, "the throttles alarm never fired")
        fired_at = found["StateUpdatedTimestamp"].timestamp()  # the evaluator's AWS time
        # the first evaluation once the throttles' period is complete: within one evaluation
        # interval (60 AWS s) of its end, one more of slack for this machine's CPU
        period_end = (math.floor(throttled_at / period) + 1) * period
        assert throttled_at <= fired_at <= period_end + 2 * EVALUATION_INTERVAL
        assert "Threshold Crossed" in found["StateReason"] and "[2.0 (" in found["StateReason"]

        # The region hangs and heals: nothing sets its alarms by fiat, so it is still ALARM.
        box.fail(PRIMARY, "hang")
        box.heal(PRIMARY)
        assert state_of(box, alarm) == "ALARM"
        # Unfenced, no more throttles: OK only once the evaluator, its clock put past the
        # throttles' evaluation range (the period and two more), finds them gone.
        box.clients.client("lambda", PRIMARY).delete_function_concurrency(FunctionName=ref.name)
        box.evaluate_alarms(True, ahead=3 * period + EVALUATION_INTERVAL)
        until(lambda: state_of(box, alarm) == "OK", 60, "the alarm never went back to OK")
        recovered = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
        assert json.loads(recovered["StateReasonData"])["recentDatapoints"] == []
    finally:
        box.evaluate_alarms(False)
        invoker.close()
        with contextlib.suppress(Exception):  # (deleted above unless the test failed first)
            box.clients.client("lambda", PRIMARY).delete_function_concurrency(FunctionName=ref.name)


def state_of(box: Sandbox, alarm: str) -> str:
    """``alarm``'s state in the primary, read back."""
    cloudwatch = box.clients.client("cloudwatch", PRIMARY)
    return str(cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"])
