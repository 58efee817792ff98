"""The cost bench's arithmetic (``bench/cost.py``): measured counts to dollars a month, on a fixed
input whose bill is worked out by hand here. A wrong unit (seconds for milliseconds, MB for GB,
per request for per million, a day's scale for a month's) moves a line by orders of magnitude."""

from __future__ import annotations

import collections
from types import ModuleType

import pytest

from tests.kit import benches


@pytest.fixture(scope="module")
def cost() -> ModuleType:
    return benches.load("cost")


#: Round public prices, so that each line below can be worked out by hand.
AMOUNTS = {
    "lambda_gb_second_x86": 0.0000166667,
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "xray_trace": 5.0 / 1e6,
    "cloudwatch_custom_metric": 0.30,
    "cloudwatch_alarm_standard": 0.10,
    "cloudwatch_api_request": 0.01 / 1000,
    "cloudwatch_describe_alarms": 0.01 / 1000,
    "cloudwatch_get_metric_data": 0.01 / 1000,
    "cloudwatch_logs_ingest_gb": 0.50,
    "dynamodb_read_unit": 0.125 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_replicated_write_unit": 0.625 / 1e6,
    "ssm_api_higher_throughput": 0.05 / 10_000,
}


def prices(cost: ModuleType) -> dict[str, object]:
    table = cost.load_prices()
    return {
        name: cost.Price(AMOUNTS.get(name, 0.0), p.per, p.read, p.source)
        for name, p in table.items()
    }


def one_minute(cost: ModuleType) -> list[object]:
    """One region's watcher, one invocation in its one measured minute: 50 AWS seconds asleep,
    1 AWS second evaluating (0.5 s of this host's CPU), and what it called."""
    calls = collections.Counter(
        {
            "cloudwatch.DescribeAlarms": 3,
            "cloudwatch.PutMetricData": 2,
            "cloudwatch.GetMetricData": 1,
            "ssm.GetParameters": 4,
            "dynamodb.GetItem": 5,
        }
    )
    return [
        cost.Invocation(
            "us-west-2",
            evaluations=6,
            aws_seconds=1.0,
            cpu_seconds=0.5,
            slept_seconds=50.0,
            calls=calls,
            metrics_requested=10,
            read_units=5.0,
            write_units=1.0,
            log_bytes=1000,
            metrics={("Evaluations", ("App", "Region"))},
        )
    ]


def test_a_month_of_one_invocation_a_minute_priced_line_by_line(cost: ModuleType) -> None:
    # 51.0 AWS seconds billed: asleep and evaluating, as the scaled clock measured them
    config = cost.Config("fixed", cost.WatcherCadence.MINUTE, 2048, "x86_64")
    usage = cost.usage(one_minute(cost), config, minutes=1, regions=1, replicas=2)
    bill = {line.item: line for line in cost.bill(usage, prices(cost))}
    month = 30 * 24 * 60  # invocations: one a minute for 30 days
    assert usage.invocations == month == 43_200
    # 51.0 s x 2 GB x 43,200 = 4,406,400 GB-s at $0.0000166667
    assert bill["Lambda duration"].quantity == pytest.approx(4_406_400)
    assert bill["Lambda duration"].dollars == pytest.approx(73.44, abs=0.01)
    assert bill["Lambda requests"].dollars == pytest.approx(0.00864)  # 43,200 at $0.20 per M
    assert bill["X-Ray traces"].dollars == pytest.approx(0.216)  # 43,200 at $5 per M
    assert bill["CloudWatch custom metrics"].dollars == pytest.approx(0.30)
    assert bill["CloudWatch alarms"].dollars == pytest.approx(0.10)  # one dead-man alarm
    # PutMetricData and DescribeAlarms are billed per request (CW:Requests), GetMetricData per
    # metric requested
    assert bill["CloudWatch API requests"].quantity == pytest.approx(86_400)
    assert bill["CloudWatch API requests"].dollars == pytest.approx(0.864)
    assert bill["CloudWatch DescribeAlarms"].quantity == pytest.approx(129_600)
    assert bill["CloudWatch DescribeAlarms"].dollars == pytest.approx(1.296)
    assert bill["CloudWatch GetMetricData"].dollars == pytest.approx(4.32)  # 432,000 metrics
    # (1,000 + 330 bytes) x 43,200 = 57,456,000 bytes = 0.05351 GiB at $0.50
    assert bill["CloudWatch Logs ingested"].dollars == pytest.approx(0.026754, rel=1e-3)
    assert bill["DynamoDB reads (control table)"].dollars == pytest.approx(0.027)  # 216,000 RRU
    assert bill["DynamoDB writes (control table)"].dollars == pytest.approx(0.027)
    assert bill["DynamoDB replicated writes"].dollars == pytest.approx(0.027)  # 1 other replica
    assert bill["SSM Parameter Store API"].dollars == 0  # standard throughput
    higher = {
        line.item: line for line in cost.bill(usage, prices(cost), ssm_higher_throughput=True)
    }
    assert higher["SSM Parameter Store API"].dollars == pytest.approx(0.864)  # 172,800 calls


