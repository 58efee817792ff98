"""CloudWatch's evaluation of an alarm (``sandbox.cloudwatch.evaluation``), against the tables of
the CloudWatch user guide ("How alarm state is evaluated when data is missing") and cases an
implementation that counts only the last N periods, or fills every gap, or ignores the
statistic or the operator, gets wrong."""

from __future__ import annotations

import pytest

from sandbox.cloudwatch.evaluation import (
    AlarmState,
    Comparison,
    Definition,
    Missing,
    Sample,
    Statistic,
    datapoints,
    decide,
    evaluate,
)

OK, ALARM, INSUFFICIENT = AlarmState.OK, AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA
KEEP = None  # the alarm keeps its state


def alarm(n: int = 3, m: int | None = None, missing: Missing = Missing.MISSING) -> Definition:
    return Definition("a", "App", "Errors", Statistic.SUM, 300, n, 1.0, Comparison.GE, missing, m)


def points(row: str) -> list[float | None]:
    """``"0 - X - X"``: 0 within the threshold, X breaching, - missing (oldest first)."""
    return [{"0": 0.0, "X": 5.0, "-": None}[c] for c in row.split()]


# The guide's first table: 3 of 3, the 5 most recent datapoints retrieved.
THREE_OF_THREE = [
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT, KEEP, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - - - X", INSUFFICIENT, KEEP, ALARM, OK),
    ("X - - - -", ALARM, KEEP, ALARM, OK),
]
# The second: 2 of 3 (M out of N).
TWO_OF_THREE = [
    ("0 - X - X", ALARM, ALARM, ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM, ALARM, ALARM),
    ("0 - X - -", OK, OK, ALARM, OK),
    ("- - - - 0", OK, OK, ALARM, OK),
    ("- - - - X", INSUFFICIENT, KEEP, ALARM, OK),
]
TREATMENTS = (Missing.MISSING, Missing.IGNORE, Missing.BREACHING, Missing.NOT_BREACHING)


@pytest.mark.parametrize(("m", "table"), [(3, THREE_OF_THREE), (2, TWO_OF_THREE)])
def test_the_user_guides_missing_data_tables_m_of_n_with_gaps(
    m: int, table: list[tuple[str, ...]]
) -> None:
    for row, *expected in table:
        got = [decide(alarm(3, m, t), points(row), AlarmState.OK) for t in TREATMENTS]
        assert got == expected, row


def test_ignore_keeps_whatever_state_the_alarm_is_in() -> None:
    d = alarm(missing=Missing.IGNORE)
    assert decide(d, points("- - - - -"), ALARM) is None
    assert decide(d, points("- - - - -"), INSUFFICIENT) is None


def test_dynamodb_alarms_ignore_missing_data_whatever_they_say() -> None:
    d = Definition(
        "lag", "AWS/DynamoDB", "ReplicationLatency", Statistic.AVERAGE, 60, 3, 1.0,
        Comparison.GE, Missing.NOT_BREACHING,
    )  # fmt: skip
    assert decide(d, points("- - - - -"), ALARM) is None  # not OK, as notBreaching would say


@pytest.mark.parametrize(
    ("comparison", "value", "fires"),
    [
        (Comparison.GE, 1.0, True),
        (Comparison.GE, 0.5, False),
        (Comparison.GT, 1.0, False),
        (Comparison.GT, 1.5, True),
        (Comparison.LT, 1.0, False),
        (Comparison.LT, 0.5, True),
        (Comparison.LE, 1.0, True),
        (Comparison.LE, 1.5, False),
    ],
)
def test_each_comparison_operator_at_and_around_the_threshold(
    comparison: Comparison, value: float, fires: bool
) -> None:
    d = Definition("a", "App", "M", Statistic.MAXIMUM, 60, 1, 1.0, comparison, Missing.MISSING)
    assert decide(d, [None, None, value], OK) is (ALARM if fires else OK)


def test_sum_adds_a_periods_samples_where_maximum_takes_the_largest() -> None:
    samples = [Sample.of(60.0 + i, 0.4) for i in range(3)]  # 1.2 in all, none above 0.4
    by = {
        stat: evaluate(
            Definition("a", "App", "M", stat, 60, 1, 1.0, Comparison.GE), samples, 130.0, OK
        ).state
        for stat in (Statistic.SUM, Statistic.MAXIMUM)
    }
    assert by == {Statistic.SUM: ALARM, Statistic.MAXIMUM: OK}


def test_the_period_in_progress_is_not_a_datapoint_yet() -> None:
    d = Definition("a", "App", "M", Statistic.SUM, 60, 1, 1.0, Comparison.GE, Missing.NOT_BREACHING)
    throttled = [Sample.of(125.0, 3.0)]
    assert evaluate(d, throttled, 179.0, OK).state is OK  # its period ends at 180
    assert evaluate(d, throttled, 180.0, OK).state is ALARM


def test_a_datapoint_leaves_the_range_after_n_plus_two_periods_then_missing_data_counts() -> None:
    d = Definition("a", "App", "M", Statistic.SUM, 60, 1, 1.0, Comparison.GE, Missing.NOT_BREACHING)
    one = [Sample.of(10.0, 1.0)]
    # the range is 3 periods: a lone datapoint is the most recent real one while in it
    assert [evaluate(d, one, t, OK).state for t in (60.0, 120.0, 180.0, 240.0)] == [
        ALARM, ALARM, ALARM, OK,
    ]  # fmt: skip


def test_samples_fall_in_the_period_their_timestamp_is_in_statistic_sets_included() -> None:
    d = Definition("a", "App", "M", Statistic.AVERAGE, 60, 2, 1.0, Comparison.GE)
    got = datapoints(d, [Sample.of(0.0, 4.0), Sample(59.9, 6.0, 1.0, 5.0, 4.0)], 130.0)
    assert got == [None, None, 2.0, None]


def test_the_reason_names_the_evaluated_datapoints_and_the_threshold() -> None:
    d = Definition("f-errors-high", "AWS/Lambda", "Errors", Statistic.SUM, 300, 1, 1.0,
                   Comparison.GE, Missing.NOT_BREACHING)  # fmt: skip
    verdict = evaluate(d, [Sample.of(310.0, 2.0)], 600.0, OK)
    assert verdict.state is ALARM
    assert "[2.0 (01/01/70 00:05:00)]" in verdict.reason and "threshold (1.0)" in verdict.reason
