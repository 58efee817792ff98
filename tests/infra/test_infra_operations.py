"""Operational rules: what makes each region ready to take over and observable while it waits.

Functions traced, logged with retention, short timeouts, high and low alarms; standbys deployed
but paused (mappings and schedules enabled only in the primary); tables replicated to every
region; buckets versioned and replicated; queues with dead-letter queues; the API's health route
open and every other route authorized; DNS failover on health checks alone.
"""

from __future__ import annotations

import json

from controller.topology import Kind
from tests.kit.pulumi_mocks import Run, is_watcher

REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"


def functions(run: Run) -> dict[tuple[str, str], dict]:
    """(component, region) -> the function's inputs."""
    t = run.topology
    by_name = {f.inputs["name"]: f.inputs for f in run.of("aws:lambda/function:Function")}
    return {
        (n, r): by_name[t.physical_name(n, r)]
        for n, _ in t.of_kind(Kind.FUNCTION)
        for r in t.regions.all
    }


def test_functions_are_traced_short_and_logged_with_retention(run: Run) -> None:
    t = run.topology
    groups = {g.inputs["name"]: g for g in run.of("aws:cloudwatch/logGroup:LogGroup")}
    for (name, region), fn in functions(run).items():
        spec = t.components[name]
        assert fn["tracingConfig"] == {"mode": "Active"}
        assert fn["timeout"] == spec.timeout <= 30
        assert fn["memorySize"] == spec.memory
        assert fn["publish"] is True
        group = groups[f"/aws/lambda/{fn['name']}"]
        assert group.region == region
        assert group.inputs["retentionInDays"] == run.settings.log_retention_days > 0


def test_every_function_has_a_live_alias(run: Run) -> None:
    aliases = {
        (a.inputs["functionName"], a.inputs["name"]) for a in run.of("aws:lambda/alias:Alias")
    }
    for fn in functions(run).values():
        assert (fn["name"], "live") in aliases


def routed(run: Run) -> set[str]:
    """The functions an api routes to (traffic-facing: silence there means trouble)."""
    return {r.function for _, api in run.topology.of_kind(Kind.API) for r in api.routes}


def test_every_function_has_high_alarms_and_a_low_one_only_if_traffic_faces_it(run: Run) -> None:
    alarms = run.of("aws:cloudwatch/metricAlarm:MetricAlarm")
    facing = routed(run)
    assert facing and set(dict(run.topology.of_kind(Kind.FUNCTION))) - facing
    for (name, _region), fn in functions(run).items():
        mine = [a.inputs for a in alarms if a.inputs["dimensions"] == {"FunctionName": fn["name"]}]
        by_metric = {a["metricName"]: a for a in mine}
        low = {"Invocations"} if name in facing else set()
        assert set(by_metric) == {"Errors", "Throttles", "Duration"} | low, name
        for metric in ("Errors", "Throttles", "Duration"):
            assert by_metric[metric]["comparisonOperator"].startswith("GreaterThan")
        if low:
            assert by_metric["Invocations"]["comparisonOperator"].startswith("LessThan")
        timeout_ms = run.topology.components[name].timeout * 1000
        assert 0 < by_metric["Duration"]["threshold"] < timeout_ms


def test_low_traffic_alarm_only_breaches_on_silence_in_the_primary(run: Run) -> None:
    t = run.topology
    for alarm in run.of("aws:cloudwatch/metricAlarm:MetricAlarm"):
        if alarm.inputs["metricName"] == "Invocations":
            expected = "breaching" if alarm.region == t.regions.primary else "notBreaching"
            assert alarm.inputs["treatMissingData"] == expected


def test_event_source_mappings_are_enabled_only_in_the_primary(run: Run) -> None:
    t = run.topology
    mappings = [
        m
        for m in run.of("aws:lambda/eventSourceMapping:EventSourceMapping")
        if not is_watcher(m.name)  # a watcher's chain invokes it in every region
    ]
    expected = sum(len(s.events) for _, s in t.of_kind(Kind.FUNCTION)) * len(t.regions.all)
    assert len(mappings) == expected > 0
    for m in mappings:
        assert m.inputs["enabled"] is (m.region == t.regions.primary), m.name
        assert m.inputs["functionName"].endswith(":live"), "mappings must target the alias"


def test_schedules_are_enabled_only_in_the_primary(run: Run) -> None:
    t = run.topology
    rules = [
        r
        for r in run.of("aws:cloudwatch/eventRule:EventRule")
        if "scheduleExpression" in r.inputs and not is_watcher(r.name)
    ]
    assert len(rules) == len(list(t.of_kind(Kind.SCHEDULE))) * len(t.regions.all) > 0
    for rule in rules:
        assert rule.inputs["state"] == (
            "ENABLED" if rule.region == t.regions.primary else "DISABLED"
        )
    targets = [
        x
        for x in run.of("aws:cloudwatch/eventTarget:EventTarget")
        if "eventBusName" not in x.inputs and not is_watcher(x.name)
    ]
    assert targets and all(target.inputs["arn"].endswith(":live") for target in targets)


