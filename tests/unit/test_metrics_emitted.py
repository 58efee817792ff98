"""What the sandbox emits into each region's CloudWatch (``sandbox.cloudwatch.metrics``):
Lambda's metrics of an invocation and of a throttle, under the dimension sets Lambda uses, and
the embedded-metric-format records a function logs (the watchers' dead-man metric), each once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandbox.cloudwatch.metrics import LambdaMetrics, LogMetrics, Metrics
from sandbox.lambda_.invoke import Invocation, Outcome


class CloudWatch:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[dict[str, Any]]]] = []

    def client(self, region: str) -> Any:
        outer = self

        class Client:
            def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
                outer.calls.append((region, Namespace, MetricData))

        return Client()

    def sums(self) -> dict[tuple[str, str, tuple[tuple[str, str], ...]], float]:
        out: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = {}
        for region, _, data in self.calls:
            for d in data:
                dims = tuple((x["Name"], x["Value"]) for x in d["Dimensions"])
                key = (region, d["MetricName"], dims)
                out[key] = out.get(key, 0.0) + d["StatisticValues"]["Sum"]
        return out


def invocation(outcome: Outcome, duration: float = 0.25) -> Invocation:
    return Invocation(
        "eu-west-1", "orders-api", "api", outcome, 0.0, duration, False, concurrent=2,
        qualifier="live",
    )  # fmt: skip


def test_an_invocation_a_failure_and_a_throttle_as_lambda_counts_them() -> None:
    cloudwatch = CloudWatch()
    metrics = Metrics(cloudwatch.client, now=lambda: 120.0)
    observe = LambdaMetrics(metrics)
    for outcome in (Outcome.OK, Outcome.ERROR, Outcome.TIMEOUT, Outcome.THROTTLED):
        observe(invocation(outcome))
    metrics.flush()
    by_function = {
        name: value
        for (region, name, dims), value in cloudwatch.sums().items()
        if dims == (("FunctionName", "orders-api"),) and region == "eu-west-1"
    }
    assert by_function == {
        "Invocations": 3.0,  # a throttled one never ran
        "Errors": 2.0,  # the error and the timeout
        "Throttles": 1.0,
        "Duration": 750.0,
        "ConcurrentExecutions": 6.0,
    }
    alias = ("FunctionName", "orders-api"), ("Resource", "orders-api:live")
    assert cloudwatch.sums()[("eu-west-1", "Throttles", alias)] == 1.0


def test_a_region_that_does_not_take_its_metrics_loses_them_and_the_others_are_sent() -> None:
    sent: list[str] = []

    class Client:
        def __init__(self, region: str) -> None:
            self.region = region

        def put_metric_data(self, **_: Any) -> None:
            if self.region == "us-east-1":
                raise TimeoutError("hung")
            sent.append(self.region)

    metrics = Metrics(Client)
    metrics.add("us-east-1", "AWS/Lambda", "Invocations", {"FunctionName": "f"}, 1.0)
    metrics.add("us-west-2", "AWS/Lambda", "Invocations", {"FunctionName": "f"}, 1.0)
    assert metrics.flush() == 1 and sent == ["us-west-2"]
    assert metrics.flush() == 0  # lost, not queued for a region that comes back


def test_a_watchers_embedded_metrics_are_extracted_once_and_only_what_it_logged_since(
    tmp_path: Path,
) -> None:
    log = tmp_path / "watcher-eu-west-1.log"
    record = {
        "_aws": {
            "Timestamp": 180000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Failover/Watchers",
                    "Dimensions": [["App"]],
                    "Metrics": [{"Name": "Evaluations", "Unit": "Count"}],
                }
            ],
        },
        "App": "orders",
        "Evaluations": 1,
    }
    log.write_text(json.dumps(record) + "\n")  # before the process started: not this one's
    cloudwatch = CloudWatch()
    metrics = Metrics(cloudwatch.client)
    observe = LogMetrics(metrics, {"orders-failover-watcher": log})
    done = Invocation("eu-west-1", "orders-failover-watcher", "schedule", Outcome.OK, 0, 1, False)
    with log.open("a") as out:
        out.write("evaluation text\n" + json.dumps(record) + "\n" + json.dumps(record)[:20])
    observe(done)
    observe(done)  # nothing new: nothing counted twice
    with log.open("a") as out:
        out.write(json.dumps(record)[20:] + "\n")
    observe(done)
    metrics.flush()
    key = ("eu-west-1", "Evaluations", (("App", "orders"),))
    assert cloudwatch.sums() == {key: 2.0}
    assert cloudwatch.calls[0][2][0]["Timestamp"] == 180.0
