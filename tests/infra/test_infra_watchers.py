"""The watchers ``pulumi up`` deploys (infra/watchers.py), under mocks, and their bundle.

One watcher function per application region, each with its own role (the controller's actions,
no more), a schedule every minute, a log group with retention, X-Ray, and a dead-man alarm on
its evaluations; the manifest names each one and is written into the control table for them to
read. The bundle imports the handler in a clean interpreter with only itself and boto3.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import platform
import sys
import zipfile
from pathlib import Path
from typing import Any

import botocore.session
from test_infra_bundle import import_in_clean_interpreter, lambda_runtime
from test_infra_security import policies, statements

from controller import contract
from controller.plan import graph
from controller.plan.build import build_plan
from controller.topology import EXAMPLE_SPEC, Topology, load, loads
from infra.bundle import RUNTIME_PROVIDED
from infra.global_ import CONTROL_ACTIONS
from infra.target import Architecture, Target
from infra.watchers import (
    CHAIN_POLL,
    CHAIN_SEND,
    HANDLER,
    SCHEDULE,
    STEP_BACKOFF_SECONDS,
    run_budget,
    watcher_bundle,
)
from tests.kit.code_calls import action, operations
from tests.kit.paths import REPO
from tests.kit.pulumi_mocks import ACCOUNT, Run, is_watcher

#: The goal for the watcher's zipped bundle (Lambda's own limit is 50 MB zipped).
SIZE_GOAL = 10 * 1024 * 1024


def watchers(run: Run) -> dict[str, dict[str, object]]:
    return {
        f.region or "": f.inputs
        for f in run.of("aws:lambda/function:Function")
        if is_watcher(f.name)
    }


def actions_of(run: Run, policy_name: str) -> set[str]:
    doc = next(d for n, d in policies(run) if n == policy_name)
    return {a for actions, _ in statements(doc) for a in actions}


def test_one_watcher_function_per_application_region_with_its_own_role(run: Run) -> None:
    t = run.topology.for_stack(run.settings.stack)
    found = watchers(run)
    assert set(found) == set(t.regions.all)
    roles = set()
    for region, fn in found.items():
        assert fn["name"] == t.watcher_function(region)
        assert fn["handler"] == HANDLER
        assert fn["tracingConfig"] == {"mode": "Active"}
        assert int(fn["timeout"]) == SCHEDULE.timeout_seconds(run_budget(t))
        assert str(fn["role"]).endswith(f"role/{t.watcher_function(region)}")
        roles.add(fn["role"])
        env = fn["environment"]["variables"]  # type: ignore[index]
        assert env[contract.ENV_WATCHER_CONTROL_TABLE] == t.control_table
        assert env[contract.ENV_WATCHER_CONTROL_REGIONS].split(",") == list(
            t.control_regions.replicas
        )
    assert len(roles) == len(found)
    groups = {g.inputs["name"]: g for g in run.of("aws:cloudwatch/logGroup:LogGroup")}
    for region in t.regions.all:
        group = groups[t.watcher_log_group(region)]
        assert group.region == region
        assert group.inputs["retentionInDays"] == run.settings.log_retention_days


def test_each_watcher_may_do_what_the_controller_does_and_no_more(run: Run) -> None:
    t = run.topology.for_stack(run.settings.stack)
    controller = set().union(
        *(
            actions_of(run, n)
            for n, _ in policies(run)
            if n.startswith(f"{t.prefix}-failover-controller-")
        )
    )
    own = {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        *CHAIN_SEND,
        *CHAIN_POLL,
    }
    assert controller
    for region in t.regions.all:
        name = f"{t.watcher_function(region)}-policy"
        actions = actions_of(run, name)
        assert actions == controller | own, (region, actions ^ (controller | own))
        doc = next(d for n, d in policies(run) if n == name)
        chained = [r for acts, r in statements(doc) if "sqs:SendMessage" in acts]
        assert chained == [[f"arn:aws:sqs:{region}:{ACCOUNT}:{t.watcher_function(region)}-chain"]]
        for acts, resources in statements(doc):
            if acts[0].startswith("logs:"):
                assert all(
                    f":{region}:" in r and t.watcher_log_group(region) in r for r in resources
                )


def test_each_watchers_next_evaluation_is_a_delayed_message_on_its_own_queue(run: Run) -> None:
    """The chain (controller.watchers.chain): a queue per region, told to its watcher, invoking
    it one link at a time; a link lives at most a minute (the schedule restarts a broken chain)
    and stays invisible while its invocation may run (AWS refuses a mapping otherwise)."""
    t = run.topology.for_stack(run.settings.stack)
    queues = {q.region: q.inputs for q in run.of("aws:sqs/queue:Queue") if is_watcher(q.name)}
    mappings = {
        m.region: m.inputs
        for m in run.of("aws:lambda/eventSourceMapping:EventSourceMapping")
        if is_watcher(m.name)
    }
    assert set(queues) == set(mappings) == set(t.regions.all)
    for region, fn in watchers(run).items():
        queue = queues[region]
        assert queue["name"] == f"{t.watcher_function(region)}-chain"
        assert int(queue["visibilityTimeoutSeconds"]) >= int(fn["timeout"])
        assert int(queue["messageRetentionSeconds"]) == 60
        assert queue["sqsManagedSseEnabled"] is True
        env = fn["environment"]["variables"]
        assert str(env[contract.ENV_WATCHER_CHAIN_QUEUE]).endswith(queue["name"])
        mapping = mappings[region]
        assert str(mapping["eventSourceArn"]).endswith(f":{region}:{ACCOUNT}:{queue['name']}")
        assert str(mapping["functionName"]).endswith(f"function:{t.watcher_function(region)}")
        assert int(mapping["batchSize"]) == 1


def test_each_watcher_is_invoked_every_minute(run: Run) -> None:
    found = watchers(run)
    rules = {
        r.region: r for r in run.of("aws:cloudwatch/eventRule:EventRule") if is_watcher(r.name)
    }
    assert set(rules) == set(found)
    targets = {
        x.region: x for x in run.of("aws:cloudwatch/eventTarget:EventTarget") if is_watcher(x.name)
    }
    permissions = {
        p.region: p for p in run.of("aws:lambda/permission:Permission") if is_watcher(p.name)
    }
    for region, rule in rules.items():
        assert rule.inputs["scheduleExpression"] == "rate(1 minute)"
        assert rule.inputs.get("state", "ENABLED") == "ENABLED"  # in every region, standbys too
        assert targets[region].inputs["arn"].endswith(f":function:{found[region]['name']}")
        assert permissions[region].inputs["principal"] == "events.amazonaws.com"


def lambda_shape(name: str) -> dict[str, object]:
    """A shape's limits in botocore's Lambda service model (what the API accepts)."""
    model = botocore.session.get_session().get_service_model("lambda")
    return dict(model.shape_for(name).metadata)


def test_a_minutes_event_that_meets_a_busy_watcher_is_dropped_not_queued_for_hours(
    run: Run,
) -> None:
    """EventBridge invokes asynchronously: by default Lambda keeps a throttled event up to 6
    hours and retries a failed one twice, a backlog of stale invocations."""
    found = watchers(run)
    configs = {
        c.region: c.inputs
        for c in run.of("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
        if is_watcher(c.name)
    }
    assert set(configs) == set(found)
    age, retries = lambda_shape("MaximumEventAgeInSeconds"), lambda_shape("MaximumRetryAttempts")
    for region, config in configs.items():
        assert config["functionName"] == found[region]["name"]
        assert config["maximumEventAgeInSeconds"] == SCHEDULE.max_event_age_seconds == 60
        assert int(age["min"]) == config["maximumEventAgeInSeconds"]  # Lambda's smallest
        assert config["maximumRetryAttempts"] == 0 and int(retries["min"]) == 0
        assert "qualifier" not in config  # the rule invokes the function itself


def test_no_reserved_concurrency_so_an_account_with_a_low_quota_takes_the_watchers(
    run: Run,
) -> None:
    """Reserving even 1 is refused where the unreserved pool would drop below its minimum."""
    for region, fn in watchers(run).items():
        assert fn.get("reservedConcurrentExecutions") in (None, -1), region


def test_each_watcher_is_the_function_of_the_size_the_cost_bench_prices(run: Run) -> None:
    """``bench/cost.py`` prices the memory and architecture the deployed function declares
    (192 MB: the example's watchers under $10 a month). x86_64, the sandbox's processor: a
    bundle built for arm64 carries pydantic-core compiled for aarch64, which this host cannot
    run, and the rehearsal is the deployment."""
    assert SCHEDULE.memory_mb == 192
    for region, fn in watchers(run).items():
        assert fn["architectures"] == [Architecture.X86_64.value], region
        assert int(fn["memorySize"]) == 192, region
    # Lambda takes any memory from 128 MB to 10,240 MB in 1-MB steps
    assert int(lambda_shape("MemorySize")["min"]) <= 192 <= int(lambda_shape("MemorySize")["max"])


def test_a_failover_started_by_the_last_evaluation_fits_in_the_timeout(run: Run) -> None:
    """The timeout is the minute plus a failover's budget: every level of the real plan with
    every step at its last retry (a run cut at the timeout waits for the lease to expire)."""
    t = run.topology
    policy = t.policy
    plan = build_plan(t, graph.build(t), target=t.regions.standby[0])
    step = (policy.step_retries + 1) * policy.step_timeout_seconds
    worst = len(plan.levels) * (step + policy.step_retries * STEP_BACKOFF_SECONDS)
    assert run_budget(t) >= worst, (run_budget(t), len(plan.levels))
    timeout = int(next(iter(watchers(run).values()))["timeout"])
    assert timeout >= min(SCHEDULE.max_timeout_seconds, SCHEDULE.period_seconds + worst)
    assert timeout <= SCHEDULE.max_timeout_seconds <= int(lambda_shape("Timeout")["max"])
    # every evaluation of a minute ends inside it: six at a 10 s interval
    starts = [i * policy.watch_interval_seconds for i in range(10)]
    assert [x for x in starts if SCHEDULE.may_start(x)] == [0, 10, 20, 30, 40, 50]


def test_each_watcher_is_told_the_period_its_rule_invokes_it_at(run: Run) -> None:
    rules = [r for r in run.of("aws:cloudwatch/eventRule:EventRule") if is_watcher(r.name)]
    assert {r.inputs["scheduleExpression"] for r in rules} == {"rate(1 minute)"}
    for fn in watchers(run).values():
        env = fn["environment"]["variables"]  # type: ignore[index]
        assert env[contract.ENV_WATCHER_PERIOD] == "60"


def test_a_dead_man_alarm_fires_when_a_watcher_has_not_evaluated_for_three_minutes(
    run: Run,
) -> None:
    t = run.topology.for_stack(run.settings.stack)
    alarms = {
        a.region: a.inputs
        for a in run.of("aws:cloudwatch/metricAlarm:MetricAlarm")
        if is_watcher(a.name)
    }
    assert set(alarms) == set(t.regions.all)
    topics = {x.region: x.state["arn"] for x in run.of("aws:sns/topic:Topic")}
    for region, alarm in alarms.items():
        assert alarm["namespace"] == contract.WATCHER_NAMESPACE
        assert alarm["metricName"] == contract.WATCHER_METRIC
        assert alarm["dimensions"] == {"App": t.prefix, "Region": region}
        assert alarm["treatMissingData"] == "breaching"  # silence is what it watches for
        assert alarm["period"] * alarm["evaluationPeriods"] == 180
        assert alarm["comparisonOperator"] == "LessThanThreshold" and alarm["threshold"] == 1
        assert alarm["alarmActions"] == [topics[region]]


def test_the_dead_man_alarm_waits_for_the_manifest_item(run: Run) -> None:
    """Until the manifest item exists no watcher can evaluate: an alarm created before it
    would fire on every new stack for nothing."""
    (item,) = [r for r in run.registrations if r.typ == "aws:dynamodb/tableItem:TableItem"]
    alarms = [a for a in run.of("aws:cloudwatch/metricAlarm:MetricAlarm") if is_watcher(a.name)]
    assert alarms
    for alarm in alarms:
        assert item.urn in alarm.options["dependencies"], alarm.name


def test_the_manifest_names_each_watcher_and_goes_into_the_control_table(run: Run) -> None:
    t = run.topology.for_stack(run.settings.stack)
    for region in t.regions.all:
        assert run.manifest["regions"][region]["watcher"] == {
            "function": t.watcher_function(region),
            "log_group": t.watcher_log_group(region),
        }
    (item,) = [i for i in run.of("aws:dynamodb/tableItem:TableItem")]
    assert item.inputs["tableName"] == t.control_table
    value = json.loads(item.inputs["item"])
    assert value["pk"] == {"S": contract.MANIFEST_ITEM}
    assert (
        json.loads(value[contract.MANIFEST_ITEM]["S"])["regions"].keys()
        == run.manifest["regions"].keys()
    )


#: This interpreter's runtime and processor, which the import check can run.
HOST = Target(
    f"python{sys.version_info.major}.{sys.version_info.minor}",
    Architecture.ARM64 if platform.machine() in ("arm64", "aarch64") else Architecture.X86_64,
)


def without_code(topology: Topology) -> dict[str, Any]:
    """The topology as data, less each function's code folder (which the watcher never reads)."""
    data = topology.model_dump(mode="json", exclude_none=True)
    for comp in data["components"].values():
        comp.pop("code", None)
    return data


def test_the_watcher_bundle_imports_its_handler_with_only_boto3_beside_it(tmp_path: Path) -> None:
    topology = load(EXAMPLE_SPEC)
    # built for this machine (whatever the watchers declare): this interpreter imports it
    bundle = watcher_bundle(topology, tmp_path / "bundles", HOST)
    carried = {metadata.distribution(d).metadata["Name"].lower() for d in bundle.distributions}
    assert {"networkx", "pydantic", "pyyaml"} <= carried
    assert not carried & {"moto", "matplotlib", "pulumi", "pulumi-aws", *RUNTIME_PROVIDED}
    assert not carried & {"typer", "rich", "pygments"}, "the CLI's, which a watcher never imports"
    names = zipfile.ZipFile(bundle.path).namelist()
    assert not [n for n in names if "/tests/" in n and not n.startswith("controller/")]
    assert contract.WATCHER_SPEC_FILE in names and "controller/watchers/lambda_entry.py" in names
    assert not any(n.startswith(("sandbox/", "infra/", "moto/", "pulumi")) for n in names)
    unpacked = tmp_path / "bundle"
    zipfile.ZipFile(bundle.path).extractall(unpacked)
    shipped = loads((unpacked / contract.WATCHER_SPEC_FILE).read_text())
    assert without_code(shipped) == without_code(topology), "the topology, less code folders"
    result = import_in_clean_interpreter(
        [unpacked, lambda_runtime(tmp_path)], ["controller.watchers.lambda_entry"]
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    print(f"watcher bundle: {bundle.size / 1e6:.2f} MB zipped, {len(names)} files")
    assert bundle.size < SIZE_GOAL, f"{bundle.size / 1e6:.1f} MB zipped"


def test_the_controllers_role_allows_every_operation_it_sends_to_the_control_table() -> None:
    """Every DynamoDB operation named in the control table's modules (``call("get_item", ...)``,
    ``attempt("update_item", ...)``) is an action of the roles' control-table statement: a read
    the role does not allow fails only on AWS, where the sandbox (which checks no policy) is
    not."""
    names = operations("dynamodb")
    sent = {
        node.value
        for path in sorted((REPO / "controller" / "controltable").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names
    }
    assert {"get_item", "batch_get_item", "put_item", "update_item", "query"} <= sent
    assert {action("dynamodb", op) for op in sent} <= set(CONTROL_ACTIONS)
