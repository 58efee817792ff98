"""The watchers ``pulumi up`` deploys (infra/watchers.py), under mocks, and their bundle.

One watcher function per application region, each with its own role (the controller's actions,
no more), a schedule every minute, a log group with retention, X-Ray, and a dead-man alarm on
its evaluations; the manifest names each one and is written into the control table for them to
read. The bundle imports the handler in a clean interpreter with only itself and boto3.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import zipfile
from pathlib import Path

from infra_mocks import Run, is_watcher
from test_infra_bundle import import_in_clean_interpreter, lambda_runtime
from test_infra_security import policies, statements

from controller import contract
from controller.spec import EXAMPLE_SPEC, load, loads
from infra.bundle import RUNTIME_PROVIDED
from infra.watchers import HANDLER, watcher_bundle

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
        assert fn["reservedConcurrentExecutions"] == 1
        assert int(fn["timeout"]) > 60  # a minute of watching, then the next invocation
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
    }
    assert controller
    for region in t.regions.all:
        name = f"{t.watcher_function(region)}-policy"
        actions = actions_of(run, name)
        assert actions - own == controller, (region, actions ^ controller)
        doc = next(d for n, d in policies(run) if n == name)
        for acts, resources in statements(doc):
            if acts[0].startswith("logs:"):
                assert all(
                    f":{region}:" in r and t.watcher_log_group(region) in r for r in resources
                )


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


def test_the_watcher_bundle_imports_its_handler_with_only_boto3_beside_it(tmp_path: Path) -> None:
    topology = load(EXAMPLE_SPEC)
    bundle = watcher_bundle(topology, tmp_path / "bundles")
    carried = {metadata.distribution(d).metadata["Name"].lower() for d in bundle.distributions}
    assert {"networkx", "pydantic", "pyyaml"} <= carried
    assert not carried & {"moto", "matplotlib", "pulumi", "pulumi-aws", *RUNTIME_PROVIDED}
    names = zipfile.ZipFile(bundle.path).namelist()
    assert contract.WATCHER_SPEC_FILE in names and "controller/lambda_watcher.py" in names
    assert not any(n.startswith(("sandbox/", "infra/", "moto/", "pulumi")) for n in names)
    unpacked = tmp_path / "bundle"
    zipfile.ZipFile(bundle.path).extractall(unpacked)
    assert loads((unpacked / contract.WATCHER_SPEC_FILE).read_text()) == topology
    result = import_in_clean_interpreter(
        [unpacked, lambda_runtime(tmp_path)], ["controller.lambda_watcher"]
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    print(f"watcher bundle: {bundle.size / 1e6:.2f} MB zipped, {len(names)} files")
    assert bundle.size < SIZE_GOAL, f"{bundle.size / 1e6:.1f} MB zipped"
