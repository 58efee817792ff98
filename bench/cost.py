"""What the watchers cost a month, measured in the sandbox and priced from ``bench/prices.toml``.

Runs each region's deployed handler (:func:`controller.watchers.lambda_entry.watch`) in this
process against the sandbox, one scheduled minute after another, first with the cadence before
issue #27 (every watcher evaluates every interval through its minute, 512 MB x86_64: the
baseline), then with the deployed one (:data:`controller.contract.WATCHER_SCHEDULE`), and counts
per invocation: AWS calls by service and operation, the control table's read and write units,
CloudWatch metrics and log bytes, evaluations, CPU and wall time. The waits between evaluations
are not slept but counted (a sleeping Lambda function is billed all the same). Priced: dollars per
application per month, line by line, and the ratio of the two.

It measures on the sandbox's scaled clock (k = ``--time-scale``, 10 by default, not the
sandbox's 5: the handler's
interval, its minute and Lambda's context all count AWS seconds, :mod:`controller.clock`) and
prices AWS seconds. Billed duration per invocation = the AWS seconds it slept (counted, not slept:
the handler's own waits between evaluations) + the AWS seconds its evaluations took (k times
their wall time here: what the sandbox's Lambda reports as the invocation's Duration). That
counts the handler's CPU k times: at k = 10 about what 192 MB's share of a vCPU (192/1,769) makes
of it, more than 512 MB's (the baseline's work is over-counted, by cents: it sleeps 50 s of its
minute). Not priced: EventBridge's schedule, Route 53 health checks (the application's, not the
watchers'), data transfer, the free tiers.

The levers weighed (issue #27 item 5), the example's figures as this bench prints them:

- **duration spent sleeping** (most of the baseline's bill: a 512 MB function alive 60 s of
  every minute in each of three regions). Lambda durable functions do not bill their waits, but
  run only on python3.13+ managed runtimes (the watcher's is python3.11; durable-supported-
  runtimes in the Lambda guide), launched in US East (Ohio) only (December 2025), which the
  example does not use, the sandbox cannot run them, and at 6 evaluations a minute in 3
  regions their operations alone ($8 per million, a step and a wait per evaluation) cost about
  $12 a month: over the goal before any compute (priced below, "levers not taken"). Evaluations
  triggered by CloudWatch alarm state changes cannot meet the goal: an alarm on a standard
  metric changes state a minute or more after the outage (detection's goal is 30 s), and a
  region that is down sends no event. EventBridge invokes at most once a minute: rate
  expressions take minutes, hours or days, and Scheduler invokes "with 60 second precision"
  (EventBridge Scheduler guide, schedule types): one evaluation per invocation would watch every
  60 s, not 10 s. **Chosen: the sentinel cadence**
  (:mod:`controller.watchers.cadence`): detection of the active region's failure needs one
  watcher outside it evaluating every interval, not three; the others evaluate once a minute
  (the dead-man alarm's and the reconciler's pace) and every interval only while something is not
  calm. One function alive all the time instead of three. Its price: the active region's own
  watcher, never the sentinel, sees a partition of its region up to a minute later, which
  widens the window in which two regions may write from 60 s to 110 s (plus the check and the
  fence: :mod:`controller.watchers.isolation`, tested in ``tests/unit/test_isolation.py``).
  Keeping that watcher's cut-off check every interval needs the function alive all its
  minute: one cheap read an interval, but 60 s of duration a minute (priced below, "levers not
  taken").
  The sentinel still lived its whole minute, sleeping between its six evaluations: $7.10 of
  the $13.25 it cost with one ``DescribeAlarms`` a calm evaluation. **Then chosen: the chain**
  (:mod:`controller.watchers.chain`): after each evaluation it saved, the sentinel sends its
  region's queue one message delayed by the rest of the interval (``DelaySeconds``) and ends;
  the queue's event source mapping invokes it again. Not billed while it waits; in its place
  six invocations a minute instead of one (requests, X-Ray traces) and SQS requests: a send, a
  receive and a delete per link, and each queue's idle long polling, five pollers at one
  receive per 20 s (``prices.toml``, ``sqs_request``): $1.09 for three queues. A lost,
  failed or late link breaks the chain until the next minute's scheduled invocation, which
  starts it again; a duplicated or late one finds the evaluations count it carries superseded
  in the watcher's item and evaluates nothing. Durable functions would need python3.13 and
  their regions, and would add $0.016 a minute of operations per region watching every 10 s.
  Measured: $9.64 (duration $0.95; X-Ray $1.94 is now the second line after
  ``DescribeAlarms``, $3.46).
- **arm64**: a fifth cheaper per GB-second (priced below, "levers not taken"). Not taken: the
  watcher's bundle carries pydantic-core, compiled, and a bundle built for arm64 carries its
  aarch64 build, which the sandbox (x86_64, no emulator of another processor) cannot run; the
  function runs what the rehearsal ran (``infra.watchers.TARGET``).
- **memory**: an invocation peaks at about 105 MB resident (measured below, in a fresh
  interpreter, a first evaluation reading every component): 128 MB leaves too little. A steady
  evaluation takes about 0.035 s of CPU, 0.3 s at 192 MB's share of a vCPU (192/1769); 256 MB
  puts the example over the goal ($10.2). Chosen: 192 MB. The price: CPU-bound work is 2.7
  times slower than at 512 MB (a failover run's CPU, about a second at a full vCPU, takes ~9 s
  instead of ~3.5 s).
- **fewer calls per evaluation**: a steady evaluation made about 16 calls, most priced at cents
  a month (SSM at standard throughput is free; DynamoDB's units are fractions of a cent), but
  3 were ``DescribeAlarms`` (one per region, $0.01 per 1,000: $10.37 of the $20.30 the
  sentinel cadence cost). A decision uses a standby's alarms only when it may choose a target:
  a calm evaluation reads the active region's alone (:mod:`controller.watchers.signals`), 14
  calls, 1 ``DescribeAlarms``: $3.46 (the baseline keeps reading every region's,
  ``Config.every_alarm``). The watcher's telemetry declared 3 metrics in 2 dimension sets, 18
  custom metrics at $0.30: cut to the 1 the dead-man alarm watches, per region
  (:mod:`controller.watchers.telemetry`).

Each region's watcher also reads every component in full once every DEEP_EVERY evaluations of
its item (the reconciler's check for drift, :data:`controller.watchers.watcher.DEEP_EVERY`): fewer
than a few minutes hold, so the minutes are measured without them and one full read is measured
apart, priced over the evaluation after it and counted once every DEEP_EVERY evaluations.

``--quick`` measures one minute per configuration, without the warm-up minute (``make test`` runs
it so that a change that breaks the bench breaks the build; its figures are coarse: they count
each watcher's first evaluation, which reads every component).

Run: ``.venv/bin/python bench/cost.py [MINUTES] [--quick]``
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest.mock
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from controller import clock
from controller.contract import (
    WATCHER_MARGIN_SECONDS,
    WATCHER_SCHEDULE,
    WatcherCadence,
)
from controller.watchers.watcher import DEEP_EVERY

REPO = Path(__file__).resolve().parent.parent
PRICES = Path(__file__).with_name("prices.toml")
EXAMPLE = REPO / "examples" / "orders" / "topology.yaml"
#: The month priced: 30 days.
MONTH_SECONDS = 30 * 24 * 3600
#: Lambda memory worth one full vCPU: a function's CPU share is its memory over this.
FULL_VCPU_MB = 1769
#: CloudWatch Logs bytes Lambda adds per invocation (its START, END and REPORT lines).
PLATFORM_LOG_BYTES = 330
#: Bytes Lambda's Python runtime adds to each line a library logs (time, request id, level).
LOG_PREFIX_BYTES = 70
#: DynamoDB's units: reads per 4 KB (strongly consistent), writes per 1 KB.
READ_UNIT_BYTES, WRITE_UNIT_BYTES = 4096, 1024
GB = 1024**3
#: The bench's k: each wall second of the handler's CPU counts ten AWS seconds, about what a
#: 192 MB function's share of a vCPU (192/1,769) makes of it.
COST_TIME_SCALE = 10.0
#: The CloudWatch API requests not billed per request: GetMetricData is billed per metric
#: requested, DescribeAlarms on a line of its own (the watchers' most frequent call); every
#: other request is one of the ``CW:Requests`` (``bench/prices.toml``).
CLOUDWATCH_APART = ("GetMetricData", "DescribeAlarms")
#: The goal, dollars per application per month (issue #27).
GOAL_DOLLARS = 10.0


@dataclass(frozen=True)
class Price:
    """One public price: its amount in USD per ``per``, when it was read and where."""

    amount: float
    per: str
    read: str
    source: str
    note: str = ""


def load_prices(path: Path = PRICES) -> dict[str, Price]:
    """The price table kept beside this bench."""
    with path.open("rb") as f:
        return {name: Price(**fields) for name, fields in tomllib.load(f).items()}


@dataclass(frozen=True)
class Config:
    """A deployment of the watchers to price: how they evaluate, and the function's size."""

    name: str
    cadence: WatcherCadence
    memory_mb: int
    architecture: str
    #: Custom metrics each region's watcher publishes, when not as measured.
    metrics_per_region: int | None = None
    #: Every evaluation reads every region's alarms (before :mod:`controller.watchers.signals`).
    every_alarm: bool = False
    #: A watcher that must evaluate again sends a delayed link to its queue and ends, instead of
    #: sleeping (:mod:`controller.watchers.chain`).
    chained: bool = False

    def sized(self, memory_mb: int, architecture: str) -> Config:
        """This configuration at another size (the function's as deployed)."""
        return replace(self, memory_mb=memory_mb, architecture=architecture)


