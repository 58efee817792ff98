"""CloudWatch's evaluation of one metric alarm, as pure functions.

Called by :mod:`sandbox.cloudwatch.evaluator` (and the tests). What CloudWatch documents
("Evaluating an alarm", "How alarm state is evaluated when data is missing", the CloudWatch
user guide):

- the metric is aggregated per **period** (periods aligned on multiples of it) by the alarm's
  **statistic**; a period with no sample is a *missing* datapoint;
- CloudWatch retrieves more datapoints than the **evaluation periods** N: the *evaluation
  range*. The guide's tables retrieve 5 for N = 3; the exact number "depends on the period",
  here always N + :data:`EXTRA` (an assumption: the guide gives no other figure);
- if the range holds at least N real datapoints, the N most recent are evaluated and missing
  data does not matter; otherwise every real datapoint of the range is evaluated, and the
  missing ones fill the rest to N, as ``treatMissingData`` says (``breaching``,
  ``notBreaching``); ``missing`` and ``ignore`` fill nothing: with no real datapoint the alarm
  goes to ``INSUFFICIENT_DATA`` or keeps its state; with breaching ones only, fewer than M,
  ``ignore`` keeps its state and ``missing`` goes to ``ALARM`` when the oldest datapoint of the
  range is one of them (the guide's sixth row), else to ``INSUFFICIENT_DATA``;
- ALARM when at least M (**datapoints to alarm**, N by default) evaluated datapoints breach,
  else OK;
- alarms on the ``AWS/DynamoDB`` namespace always ignore missing data, whatever they say.

Only complete periods are evaluated: the period in progress is not a datapoint yet.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

#: Datapoints retrieved beyond the evaluation periods (the evaluation range is N + EXTRA).
EXTRA = 2


class AlarmState(StrEnum):
    """A metric alarm's state."""

    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class Missing(StrEnum):
    """``TreatMissingData``: what a missing datapoint counts as."""

    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"
    IGNORE = "ignore"
    MISSING = "missing"


class Comparison(StrEnum):
    """``ComparisonOperator`` of a static-threshold alarm."""

    GE = "GreaterThanOrEqualToThreshold"
    GT = "GreaterThanThreshold"
    LT = "LessThanThreshold"
    LE = "LessThanOrEqualToThreshold"


_WORDS = {
    Comparison.GE: "greater than or equal to",
    Comparison.GT: "greater than",
    Comparison.LT: "less than",
    Comparison.LE: "less than or equal to",
}


class Statistic(StrEnum):
    """The statistics an alarm aggregates a period with."""

    SUM = "Sum"
    AVERAGE = "Average"
    MAXIMUM = "Maximum"
    MINIMUM = "Minimum"
    SAMPLE_COUNT = "SampleCount"


@dataclass(frozen=True)
class Sample:
    """What one ``PutMetricData`` entry put: a value, or a statistic set (``StatisticValues``)."""

    timestamp: float
    sum: float
    minimum: float
    maximum: float
    count: float

    @classmethod
    def of(cls, timestamp: float, value: float) -> Sample:
        """One value, as ``Value`` puts it."""
        return cls(timestamp, value, value, value, 1.0)


@dataclass(frozen=True)
class Definition:
    """An alarm as the program deployed it (what ``DescribeAlarms`` answers)."""

    name: str
    namespace: str
    metric: str
    statistic: Statistic
    period: int
    evaluation_periods: int
    threshold: float
    comparison: Comparison
    missing: Missing = Missing.MISSING
    datapoints_to_alarm: int | None = None

    @property
    def m(self) -> int:
        """Datapoints that must breach (M of N)."""
        return self.datapoints_to_alarm or self.evaluation_periods

    @property
    def treats_missing(self) -> Missing:
        """The missing-data treatment CloudWatch applies (DynamoDB's always ignore)."""
        return Missing.IGNORE if self.namespace == "AWS/DynamoDB" else self.missing


@dataclass(frozen=True)
class Verdict:
    """The state an evaluation leads to, its reason, and its reason data (JSON)."""

    state: AlarmState | None  # None: keep the current state
    reason: str
    data: str


