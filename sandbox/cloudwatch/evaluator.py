"""The region's alarm evaluator: CloudWatch's loop, inside the region's own server process.

Started by :mod:`sandbox.launcher` in every server it forks (a thread of the server: a region
that hangs stops evaluating with it, one that is killed forgets nothing it had not stored, and
a restarted one evaluates again from what it holds). Once a minute of its clock it records what
the region's services report on their own (SQS's queue depths); each tick, every metric alarm
the server holds whose evaluation is due (every minute, or every period when shorter, as
CloudWatch evaluates) is evaluated from the metric data the server holds
(:func:`sandbox.cloudwatch.evaluation.evaluate`); a change of state is recorded as
``SetAlarmState`` records it (reason, reason data, history) and published to the topics of the
alarm's actions for that state, in CloudWatch's notification format.

Off until the sandbox turns it on (``POST`` :data:`sandbox.controls.ALARMS_PATH`
``?evaluate=1``): a sandbox without its data plane has no callers at all, not even Route 53's
checkers, and the alarms on silence (a primary's low invocations, a watcher's dead man) would
fire there as they would on AWS. ``&ahead=S`` runs the evaluator's clock S seconds ahead of
``now`` (a test's way to reach the end of a 60 s or 300 s period without waiting for it; the
time comes from ``now``, the sandbox's clock by default: AWS time).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from controller import clock
from sandbox.cloudwatch.evaluation import (
    AlarmState,
    Comparison,
    Definition,
    Missing,
    Sample,
    Statistic,
    Verdict,
    evaluate,
)
from sandbox.controls import ALARMS_PATH

log = logging.getLogger(__name__)

#: Seconds between two looks at which alarms are due.
TICK = 0.5
#: CloudWatch evaluates an alarm every minute (every period, when it is shorter).
EVALUATION_INTERVAL = 60


def definition(alarm: Any) -> Definition | None:
    """A moto alarm's definition, or None when it is not one this evaluator plays (a metric-math
    or composite alarm, an extended statistic)."""
    try:
        return Definition(
            name=alarm.name,
            namespace=alarm.namespace,
            metric=alarm.metric_name,
            statistic=Statistic(alarm.statistic),
            period=int(alarm.period),
            evaluation_periods=int(alarm.evaluation_periods),
            threshold=float(alarm.threshold),
            comparison=Comparison(alarm.comparison_operator),
            missing=Missing(alarm.treat_missing_data or Missing.MISSING.value),
            datapoints_to_alarm=int(alarm.datapoints_to_alarm)
            if alarm.datapoints_to_alarm
            else None,
        )
    except (TypeError, ValueError):
        return None


def timestamp(value: Any) -> float:
    """A moto datum's timestamp (a datetime, an ISO string or epoch seconds) in epoch seconds."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return timestamp(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def samples(
    data: Iterable[Any], namespace: str, metric: str, dims: set[tuple[str, str]]
) -> list[Sample]:
    """The samples of one metric, exactly these dimensions (as an alarm selects a metric)."""
    out = []
    for datum in data:
        if datum.namespace != namespace or datum.name != metric:
            continue
        if {(d.name, d.value) for d in datum.dimensions} != dims:
            continue
        when = timestamp(datum.timestamp)
        if hasattr(datum, "value"):
            out.append(Sample.of(when, float(datum.value)))
        else:
            out.append(Sample(when, datum.sum, datum.min, datum.max, datum.sample_count))
    return out