#: The watchers before issue #27: every watcher evaluates every interval, 512 MB x86_64, reads
#: every region's alarms at every evaluation, and its telemetry declared 3 metrics (Evaluations,
#: Acted, ConsecutiveBad) in 2 dimension sets.
BASELINE = Config(
    "baseline", WatcherCadence.MINUTE, 512, "x86_64", metrics_per_region=6, every_alarm=True
)
#: The deployed cadence; its memory and architecture are read from the functions the program
#: deployed into the sandbox (:func:`deployed_size`), these until then.
DEPLOYED = Config(
    "deployed", WATCHER_SCHEDULE.cadence, WATCHER_SCHEDULE.memory_mb, "x86_64", chained=True
)
#: The chain's queue, idle: Lambda long-polls a standard queue with five concurrent batches (as
#: few as two at low traffic) until it becomes active, each receive waiting at most 20 s
#: (``bench/prices.toml``, ``sqs_request``'s note): at most this many receives a minute, per queue.
IDLE_RECEIVES_PER_MINUTE = 5 * 60 / 20


@dataclass
class Invocation:
    """What one invocation of one region's watcher did, as measured."""

    region: str
    evaluations: int = 0
    #: AWS seconds its evaluations took (the scaled clock's, sleeps not included)
    aws_seconds: float = 0.0
    #: the handler's CPU seconds (this host's)
    cpu_seconds: float = 0.0
    #: AWS seconds it slept between evaluations (counted, not slept)
    slept_seconds: float = 0.0
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    metrics_requested: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    log_bytes: int = 0
    #: The embedded-metric-format metrics it emitted: (name, dimension names).
    metrics: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)