def aggregate(samples: Iterable[Sample], statistic: Statistic) -> float | None:
    """One period's datapoint: ``samples`` aggregated by ``statistic`` (None: no sample).

    >>> s = [Sample.of(0, 2.0), Sample(1, 6.0, 1.0, 5.0, 2.0)]
    >>> [aggregate(s, st) for st in Statistic]
    [8.0, 2.6666666666666665, 5.0, 1.0, 3.0]
    >>> aggregate([], Statistic.SUM) is None
    True
    """
    got = list(samples)
    if not got:
        return None
    count = sum(s.count for s in got)
    total = sum(s.sum for s in got)
    return {
        Statistic.SUM: total,
        Statistic.AVERAGE: total / count if count else math.nan,
        Statistic.MAXIMUM: max(s.maximum for s in got),
        Statistic.MINIMUM: min(s.minimum for s in got),
        Statistic.SAMPLE_COUNT: count,
    }[statistic]


def breaches(value: float, comparison: Comparison, threshold: float) -> bool:
    """Is ``value`` on the alarming side of ``threshold``?

    >>> breaches(1.0, Comparison.GE, 1.0), breaches(1.0, Comparison.GT, 1.0)
    (True, False)
    >>> breaches(0.0, Comparison.LE, 0.0), breaches(0.0, Comparison.LT, 0.0)
    (True, False)
    """
    return {
        Comparison.GE: value >= threshold,
        Comparison.GT: value > threshold,
        Comparison.LT: value < threshold,
        Comparison.LE: value <= threshold,
    }[comparison]


def evaluation_range(definition: Definition, now: float) -> list[float]:
    """The starts of the periods CloudWatch retrieves at ``now``, oldest first: the N +
    :data:`EXTRA` most recent complete periods, aligned on multiples of the period.

    >>> d = Definition("a", "n", "m", Statistic.SUM, 60, 1, 1.0, Comparison.GE)
    >>> evaluation_range(d, 200.0)
    [0.0, 60.0, 120.0]
    """
    period = definition.period
    end = math.floor(now / period) * period  # the period in progress is not a datapoint yet
    n = definition.evaluation_periods + EXTRA
    return [float(end - (n - i) * period) for i in range(n)]


def datapoints(definition: Definition, samples: Iterable[Sample], now: float) -> list[float | None]:
    """The evaluation range's datapoints at ``now``, oldest first (None: missing).

    >>> d = Definition("a", "n", "m", Statistic.MAXIMUM, 60, 1, 1.0, Comparison.GE)
    >>> datapoints(d, [Sample.of(61, 3.0), Sample.of(70, 5.0), Sample.of(185, 9.0)], 200.0)
    [None, 5.0, None]
    """
    starts = evaluation_range(definition, now)
    buckets: dict[float, list[Sample]] = {start: [] for start in starts}
    period = definition.period
    for sample in samples:
        start = float(math.floor(sample.timestamp / period) * period)
        if start in buckets:
            buckets[start].append(sample)
    return [aggregate(buckets[start], definition.statistic) for start in starts]


