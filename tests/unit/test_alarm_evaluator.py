"""The region's evaluator loop (``sandbox.cloudwatch.evaluator``) over moto-shaped backends: it
evaluates each alarm once per minute of its clock, selects a metric by its exact dimensions,
records a change as SetAlarmState does and publishes it to the actions of the new state only,
and does nothing while off."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sandbox.cloudwatch.evaluator import Evaluator


@dataclass
class Dim:
    name: str
    value: str


@dataclass
class Datum:
    namespace: str
    name: str
    value: float
    timestamp: float
    dimensions: list[Dim]


@dataclass
class Alarm:
    name: str = "f-throttles-high"
    namespace: str = "AWS/Lambda"
    metric_name: str = "Throttles"
    statistic: str = "Sum"
    period: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    threshold: float = 1.0
    comparison_operator: str = "GreaterThanOrEqualToThreshold"
    treat_missing_data: str = "notBreaching"
    dimensions: list[Dim] = field(default_factory=lambda: [Dim("FunctionName", "f")])
    alarm_actions: list[str] = field(default_factory=lambda: ["arn:aws:sns:r:1:alarms"])
    ok_actions: list[str] = field(default_factory=lambda: ["arn:aws:sns:r:1:ok"])
    insufficient_data_actions: list[str] = field(default_factory=list)
    actions_enabled: bool = True
    description: str = ""
    alarm_arn: str = "arn:aws:cloudwatch:r:1:alarm:f-throttles-high"
    state_value: str = "OK"
    history: list[str] = field(default_factory=list)

    def update_state(self, reason: str, reason_data: str, state_value: str) -> None:
        self.history.append(state_value)
        self.state_value = state_value


@dataclass
class Backend:
    alarms: dict[str, Alarm]
    metric_data: list[Datum] = field(default_factory=list)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Evaluator, Backend, Clock, list[tuple[str, str, str]]]:
    backend = Backend({"f-throttles-high": Alarm()})
    clock = Clock()
    sent: list[tuple[str, str, str]] = []
    evaluator = Evaluator(
        lambda: [("r", backend)],
        lambda r, arn, subject, msg: sent.append((arn, subject, msg)),
        clock,
    )
    return evaluator, backend, clock, sent


def throttle(backend: Backend, at: float, dims: list[Dim] | None = None) -> None:
    backend.metric_data.append(
        Datum("AWS/Lambda", "Throttles", 1.0, at, dims or [Dim("FunctionName", "f")])
    )


def test_nothing_is_evaluated_while_off() -> None:
    evaluator, backend, clock, _ = make()
    throttle(backend, 1000.0)
    clock.now = 1100.0
    assert evaluator.tick() == 0 and backend.alarms["f-throttles-high"].state_value == "OK"


def test_throttles_alarm_once_their_period_is_over_and_publish_to_the_alarm_topic_only() -> None:
    evaluator, backend, clock, sent = make()
    evaluator.configure(True, 0.0)
    throttle(backend, 1000.0)  # period [960, 1020)
    assert evaluator.tick() == 1 and backend.alarms["f-throttles-high"].state_value == "OK"
    clock.now = 1020.0
    evaluator.tick()
    assert backend.alarms["f-throttles-high"].history == ["ALARM"]
    assert [(arn, subject) for arn, subject, _ in sent] == [
        ("arn:aws:sns:r:1:alarms", 'ALARM: "f-throttles-high" in r')
    ]
    message = json.loads(sent[0][2])
    assert (message["OldStateValue"], message["NewStateValue"]) == ("OK", "ALARM")
    assert message["Trigger"]["MetricName"] == "Throttles"


def test_an_alarm_is_evaluated_once_a_minute_and_a_state_kept_is_not_published_again() -> None:
    evaluator, backend, clock, sent = make()
    evaluator.configure(True, 0.0)
    throttle(backend, 1000.0)
    clock.now = 1020.0
    assert [evaluator.tick(), evaluator.tick()] == [1, 0]  # the same minute: not again
    clock.now = 1080.0
    assert evaluator.tick() == 1 and len(sent) == 1  # still ALARM: nothing new to say
    clock.now = 1200.0  # the datapoint has left the range: notBreaching, OK, to the OK topic
    evaluator.tick()
    assert [arn for arn, _, _ in sent] == ["arn:aws:sns:r:1:alarms", "arn:aws:sns:r:1:ok"]


def test_a_metric_with_other_dimensions_is_not_the_alarms() -> None:
    evaluator, backend, clock, sent = make()
    evaluator.configure(True, 0.0)
    throttle(backend, 1000.0, [Dim("FunctionName", "f"), Dim("Resource", "f:live")])
    throttle(backend, 1000.0, [Dim("FunctionName", "g")])
    clock.now = 1020.0
    evaluator.tick()
    assert backend.alarms["f-throttles-high"].state_value == "OK" and sent == []


def test_the_clock_ahead_reaches_the_end_of_a_period_and_disabled_actions_publish_nothing() -> None:
    evaluator, backend, _, sent = make()
    backend.alarms["f-throttles-high"].actions_enabled = False
    throttle(backend, 1000.0)
    evaluator.configure(True, 20.0)  # 1000 + 20: the throttles' period is over
    evaluator.tick()
    assert backend.alarms["f-throttles-high"].state_value == "ALARM" and sent == []


def test_the_regions_own_metrics_are_sampled_once_a_minute_before_its_alarms_are_evaluated() -> (
    None
):
    evaluator, backend, clock, _ = make()
    seen: list[tuple[float, str]] = []
    evaluator.samplers.append(
        lambda now: seen.append((now, backend.alarms["f-throttles-high"].state_value))
    )
    evaluator.configure(True, 0.0)
    throttle(backend, 1000.0)
    clock.now = 1020.0
    evaluator.tick()
    evaluator.tick()
    clock.now = 1081.0
    evaluator.tick()
    assert seen == [(1020.0, "OK"), (1081.0, "ALARM")]


def test_sqs_reports_each_queues_visible_messages_into_its_regions_cloudwatch() -> None:
    from moto import mock_aws
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.models import DEFAULT_ACCOUNT_ID as ACCOUNT
    from moto.sqs.models import sqs_backends

    from sandbox.cloudwatch.evaluator import queue_depths

    with mock_aws():
        sqs = sqs_backends[ACCOUNT]["eu-west-1"]
        queue = sqs.create_queue("orders-dlq")
        for body in ("a", "b"):
            sqs.send_message(queue.name, body)
        queue_depths(1200.0)
        data = cloudwatch_backends[ACCOUNT]["eu-west-1"].metric_data
        got = [
            (d.namespace, d.name, [(x.name, x.value) for x in d.dimensions], d.value) for d in data
        ]
        assert got == [
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", [("QueueName", "orders-dlq")], 2.0)
        ]
        assert cloudwatch_backends[ACCOUNT]["us-east-1"].metric_data == []