@dataclass(frozen=True)
class Usage:
    """A month of the watchers of one application, in the units AWS bills."""

    architecture: str
    invocations: float
    gb_seconds: float
    cloudwatch_requests: float
    describe_alarms: float
    metrics_requested: float
    custom_metrics: int
    alarms: int
    log_gb: float
    read_units: float
    write_units: float
    replicated_write_units: float
    ssm_calls: float
    sqs_requests: float
    s3_requests: float
    traces: float


@dataclass(frozen=True)
class Line:
    """One line of the bill."""

    item: str
    quantity: float
    unit: str
    dollars: float


def billed_seconds(invocation: Invocation) -> float:
    """The duration Lambda bills (rounded up to the ms): the AWS seconds the invocation lived,
    sleeping and evaluating.

    >>> billed_seconds(Invocation("r", aws_seconds=3.0001, cpu_seconds=0.1, slept_seconds=50))
    53.001
    """
    return math.ceil((invocation.slept_seconds + invocation.aws_seconds) * 1000) / 1000


def usage(
    invocations: Sequence[Invocation],
    config: Config,
    *,
    minutes: int,
    regions: int,
    replicas: int,
    period: float = WATCHER_SCHEDULE.period_seconds,
) -> Usage:
    """A month of ``invocations``: they are ``minutes`` scheduled minutes of the watcher of
    each of ``regions`` regions, scaled to a month of invocations every ``period`` seconds (each
    region has its dead-man alarm); ``replicas``: the control table's replicas (a write is
    replicated to the others)."""
    scale = MONTH_SECONDS / period / minutes

    def total(what: str) -> float:
        return scale * sum(
            n for i in invocations for op, n in i.calls.items() if op.startswith(what)
        )

    writes = scale * sum(i.write_units for i in invocations)
    return Usage(
        architecture=config.architecture,
        invocations=scale * len(invocations),
        gb_seconds=scale * sum(billed_seconds(i) for i in invocations) * config.memory_mb / 1024,
        cloudwatch_requests=total("cloudwatch.")
        - sum(total(f"cloudwatch.{op}") for op in CLOUDWATCH_APART),
        describe_alarms=total("cloudwatch.DescribeAlarms"),
        metrics_requested=scale * sum(i.metrics_requested for i in invocations),
        custom_metrics=len({(i.region, m) for i in invocations for m in i.metrics})
        if config.metrics_per_region is None
        else config.metrics_per_region * regions,
        alarms=regions,
        log_gb=scale * sum(i.log_bytes + PLATFORM_LOG_BYTES for i in invocations) / GB,
        read_units=scale * sum(i.read_units for i in invocations),
        write_units=writes,
        replicated_write_units=writes * max(0, replicas - 1),
        ssm_calls=total("ssm."),
        # each region's chain queue is polled all month, whatever it carries
        sqs_requests=total("sqs.")
        + (IDLE_RECEIVES_PER_MINUTE * MONTH_SECONDS / 60 * regions if config.chained else 0.0),
        s3_requests=total("s3."),
        traces=scale * len(invocations),
    )