def decide(
    definition: Definition, points: Sequence[float | None], current: AlarmState
) -> AlarmState | None:
    """The state ``points`` (the evaluation range, oldest first) lead to; None: keep
    ``current`` (``ignore``).

    >>> d = Definition("a", "n", "m", Statistic.SUM, 60, 3, 1.0, Comparison.GE)
    >>> X, O, _ = 5.0, 0.0, None
    >>> decide(d, [O, X, X, _, X], AlarmState.OK)  # 3 real ones: missing data does not matter
    <AlarmState.ALARM: 'ALARM'>
    >>> decide(d, [_, _, _, _, _], AlarmState.OK)  # nothing real, treated as missing
    <AlarmState.INSUFFICIENT_DATA: 'INSUFFICIENT_DATA'>
    """
    n, m, missing = definition.evaluation_periods, definition.m, definition.treats_missing
    real = [p for p in points if p is not None]
    if len(real) >= n:
        evaluated = [breaches(p, definition.comparison, definition.threshold) for p in real[-n:]]
        return AlarmState.ALARM if sum(evaluated) >= m else AlarmState.OK
    bad = sum(breaches(p, definition.comparison, definition.threshold) for p in real)
    if missing in (Missing.BREACHING, Missing.NOT_BREACHING):
        filled = n - len(real)
        bad += filled if missing is Missing.BREACHING else 0
        return AlarmState.ALARM if bad >= m else AlarmState.OK
    if bad >= m:
        return AlarmState.ALARM
    if bad < len(real):  # a real datapoint within the threshold: OK
        return AlarmState.OK
    if missing is Missing.IGNORE:  # only breaching ones, fewer than M: the state stays
        return None
    if real and points[0] is not None:  # ... the oldest of the range among them
        return AlarmState.ALARM
    return AlarmState.INSUFFICIENT_DATA


def evaluate(
    definition: Definition, samples: Iterable[Sample], now: float, current: AlarmState
) -> Verdict:
    """Evaluate ``definition`` at ``now`` over its metric's ``samples``: the state it goes to
    (None: it keeps ``current``) and why, in CloudWatch's words.

    >>> d = Definition("f-throttles-high", "AWS/Lambda", "Throttles", Statistic.SUM, 60, 1,
    ...                1.0, Comparison.GE, Missing.NOT_BREACHING)
    >>> v = evaluate(d, [Sample.of(65.0, 1.0), Sample.of(70.0, 1.0)], 125.0, AlarmState.OK)
    >>> v.state, v.reason
    (<AlarmState.ALARM: 'ALARM'>, 'Threshold Crossed: 1 out of the last 1 datapoints [2.0 \
(01/01/70 00:01:00)] was greater than or equal to the threshold (1.0) (minimum 1 datapoint for \
OK -> ALARM transition).')
    >>> evaluate(d, [], 125.0, AlarmState.ALARM).state
    <AlarmState.OK: 'OK'>
    """
    points = datapoints(definition, samples, now)
    state = decide(definition, points, current)
    starts = evaluation_range(definition, now)
    recent = [(s, p) for s, p in zip(starts, points, strict=True) if p is not None]
    shown = recent[-definition.evaluation_periods :][::-1]
    listed = ", ".join(f"{p} ({_when(s)})" for s, p in shown)
    if state is AlarmState.INSUFFICIENT_DATA or (state is None and not recent):
        reason = (
            f"Insufficient Data: {len(recent)} datapoints were unknown."
            if state is not None
            else "no datapoints: the alarm keeps its state (missing data ignored)"
        )
    else:
        verb = "was" if len(shown) == 1 else "were"
        bad = sum(breaches(p, definition.comparison, definition.threshold) for _, p in shown)
        what = "Threshold Crossed" if state is AlarmState.ALARM else "Threshold Not Crossed"
        reason = (
            f"{what}: {bad if state is AlarmState.ALARM else len(shown)} out of the last "
            f"{definition.evaluation_periods} datapoints [{listed}] {verb} "
            f"{'' if state is AlarmState.ALARM else 'not '}"
            f"{_WORDS[definition.comparison]} the threshold ({definition.threshold}) "
            f"(minimum {definition.m} datapoint{'s' if definition.m > 1 else ''} for "
            f"OK -> ALARM transition)."
        )
    data = json.dumps(
        {
            "version": "1.0",
            "queryDate": _iso(now),
            "startDate": _iso(starts[0]),
            "statistic": definition.statistic.value,
            "period": definition.period,
            "recentDatapoints": [p for _, p in shown][::-1],
            "threshold": definition.threshold,
            "evaluatedDatapoints": [{"timestamp": _iso(s), "value": p} for s, p in shown],
        }
    )
    return Verdict(state, reason, data)


def _when(timestamp: float) -> str:
    return time.strftime("%d/%m/%y %H:%M:%S", time.gmtime(timestamp))


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(timestamp))