def notification(alarm: Any, region: str, old: str, verdict: Verdict, now: float) -> dict[str, Any]:
    """The message CloudWatch publishes to an alarm action's topic."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AlarmArn": alarm.alarm_arn,
        "Region": region,
        "OldStateValue": old,
        "NewStateValue": verdict.state.value if verdict.state else old,
        "NewStateReason": verdict.reason,
        "StateChangeTime": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(now)),
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "Statistic": str(alarm.statistic).upper(),
            "Dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions],
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data or Missing.MISSING.value,
        },
    }


@dataclass
class Evaluator:
    """Evaluates the alarms of the CloudWatch backends ``backends()`` yields (``(region,
    backend)``), publishing through ``publish(region, topic_arn, subject, message)``."""

    backends: Callable[[], Iterable[tuple[str, Any]]]
    publish: Callable[[str, str, str, str], None]
    now: Callable[[], float] = clock.now
    enabled: bool = False
    ahead: float = 0.0
    #: What the region's own services report once a minute, called with the evaluator's time
    #: before its alarms are evaluated (SQS's queue depths).
    samplers: list[Callable[[float], None]] = field(default_factory=list)
    _due: dict[tuple[str, str], int] = field(default_factory=dict)
    _sampled: int = -1
    _stop: threading.Event = field(default_factory=threading.Event)

    def time(self) -> float:
        """The evaluator's clock: ``now()`` and what it was put ahead."""
        return self.now() + self.ahead

    def configure(self, enabled: bool, ahead: float) -> None:
        """Turn evaluation on or off and set the clock's lead."""
        self.enabled, self.ahead = enabled, ahead

    def tick(self) -> int:
        """Evaluate every alarm whose evaluation is due; how many were evaluated."""
        if not self.enabled:
            return 0
        now = self.time()
        minute = math.floor(now / EVALUATION_INTERVAL)
        if minute != self._sampled:
            self._sampled = minute
            for sample in self.samplers:
                sample(now)
        done = 0
        for region, backend in list(self.backends()):
            alarms = list(backend.alarms.values())
            data = list(backend.metric_data) if alarms else []
            for alarm in alarms:
                made = definition(alarm)
                if made is None:
                    continue
                interval = min(made.period, EVALUATION_INTERVAL)
                slot = math.floor(now / interval)
                if self._due.get((region, alarm.name)) == slot:
                    continue
                self._due[(region, alarm.name)] = slot
                try:
                    self.evaluate(region, alarm, made, data, now)
                except Exception:  # one alarm's failure does not stop the others'
                    log.exception("alarm %s in %s: evaluation failed", alarm.name, region)
                done += 1
        return done

    def evaluate(
        self, region: str, alarm: Any, made: Definition, data: list[Any], now: float
    ) -> None:
        """Evaluate one alarm at ``now``; record and publish a change of state."""
        dims = {(d.name, d.value) for d in alarm.dimensions}
        old = str(alarm.state_value)
        verdict = evaluate(
            made, samples(data, made.namespace, made.metric, dims), now, AlarmState(old)
        )
        if verdict.state is None or verdict.state.value == old:
            return
        alarm.update_state(verdict.reason, verdict.data, verdict.state.value)
        # moto stamps its own (wall) time; the change happened at the evaluator's AWS time
        alarm.state_updated_timestamp = dt.datetime.fromtimestamp(now, dt.UTC).replace(tzinfo=None)
        log.info(
            "alarm %s in %s: %s -> %s (%s)", alarm.name, region, old, verdict.state, verdict.reason
        )
        if not alarm.actions_enabled:
            return
        actions = {
            AlarmState.ALARM: alarm.alarm_actions,
            AlarmState.OK: alarm.ok_actions,
            AlarmState.INSUFFICIENT_DATA: alarm.insufficient_data_actions,
        }[verdict.state]
        message = json.dumps(notification(alarm, region, old, verdict, now))
        subject = f'{verdict.state.value}: "{alarm.name}" in {region}'[:100]
        for arn in actions or ():
            if ":sns:" in arn:
                try:
                    self.publish(region, arn, subject, message)
                except Exception:  # a topic gone: CloudWatch does not check its actions either
                    log.warning("alarm %s: cannot publish to %s", alarm.name, arn, exc_info=True)

    def run(self) -> None:
        """Tick until :meth:`stop`."""
        while not self._stop.wait(TICK):
            try:
                self.tick()
            except Exception:  # a backend changed under it (a restore): the next tick sees it
                log.exception("alarm evaluation failed")

    def start(self) -> threading.Thread:
        """Run :meth:`run` in a daemon thread."""
        thread = threading.Thread(target=self.run, name="alarm-evaluator", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """End :meth:`run`."""
        self._stop.set()


def moto_evaluator(now: Callable[[], float] = clock.now) -> Evaluator:
    """An evaluator over this process's moto backends (every account and region it holds)."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.sns.models import sns_backends

    def backends() -> Iterable[tuple[str, Any]]:
        for account in list(cloudwatch_backends.keys()):
            by_region = cloudwatch_backends[account]
            for region in list(by_region.keys()):
                yield region, by_region[region]

    def publish(region: str, arn: str, subject: str, message: str) -> None:
        account = arn.split(":")[4]
        sns_backends[account][region].publish(message, arn=arn, subject=subject)

    return Evaluator(backends, publish, now, samplers=[queue_depths])


def queue_depths(now: float) -> None:
    """SQS's minute metric of every queue this process holds: ``AWS/SQS``
    ``ApproximateNumberOfMessagesVisible`` by ``QueueName``, into the queue's region's
    CloudWatch (what the program's dead-letter alarms read)."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.sqs.models import sqs_backends

    stamp = dt.datetime.fromtimestamp(now, dt.UTC)
    for account in list(sqs_backends.keys()):
        for region in list(sqs_backends[account].keys()):
            queues = list(sqs_backends[account][region].queues.values())
            data = [
                {
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{"Name": "QueueName", "Value": queue.name}],
                    "Value": float(queue.approximate_number_of_messages),
                    "Timestamp": stamp,
                    "Unit": "Count",
                }
                for queue in queues
            ]
            if data:
                cloudwatch_backends[account][region].put_metric_data("AWS/SQS", data)


#: This server process's evaluator (:func:`start_here`), one per process as moto's backends are.
_HERE: list[Evaluator] = []


def start_here(now: Callable[[], float] = clock.now) -> Evaluator:
    """Start this process's evaluator over its moto backends (a server calls it once, after
    it is forked: the thread is the server's own)."""
    if not _HERE:
        _HERE.append(moto_evaluator(now))
        _HERE[0].start()
    return _HERE[0]


class AlarmControl:
    """WSGI middleware: :data:`sandbox.controls.ALARMS_PATH` configures this process's
    evaluator; behind the launcher's ``RoundTrip``, which checks the sandbox's secret."""

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != ALARMS_PATH:
            return self.application(environ, start_response)
        from urllib.parse import parse_qs

        error = control(start_here(), parse_qs(str(environ.get("QUERY_STRING", ""))))
        if error is not None:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"{error}\n".encode()]
        start_response("204 No Content", [])
        return [b""]


def control(evaluator: Evaluator, query: dict[str, list[str]]) -> str | None:
    """Apply a control request's query (``evaluate=0|1``, ``ahead=S``); an error line, or None.

    >>> e = Evaluator(lambda: [], lambda *a: None)
    >>> control(e, {"evaluate": ["1"], "ahead": ["300"]}), e.enabled, e.ahead
    (None, True, 300.0)
    >>> control(e, {"ahead": ["soon"]})
    'ahead: a number of seconds'
    """
    try:
        ahead = float(query.get("ahead", ["0"])[0])
    except ValueError:
        return "ahead: a number of seconds"
    if not math.isfinite(ahead):
        return "ahead: a number of seconds"
    evaluator.configure(query.get("evaluate", ["1"])[0] == "1", ahead)
    return None