def bill(
    u: Usage, prices: Mapping[str, Price], *, ssm_higher_throughput: bool = False
) -> list[Line]:
    """Dollars a month, line by line: each quantity of ``u`` times its price."""
    arch = "arm64" if u.architecture == "arm64" else "x86"
    ssm = "ssm_api_higher_throughput" if ssm_higher_throughput else "ssm_api_standard"
    replicated = "dynamodb_replicated_write_unit"
    rows = [
        ("Lambda duration", u.gb_seconds, "GB-s", f"lambda_gb_second_{arch}"),
        ("Lambda requests", u.invocations, "requests", "lambda_request"),
        ("X-Ray traces", u.traces, "traces", "xray_trace"),
        ("CloudWatch custom metrics", u.custom_metrics, "metrics", "cloudwatch_custom_metric"),
        ("CloudWatch alarms", u.alarms, "alarms", "cloudwatch_alarm_standard"),
        ("CloudWatch API requests", u.cloudwatch_requests, "requests", "cloudwatch_api_request"),
        ("CloudWatch DescribeAlarms", u.describe_alarms, "requests", "cloudwatch_describe_alarms"),
        ("CloudWatch GetMetricData", u.metrics_requested, "metrics", "cloudwatch_get_metric_data"),
        ("CloudWatch Logs ingested", u.log_gb, "GB", "cloudwatch_logs_ingest_gb"),
        ("DynamoDB reads (control table)", u.read_units, "RRU", "dynamodb_read_unit"),
        ("DynamoDB writes (control table)", u.write_units, "WRU", "dynamodb_write_unit"),
        ("DynamoDB replicated writes", u.replicated_write_units, "rWRU", replicated),
        ("SSM Parameter Store API", u.ssm_calls, "calls", ssm),
        ("SQS requests", u.sqs_requests, "requests", "sqs_request"),
        ("S3 requests", u.s3_requests, "requests", "s3_get_request"),
    ]  # fmt: skip
    return [Line(item, q, unit, q * prices[key].amount) for item, q, unit, key in rows]


# -- measuring ----------------------------------------------------------------------------------