def test_memory_architecture_and_measured_minutes_scale_the_bill(cost: ModuleType) -> None:
    invocations = one_minute(cost)
    x86 = cost.Config("x86", cost.WatcherCadence.MINUTE, 2048, "x86_64")
    arm = cost.Config("arm", cost.WatcherCadence.MINUTE, 2048, "arm64")
    small = cost.Config("small", cost.WatcherCadence.MINUTE, 256, "arm64")

    def duration(config: object, minutes: int = 1) -> float:
        usage = cost.usage(invocations, config, minutes=minutes, regions=1, replicas=1)
        return float(cost.bill(usage, prices(cost))[0].dollars)

    assert duration(arm) == pytest.approx(4_406_400 * 0.0000133334)  # arm64's rate
    # 256 MB: an eighth of the memory, the same 51 AWS seconds (what the scaled clock measured)
    assert duration(small) == pytest.approx(51.0 * 0.25 * 43_200 * 0.0000133334, rel=1e-4)
    # the same invocation measured over two minutes is half as many a month
    assert duration(x86, minutes=2) == pytest.approx(duration(x86) / 2)


def test_the_baseline_prices_the_telemetry_it_had_not_what_it_emits_now(cost: ModuleType) -> None:
    usage = cost.usage(one_minute(cost), cost.BASELINE, minutes=1, regions=3, replicas=2)
    assert usage.custom_metrics == 18  # 3 metrics x 2 dimension sets x 3 regions
    assert cost.BASELINE.memory_mb == 512 and cost.BASELINE.architecture == "x86_64"


def test_every_price_says_when_it_was_read_and_where(cost: ModuleType) -> None:
    table = cost.load_prices()
    assert set(AMOUNTS) <= set(table)
    for name, price in table.items():
        assert price.source.startswith("https://aws.amazon.com/"), name
        assert len(price.read) == 10 and price.read[4] == "-", name  # YYYY-MM-DD
        assert price.amount >= 0 and price.per, name
    assert table["lambda_gb_second_arm64"].amount < table["lambda_gb_second_x86"].amount
    # every CloudWatch API request but GetMetricData's is metered: DescribeAlarms too
    assert table["cloudwatch_describe_alarms"].amount == table["cloudwatch_api_request"].amount > 0


def test_a_batch_read_bills_each_item_apart_and_each_key_not_found(cost: ModuleType) -> None:
    """``BatchGetItem`` bills each item it reads apart (at least one unit, then one per 4 KB), a
    key it did not find one unit, a key it left unprocessed nothing; an eventually consistent
    read half. Three keys: one 5 KB item (2 units), one small (1), one not found (1)."""
    meter = cost.Meter("control")
    keys = [{"pk": {"S": k}, "sk": {"S": k}} for k in ("lease", "automation", "current")]
    big = {"pk": {"S": "lease"}, "sk": {"S": "lease"}, "blob": {"S": "x" * 5000}}
    small = {"pk": {"S": "automation"}, "sk": {"S": "automation"}}

    def read(consistent: bool, unprocessed: list[dict[str, object]]) -> float:
        meter.current = cost.Invocation("us-west-2")
        context: dict[str, object] = {}
        request = {"control": {"Keys": keys, "ConsistentRead": consistent}}
        meter.params(
            "before-parameter-build.dynamodb.BatchGetItem", {"RequestItems": request}, context
        )
        answer = {
            "Responses": {"control": [big, small]},
            "UnprocessedKeys": {"control": {"Keys": unprocessed}} if unprocessed else {},
        }
        meter.after("after-call.dynamodb.BatchGetItem", answer, context)
        return float(meter.current.read_units)

    assert read(True, []) == 4.0
    assert read(False, []) == 2.0
    assert read(True, keys[2:]) == 3.0  # the unprocessed key is read again, and billed then
    meter.current = cost.Invocation("us-west-2")
    other: dict[str, object] = {}
    meter.params(
        "before-parameter-build.dynamodb.BatchGetItem",
        {"RequestItems": {"another-table": {"Keys": keys, "ConsistentRead": True}}},
        other,
    )
    meter.after("after-call.dynamodb.BatchGetItem", {"Responses": {"control": [big]}}, other)
    assert meter.current.read_units == 0  # another table's reads are not the watcher's