def test_every_table_has_a_replica_in_every_region(run: Run) -> None:
    t = run.topology
    tables = run.of("aws:dynamodb/table:Table")
    assert {x.inputs["name"] for x in tables} == {
        t.control_table,
        *(t.physical_name(n, t.regions.primary) for n, _ in t.of_kind(Kind.TABLE)),
    }
    for table in tables:
        regions = [table.region] + [r["regionName"] for r in table.inputs["replicas"]]
        wanted = (
            t.control_regions.replicas if table.inputs["name"] == t.control_table else t.regions.all
        )  # the control table's regions: see test_infra_control.py
        assert sorted(regions) == sorted(wanted), table.name
        assert table.inputs["streamEnabled"] is True
        assert table.inputs["pointInTimeRecovery"]["enabled"] is True
        assert table.inputs["serverSideEncryption"]["enabled"] is True
        assert all(r["pointInTimeRecovery"] for r in table.inputs["replicas"])


def test_buckets_are_versioned_private_and_replicated_to_every_other_region(run: Run) -> None:
    t = run.topology
    for name, _ in t.of_kind(Kind.BUCKET):
        buckets = {r: run.bucket(name, r) for r in t.regions.all}
        versioned = {
            v.inputs["bucket"]
            for v in run.of("aws:s3/bucketVersioning:BucketVersioning")
            if v.inputs["versioningConfiguration"]["status"] == "Enabled"
        }
        private = {
            p.inputs["bucket"]
            for p in run.of("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
            if p.inputs["blockPublicPolicy"] and p.inputs["restrictPublicBuckets"]
        }
        for region, bucket in buckets.items():
            assert bucket in versioned and bucket in private
            config = next(c for c in run.of(REPLICATION) if c.inputs["bucket"] == bucket)
            assert config.region == region
            targets = {rule["destination"]["bucket"] for rule in config.inputs["rules"]}
            assert targets == {f"arn:aws:s3:::{b}" for r, b in buckets.items() if r != region}


def test_queues_have_a_dead_letter_queue_in_their_region(run: Run) -> None:
    t = run.topology
    queues = {q.inputs["name"]: q for q in run.of("aws:sqs/queue:Queue")}
    for name, spec in t.of_kind(Kind.QUEUE):
        for region in t.regions.all:
            queue = queues[t.physical_name(name, region)]
            assert queue.inputs["sqsManagedSseEnabled"] is True
            if not spec.dlq:
                assert "redrivePolicy" not in queue.inputs
                continue
            redrive = json.loads(queue.inputs["redrivePolicy"])
            dlq = queues[f"{t.physical_name(name, region)}-dlq"]
            assert redrive == {
                "deadLetterTargetArn": dlq.state["arn"],
                "maxReceiveCount": spec.max_receive_count,
            }
            assert dlq.region == region


def test_health_route_is_open_and_every_other_route_is_authorized(run: Run) -> None:
    t = run.topology
    routes = run.of("aws:apigatewayv2/route:Route")
    apis = list(t.of_kind(Kind.API))
    for name, api in apis:
        names = {f"{t.physical_name(name, region)}-health" for region in t.regions.all}
        health = [r for r in routes if r.name in names]
        assert len(health) == len(t.regions.all)
        assert all(r.inputs["routeKey"] == f"GET {api.health_path}" for r in health)
        assert all(r.inputs["authorizationType"] == "NONE" for r in health)
    others = [r for r in routes if r.inputs["authorizationType"] != "NONE"]
    assert len(others) + len(t.regions.all) * len(apis) == len(routes)
    for route in others:
        assert route.inputs["authorizationType"] in ("AWS_IAM", "JWT")
        if route.inputs["authorizationType"] == "JWT":
            assert route.inputs["authorizerId"]


def test_dns_fails_over_on_health_checks_alone(run: Run) -> None:
    t = run.topology
    ((_, dns),) = t.of_kind(Kind.DNS)
    checks = run.of("aws:route53/healthCheck:HealthCheck")
    assert len(checks) == len(t.regions.all)
    hosts = {}
    for hc in checks:
        assert hc.inputs["type"] == "HTTPS" and hc.inputs["port"] == 443
        assert hc.inputs["resourcePath"] == dns.health_check.path
        assert hc.inputs["requestInterval"] == dns.health_check.interval
        assert hc.inputs["failureThreshold"] == dns.health_check.threshold
        region = hc.inputs["fqdn"].split(".")[2]
        hosts[region] = hc
    assert set(hosts) == set(t.regions.all), "one health check per regional endpoint"
    records = {
        r.inputs["setIdentifier"]: r.inputs
        for r in run.of("aws:route53/record:Record")
        if r.inputs.get("setIdentifier")
    }
    # the controller finds and moves the records by these identifiers (controller.actions.dns)
    assert set(records) == {"primary", "secondary"}
    domains = {
        d.region: d.state["domainNameConfiguration"]["targetDomainName"]
        for d in run.of("aws:apigatewayv2/domainName:DomainName")
    }
    for identifier, region in (("primary", t.regions.primary), ("secondary", t.regions.standby[0])):
        record = records[identifier]
        assert record["failoverRoutingPolicies"] == [{"type": identifier.upper()}]
        assert record["name"] == dns.name and record["type"] == "CNAME"
        assert record["ttl"] == dns.ttl
        assert record["healthCheckId"] == hosts[region].id
        assert record["records"] == [domains[region]], "must point at its region's domain"