def item_bytes(value: Any) -> int:
    """The size DynamoDB bills an attribute value (or an item: names and values) at, roughly.

    >>> item_bytes({"pk": {"S": "watcher"}, "n": {"N": "12"}})
    13
    """
    if isinstance(value, dict) and len(value) == 1:
        ((kind, inner),) = value.items()
        if kind in ("S", "B"):
            return len(inner.encode() if isinstance(inner, str) else inner)
        if kind == "N":
            return len(str(inner).lstrip("-").replace(".", "")) // 2 + 1
        if kind in ("BOOL", "NULL"):
            return 1
        if kind in ("M", "L"):
            return 3 + item_bytes(inner)
    if isinstance(value, dict):
        return sum(len(k) + item_bytes(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(item_bytes(v) + 1 for v in value)
    return 0


class Meter:
    """Counts what the watcher's clients send (botocore hooks) into the current invocation."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.current = Invocation("")

    def hooks(self) -> list[tuple[str, Any]]:
        return [
            ("before-parameter-build", self.params),
            ("before-call", self.count),
            ("after-call", self.after),
        ]

    def count(self, event_name: str, **_: Any) -> None:
        self.current.calls[event_name.split(".", 1)[1]] += 1

    def params(
        self, event_name: str, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        op = event_name.split(".", 1)[1]
        if op == "cloudwatch.GetMetricData":
            self.current.metrics_requested += len(params.get("MetricDataQueries", ()))
        batch = (params.get("RequestItems") or {}).get(self.table)
        if op == "dynamodb.BatchGetItem" and batch:
            context["cost_consistent"] = bool(batch.get("ConsistentRead"))
            context["cost_keys"] = len(batch.get("Keys", ()))
        if op.startswith("dynamodb.") and params.get("TableName") == self.table:
            context["cost_consistent"] = bool(params.get("ConsistentRead"))
            if op in ("dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.DeleteItem"):
                size = item_bytes(params.get("Item") or params.get("Key") or {})
                self.current.write_units += max(1, math.ceil(size / WRITE_UNIT_BYTES))

    def after(
        self, event_name: str, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if "cost_consistent" not in context:
            return
        items = parsed.get("Items") or ([parsed["Item"]] if parsed.get("Item") else [])
        if event_name.endswith((".GetItem", ".Query", ".Scan")):
            units = max(1, math.ceil(sum(item_bytes(i) for i in items) / READ_UNIT_BYTES))
        elif event_name.endswith(".BatchGetItem"):
            # Each item billed apart (at least one unit); a key not found, one unit too.
            found = parsed.get("Responses", {}).get(self.table, [])
            units = sum(max(1, math.ceil(item_bytes(i) / READ_UNIT_BYTES)) for i in found)
            left = parsed.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
            units += max(0, context.get("cost_keys", 0) - len(found) - len(left))
        else:
            return  # a write: billed by its request (params)
        self.current.read_units += units * (1.0 if context["cost_consistent"] else 0.5)


class LogBytes(logging.Handler):
    """Counts the bytes the handler's library logging would send to CloudWatch Logs (the
    runtime's default level, WARNING)."""

    def __init__(self, meter: Meter) -> None:
        super().__init__(logging.WARNING)
        self.meter = meter

    def emit(self, record: logging.LogRecord) -> None:
        self.meter.current.log_bytes += len(self.format(record)) + LOG_PREFIX_BYTES


class Context:
    """Lambda's context for one invocation whose sleeps are counted, not slept: its remaining
    time in AWS seconds, as Lambda's (the scaled clock's, less the sleeps counted)."""

    def __init__(self, seconds: float) -> None:
        self.aws_request_id = uuid.uuid4().hex[:12]
        self.deadline = clock.monotonic() + seconds
        self.slept = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - clock.monotonic() - self.slept) * 1000))

    def sleep(self, seconds: float) -> None:
        self.slept += seconds


@dataclass
class Measured:
    """The invocations of the scheduled minutes measured, and of one full read apart."""

    minutes: list[Invocation]
    #: One calm region's invocation whose evaluation was its full read of every component (the
    #: reconciler's, every DEEP_EVERY evaluations), and the one after it, which was not.
    full_read: tuple[Invocation, Invocation]


