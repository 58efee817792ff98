"""What the controller owns, `pulumi up` leaves alone; what consumers fail on is kept, not lost.

After a failover the controller has disabled the source's mappings and rules, set its functions'
reserved concurrency to 0, inverted its health check and pointed the failover records at the
target. A later `pulumi up` (or `up --refresh`) must change none of that, or the fenced region
writes again. Each property is declared at creation only: the engine receives it in
``ignore_changes``, so a second run, whatever the live state says, proposes no update to it.
"""

from __future__ import annotations

import pytest

from tests.kit.pulumi_mocks import Run, is_watcher

MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"

# type token -> the properties (engine spelling) the controller sets during a failover
CONTROLLER_OWNED = {
    "aws:lambda/eventSourceMapping:EventSourceMapping": ["enabled"],
    "aws:cloudwatch/eventRule:EventRule": ["state"],
    "aws:lambda/function:Function": ["reservedConcurrentExecutions"],
    "aws:route53/healthCheck:HealthCheck": ["invertHealthcheck"],
    "aws:route53/record:Record": ["records", "healthCheckId"],
}


@pytest.mark.parametrize("typ", sorted(CONTROLLER_OWNED))
def test_a_second_up_leaves_what_the_controller_owns(run: Run, typ: str) -> None:
    # the controller owns the components' state, not the watchers' (infra/watchers.py)
    resources = [r for r in run.of(typ) if not is_watcher(r.name)]
    if typ == "aws:route53/record:Record":  # the failover records, not the cert validation
        resources = [r for r in resources if r.inputs.get("failoverRoutingPolicies")]
    assert resources, f"the program declares no {typ}"
    for res in resources:
        for prop in CONTROLLER_OWNED[typ]:
            assert res.ignores(prop), f"{res.name}: `pulumi up` would reset {prop}"


def test_mode_parameters_are_set_once(run: Run) -> None:
    modes = [
        p
        for p in run.of("aws:ssm/parameter:Parameter")
        if p.inputs["name"].startswith(f"/failover/{run.topology.app}/")
    ]
    assert modes and all(p.ignores("value") for p in modes)


def test_queue_mappings_report_partial_batch_failures(run: Run) -> None:
    queues = {q.state["arn"] for q in run.of("aws:sqs/queue:Queue")}
    mappings = [
        m
        for m in run.of(MAPPING)
        # a watcher's chain takes one link at a time: its batch fails or succeeds whole
        if m.inputs["eventSourceArn"] in queues and not is_watcher(m.name)
    ]
    assert mappings
    for m in mappings:
        assert m.inputs.get("functionResponseTypes") == ["ReportBatchItemFailures"], m.name


def test_stream_mappings_start_at_the_oldest_record_and_keep_failures(run: Run) -> None:
    queues = {q.state["arn"]: q for q in run.of("aws:sqs/queue:Queue")}
    streams = [m for m in run.of(MAPPING) if m.inputs["eventSourceArn"] not in queues]
    assert streams
    for m in streams:
        assert m.inputs["startingPosition"] == "TRIM_HORIZON", m.name
        target = m.inputs["destinationConfig"]["onFailure"]["destinationArn"]
        failures = queues[target]
        assert failures.region == m.region, "the destination is in the mapping's region"


def test_scheduled_invocations_retry_then_dead_letter(run: Run) -> None:
    queues = {q.state["arn"]: q for q in run.of("aws:sqs/queue:Queue")}
    # a schedule invokes a function (its alias); a bus rule's target is a queue
    # (a watcher's missed minute is not kept: the next minute's invocation comes anyway)
    targets = [
        t
        for t in run.of("aws:cloudwatch/eventTarget:EventTarget")
        if ":function:" in t.inputs["arn"] and not is_watcher(t.name)
    ]
    assert targets
    for target in targets:
        retry = target.inputs["retryPolicy"]
        assert retry["maximumRetryAttempts"] >= 1 and retry["maximumEventAgeInSeconds"] >= 60
        dlq = queues[target.inputs["deadLetterConfig"]["arn"]]
        assert dlq.region == target.region
    policies = {p.inputs["queueUrl"]: p for p in run.of("aws:sqs/queuePolicy:QueuePolicy")}
    for target in targets:
        dlq = queues[target.inputs["deadLetterConfig"]["arn"]]
        assert dlq.state["url"] in policies, "EventBridge may send to the dead-letter queue"