def measure(box: Any, config: Config, minutes: int, warm_up: bool = True) -> Measured:
    """``minutes`` scheduled minutes of every region's watcher under ``config``'s cadence, after
    one minute of warm-up (a fresh stack's first evaluation reads every component; without
    ``warm_up``, that minute is measured), with no full read of every component in them (they
    come every DEEP_EVERY evaluations of a region's watcher, fewer than a few minutes hold:
    priced apart, :func:`full_reads`); then one full read and the invocation after it."""
    import json

    from controller.aws import Clients
    from controller.controltable.table import ControlTable
    from controller.controltable.watchstate import WatchStates
    from controller.watchers import chain, lambda_entry, signals
    from controller.watchers import watcher as watchers

    topology, manifest = box.topology, box.manifest
    meter = Meter(manifest.control.table)
    counter = LogBytes(meter)
    logging.getLogger().addHandler(counter)
    interval = topology.policy.watch_interval_seconds
    out: list[Invocation] = []
    every = contextlib.ExitStack()
    if config.every_alarm:
        every.enter_context(
            unittest.mock.patch.object(
                signals, "alarm_regions", lambda t, active, **_: frozenset(t.regions.all)
            )
        )

    def one(region: str, link: Any = None) -> tuple[Invocation, Any]:
        """One invocation of ``region``'s watcher (``link``: by its chain's link), measured;
        the link it sent (after, delay), or None."""
        meter.current = inv = Invocation(region)
        context = Context(WATCHER_SCHEDULE.period_seconds + interval + WATCHER_MARGIN_SECONDS)
        lines: list[str] = []
        sent: list[tuple[int, float]] = []

        def send(after: int, delay: float) -> None:
            # the link's message: sent, then received and deleted by the mapping
            sent.append((after, float(chain.delay_seconds(delay))))
            inv.calls.update(["sqs.SendMessage", "sqs.ReceiveMessage", "sqs.DeleteMessage"])

        clients = Clients(endpoints=manifest.endpoints, hooks=meter.hooks(), home=region)
        began, cpu = clock.monotonic(), time.process_time()
        summary = lambda_entry.watch(
            region,
            context,
            deployment=lambda_entry.Deployment(topology, manifest, clients),
            sleep=context.sleep,
            emit=lines.append,
            cadence=config.cadence,
            link=link,
            send=send if config.chained else None,
        )
        inv.aws_seconds = clock.monotonic() - began
        inv.cpu_seconds = time.process_time() - cpu
        inv.slept_seconds = context.slept
        inv.evaluations = int(summary["evaluations"])
        inv.log_bytes += sum(len(line) + 1 for line in lines)
        for line in lines:
            record = json.loads(line)
            for spec in record.get("_aws", {}).get("CloudWatchMetrics", ()):
                inv.metrics |= {
                    (m["Name"], tuple(d)) for m in spec["Metrics"] for d in spec["Dimensions"]
                }
        return inv, sent[-1] if sent else None

    # The chains that run, by region: the count their pending link carries. The bench counts
    # the links' delays rather than waiting them, so the schedule's invocation is told whether
    # its region's chain runs (on AWS it reads how long ago the chain's last link evaluated).
    running: dict[str, int] = {}
    every.enter_context(unittest.mock.patch.object(watchers, "DEEP_EVERY", 10**9))
    try:
        for minute in range(minutes + warm_up):
            for region in topology.regions.all:
                with unittest.mock.patch.object(
                    chain, "running", lambda updated, within, r=region: r in running
                ):
                    inv, sent = one(region)
                measured = [inv]
                if region in running:  # the chain goes on: its next link is on its way
                    sent = (running.pop(region), 0.0)
                elapsed = inv.aws_seconds + (sent[1] if sent else 0.0)
                while sent is not None and elapsed < WATCHER_SCHEDULE.period_seconds:
                    inv, sent = one(region, chain.Link(region, sent[0]))
                    measured.append(inv)
                    elapsed += inv.aws_seconds + (sent[1] if sent else 0.0)
                if sent is not None:
                    running[region] = sent[0]
                if minute or not warm_up:  # the first minute warms up
                    out.extend(measured)
        every.close()
        # a calm region's watcher at its DEEP_EVERY-th evaluation, then at the one after it
        region = topology.regions.standby[-1]
        states = WatchStates(ControlTable(Clients(endpoints=manifest.endpoints), manifest))
        seen = states.read(region)
        due = (seen.evaluations // watchers.DEEP_EVERY + 1) * watchers.DEEP_EVERY - 1
        states.write(replace(seen, evaluations=due))
        with unittest.mock.patch.object(chain, "running", lambda updated, within: False):
            full, light = one(region)[0], one(region)[0]
    finally:
        every.close()
        logging.getLogger().removeHandler(counter)
    return Measured(out, (full, light))


def full_reads(
    measured: Measured, config: Config, prices: Mapping[str, Price], **shape: int
) -> tuple[float, float]:
    """The full reads of a month (one every DEEP_EVERY evaluations of each region's watcher, at
    the measured minutes' evaluations) and what they add to the bill: each one's cost over the
    evaluation after it, which read the modes only."""
    evaluations = sum(i.evaluations for i in measured.minutes) / shape["minutes"]
    a_month = evaluations / DEEP_EVERY * MONTH_SECONDS / 60
    full, light = measured.full_read

    def once_a_minute(invocation: Invocation) -> float:
        one = {**shape, "minutes": 1}
        return sum(line.dollars for line in bill(usage([invocation], config, **one), prices))

    return a_month, (once_a_minute(full) - once_a_minute(light)) * a_month / (MONTH_SECONDS / 60)


#: One invocation of a watcher in a fresh interpreter (the sandbox reset: its first evaluation
#: reads every component, as a fresh stack's does); prints its peak resident memory in kB.
RESIDENT = """
import sys, time
from controller.aws import Clients
from controller.contract import WatcherCadence
from controller.topology import load
from controller.topology.manifest import load_manifest
from controller.watchers import lambda_entry
manifest, topology, region = load_manifest(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
class Context:
    aws_request_id, left = "resident", 70.0
    def get_remaining_time_in_millis(self): return int(self.left * 1000)
    def sleep(self, s): self.left -= s
context = Context()
clients = Clients(endpoints=manifest.endpoints, home=region)
lambda_entry.watch(region, context, sleep=context.sleep, emit=lambda line: None,
    deployment=lambda_entry.Deployment(topology, manifest, clients),
    cadence=WatcherCadence.MINUTE)
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def resident_mb(box: Any) -> float:
    """A watcher invocation's peak resident memory (MB), in a fresh interpreter."""
    from sandbox.state import MANIFEST_FILE

    region = box.topology.regions.standby[0]
    done = subprocess.run(
        [sys.executable, "-c", RESIDENT, str(box.state_dir / MANIFEST_FILE), str(EXAMPLE), region],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return int(done.stdout.split()[-1]) / 1024


# -- printing -----------------------------------------------------------------------------------


def per_evaluation(invocations: Sequence[Invocation]) -> str:
    evaluations = sum(i.evaluations for i in invocations) or 1
    calls: collections.Counter[str] = collections.Counter()
    for i in invocations:
        calls.update(i.calls)
    top = ", ".join(f"{op} {n / evaluations:.1f}" for op, n in calls.most_common(6))
    cpu = sum(i.cpu_seconds for i in invocations) / evaluations
    return (
        f"{sum(calls.values()) / evaluations:.1f} calls ({top}); "
        f"{sum(i.read_units for i in invocations) / evaluations:.1f} RRU, "
        f"{sum(i.write_units for i in invocations) / evaluations:.1f} WRU; "
        f"{sum(i.log_bytes for i in invocations) / evaluations:.0f} log bytes; "
        f"CPU {cpu:.3f} s, "
        f"{sum(i.aws_seconds for i in invocations) / evaluations:.2f} AWS s"
    )


def levers(
    baseline: Sequence[Invocation],
    deployed: Sequence[Invocation],
    size: Config,
    prices: Mapping[str, Price],
    **shape: int,
) -> None:
    """The levers not taken, priced from the measured invocations: every watcher every interval
    at the deployed ``size``; Lambda durable functions (waits not billed; a step and a wait per
    evaluation); arm64; the active region's own watcher alive all its minute (its cut-off check
    every interval, :mod:`controller.watchers.isolation`)."""
    deployed_total = sum(line.dollars for line in bill(usage(deployed, size, **shape), prices))
    other = "arm64" if size.architecture != "arm64" else "x86_64"
    arm = sum(
        line.dollars
        for line in bill(usage(deployed, size.sized(size.memory_mb, other), **shape), prices)
    )
    # the calm regions: one invocation a minute, one evaluation (the sentinel's chain has more)
    per_region = collections.Counter(i.region for i in deployed)
    calm = [i for i in deployed if per_region[i.region] == shape["minutes"] and i.evaluations == 1]
    own_minute = sum(
        max(0.0, WATCHER_SCHEDULE.period_seconds - billed_seconds(i)) for i in calm
    ) / max(1, len({i.region for i in calm}))
    scale = MONTH_SECONDS / WATCHER_SCHEDULE.period_seconds / shape["minutes"]
    arch = "arm64" if size.architecture == "arm64" else "x86"
    awake_own = own_minute * scale * size.memory_mb / 1024
    awake_own *= prices[f"lambda_gb_second_{arch}"].amount
    sized = replace(size, cadence=WatcherCadence.MINUTE, metrics_per_region=1)
    minute = sum(line.dollars for line in bill(usage(baseline, sized, **shape), prices))
    awake = [replace(i, slept_seconds=0.0) for i in baseline]
    durable = sum(line.dollars for line in bill(usage(awake, sized, **shape), prices))
    scale = MONTH_SECONDS / WATCHER_SCHEDULE.period_seconds / shape["minutes"]
    operations = 2 * scale * sum(i.evaluations for i in baseline)
    durable += operations * prices["lambda_durable_operation"].amount
    print(
        f"levers not taken: every watcher every interval at {sized.memory_mb} MB "
        f"{sized.architecture}: ${minute:.2f}; durable functions (no billed wait, "
        f"{operations:,.0f} operations at ${prices['lambda_durable_operation'].amount * 1e6:.2f} "
        f"per million): ${durable:.2f}; the deployed cadence on {other}: ${arm:.2f} "
        f"({'-' if arm < deployed_total else '+'}${abs(arm - deployed_total):.2f}); "
        f"the active region's watcher alive its whole minute "
        f"(its cut-off check every interval, the two-writer window kept at 60 s): "
        f"${deployed_total + awake_own:.2f} (+${awake_own:.2f}); each without the full reads"
    )


def deployed_size(box: Any) -> tuple[int, str]:
    """The memory and architecture of the watcher functions the program deployed (the first
    region's; the program gives every region the same)."""
    from controller.aws import Clients

    region = box.topology.regions.all[0]
    got = (
        Clients(endpoints=box.manifest.endpoints)
        .client("lambda", region)
        .get_function_configuration(FunctionName=box.topology.watcher_function(region))
    )
    return int(got["MemorySize"]), str((got.get("Architectures") or ["x86_64"])[0])


def main(minutes: int = 5, time_scale: float = COST_TIME_SCALE, warm_up: bool = True) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    from sandbox import Sandbox

    prices = load_prices()
    measured: dict[str, Measured] = {}
    configs = {BASELINE.name: BASELINE}
    with tempfile.TemporaryDirectory() as tmp:
        box = Sandbox.up(EXAMPLE, Path(tmp) / ".failover", time_scale=time_scale)
        try:
            rss = resident_mb(box)
            configs[DEPLOYED.name] = DEPLOYED.sized(*deployed_size(box))
            for config in configs.values():
                box.reset()
                measured[config.name] = measure(box, config, minutes, warm_up)
            regions = len(box.topology.regions.all)
            replicas = len(box.topology.control_regions.replicas)
        finally:
            box.down()
    bills, reads = {}, {}
    shape = {"minutes": minutes, "regions": regions, "replicas": replicas}
    for config in configs.values():
        invs = measured[config.name].minutes
        u = usage(invs, config, **shape)
        bills[config.name] = bill(u, prices)
        reads[config.name] = full_reads(measured[config.name], config, prices, **shape)
        by_region = collections.defaultdict(list)
        for i in invs:
            by_region[i.region].append(i.evaluations)
        print(
            f"{config.name}: {config.cadence} cadence, {config.memory_mb} MB "
            f"{config.architecture}; evaluations per invocation: "
            + ", ".join(f"{r} {sum(n) / len(n):.1f}" for r, n in by_region.items())
        )
        print(f"  per evaluation: {per_evaluation(invs)}")
        print(f"  invocations a month: {u.invocations:,.0f}; GB-s: {u.gb_seconds:,.0f}")
        full, light = measured[config.name].full_read
        print(
            f"  a full read of every component (every {DEEP_EVERY} evaluations): "
            f"{sum(full.calls.values())} calls, {full.aws_seconds:.2f} AWS s; the evaluation "
            f"after it {sum(light.calls.values())} calls, {light.aws_seconds:.2f} AWS s"
        )
    dates = sorted({p.read for p in prices.values()})
    print(
        f"\nthe watchers of {EXAMPLE.relative_to(REPO)} ({regions} regions), a 30-day month, "
        f"prices read {', '.join(dates)} ({PRICES.relative_to(REPO)}); measured {minutes} "
        f"minute(s) per configuration at k = {time_scale:g} (AWS seconds priced); a watcher "
        f"invocation's peak resident memory: {rss:.0f} MB"
    )
    print(f"{'line':34} {'baseline':>22} {'deployed':>22}")
    for old, new in zip(bills["baseline"], bills["deployed"], strict=True):
        print(
            f"{old.item:34} {old.quantity:>12,.1f} ${old.dollars:>8.2f} "
            f"{new.quantity:>12,.1f} ${new.dollars:>8.2f}  ({old.unit})"
        )
    (old_n, old_d), (new_n, new_d) = reads["baseline"], reads["deployed"]
    print(
        f"{'Full reads (reconciler)':34} {old_n:>12,.1f} ${old_d:>8.2f} "
        f"{new_n:>12,.1f} ${new_d:>8.2f}  (reads, over the evaluation after each)"
    )
    before = sum(line.dollars for line in bills["baseline"]) + old_d
    after = sum(line.dollars for line in bills["deployed"]) + new_d
    print(f"{'total a month':34} {'':>12} ${before:>8.2f} {'':>12} ${after:>8.2f}")
    levers(
        measured["baseline"].minutes,
        measured["deployed"].minutes,
        configs["deployed"],
        prices,
        **shape,
    )
    print(
        f"ratio deployed/baseline: {after / before:.3f}; goal at most ${GOAL_DOLLARS:.2f}: "
        f"{'met' if after <= GOAL_DOLLARS else 'NOT met'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("minutes", nargs="?", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="one minute per configuration, no warm-up"
    )
    parser.add_argument(
        "--time-scale", type=float, default=COST_TIME_SCALE, help="AWS seconds per wall second"
    )
    ns = parser.parse_args()
    main(1 if ns.quick else ns.minutes, ns.time_scale, warm_up=not ns.quick)
