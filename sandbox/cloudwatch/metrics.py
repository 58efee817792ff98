"""What the data plane emits, where AWS emits it: into the region's own CloudWatch.

Used by the data plane (:mod:`sandbox.dataplane`) and each region's watcher process
(:mod:`sandbox.watchers`): :class:`LambdaMetrics` observes the one invoke path
(:mod:`sandbox.lambda_.invoke`) and records, per function and region, what Lambda records
(``AWS/Lambda``: ``Invocations``, ``Errors``, ``Throttles``, ``Duration``,
``ConcurrentExecutions``, by ``FunctionName`` and by ``FunctionName`` and ``Resource`` for an
alias); :class:`LogMetrics` extracts what a function logs in the embedded metric format, as
CloudWatch Logs does (the watchers' ``Failover/Watchers`` metrics, which their dead-man alarms
read); :meth:`Metrics.add` takes any other (the API's ``5xx``, a queue's depth, a table's
replication latency). A :class:`Metrics` sends what it gathered once a second per region, as
statistic sets through ``PutMetricData`` of that region's server: what a hung or killed region
would have received is lost, as it is on AWS when a region is out.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import clock
from sandbox.lambda_.invoke import Invocation, Outcome

log = logging.getLogger(__name__)

#: Seconds between two sends.
FLUSH_EVERY = 1.0
#: PutMetricData takes at most this many entries a call.
BATCH = 1000

Key = tuple[str, str, str, tuple[tuple[str, str], ...], str]  # region, ns, name, dims, unit


@dataclass
class _Stats:
    sum: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    count: float = 0.0

    def add(self, value: float) -> None:
        self.sum += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.count += 1


@dataclass
class Metrics:
    """Gathers datapoints and sends them to each region's CloudWatch; :meth:`start` it and
    :meth:`stop` it (which sends what is left). ``client(region)`` makes the region's
    CloudWatch client; ``now`` stamps each datapoint."""

    client: Callable[[str], Any]
    now: Callable[[], float] = clock.now
    _pending: dict[tuple[Key, int], _Stats] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def add(
        self,
        region: str,
        namespace: str,
        name: str,
        dimensions: dict[str, str],
        value: float,
        unit: str = "Count",
        at: float | None = None,
    ) -> None:
        """Record one value of a metric, stamped ``at`` (default: now)."""
        key: Key = (region, namespace, name, tuple(sorted(dimensions.items())), unit)
        second = int(self.now() if at is None else at)
        with self._lock:
            self._pending.setdefault((key, second), _Stats()).add(value)

    def flush(self) -> int:
        """Send what was gathered, a call per region and namespace; the entries sent (what a
        region does not take is dropped and logged)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        calls: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for ((region, namespace, name, dims, unit), second), stats in pending.items():
            calls.setdefault((region, namespace), []).append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                    "Timestamp": float(second),
                    "StatisticValues": {
                        "SampleCount": stats.count,
                        "Sum": stats.sum,
                        "Minimum": stats.minimum,
                        "Maximum": stats.maximum,
                    },
                    "Unit": unit,
                }
            )
        sent = 0
        for (region, namespace), data in calls.items():
            for i in range(0, len(data), BATCH):
                try:
                    self.client(region).put_metric_data(
                        Namespace=namespace, MetricData=data[i : i + BATCH]
                    )
                    sent += len(data[i : i + BATCH])
                except Exception as exc:  # the region is out: its metrics are lost with it
                    log.info("metrics for %s (%s) lost: %s", region, namespace, exc)
        return sent

    def start(self) -> None:
        """Send every :data:`FLUSH_EVERY` seconds in a daemon thread."""

        def run() -> None:
            while not self._stop.wait(FLUSH_EVERY):
                self.flush()

        self._thread = threading.Thread(target=run, name="metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending, after one last send."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        self.flush()


@dataclass
class LambdaMetrics:
    """An observer of the invoke path: Lambda's own metrics of each invocation."""

    metrics: Metrics

    def __call__(self, done: Invocation) -> None:
        """Record ``done`` as Lambda does: a throttle is only a throttle; anything that ran is
        an invocation with its duration, an error when it failed or timed out."""
        for dims in self.dimensions(done):
            add = self._adder(done.region, dims)
            if done.outcome is Outcome.THROTTLED:
                add("Throttles", 1.0, "Count")
                continue
            add("Invocations", 1.0, "Count")
            add("Errors", 0.0 if done.ok else 1.0, "Count")
            add("Duration", done.duration * 1000.0, "Milliseconds")
            add("ConcurrentExecutions", float(done.concurrent), "Count")

    @staticmethod
    def dimensions(done: Invocation) -> list[dict[str, str]]:
        """The dimension sets Lambda records an invocation under: the function, and the
        function with the alias it was invoked through."""
        out = [{"FunctionName": done.function}]
        if done.qualifier not in ("$LATEST", ""):
            out.append(
                {"FunctionName": done.function, "Resource": f"{done.function}:{done.qualifier}"}
            )
        return out

    def _adder(self, region: str, dims: dict[str, str]) -> Callable[[str, float, str], None]:
        def add(name: str, value: float, unit: str) -> None:
            self.metrics.add(region, "AWS/Lambda", name, dims, value, unit)

        return add


Emitted = tuple[str, str, dict[str, str], float, str, float]  # ns, name, dims, value, unit, at


def embedded(line: str) -> list[Emitted]:
    """The metrics one log line carries in CloudWatch's embedded metric format (none when it
    is not such a record): a value per metric per dimension set, at the record's timestamp.

    >>> emf = {"Namespace": "N", "Dimensions": [["App"], ["App", "Region"]],
    ...        "Metrics": [{"Name": "E", "Unit": "Count"}]}
    >>> line = json.dumps({"_aws": {"Timestamp": 60000, "CloudWatchMetrics": [emf]},
    ...     "App": "a", "Region": "r", "E": 1})
    >>> [(m[1], m[2], m[3], m[5]) for m in embedded(line)]
    [('E', {'App': 'a'}, 1.0, 60.0), ('E', {'App': 'a', 'Region': 'r'}, 1.0, 60.0)]
    >>> embedded("evaluation done"), embedded('{"message": "evaluation"}')
    ([], [])
    """
    try:
        record = json.loads(line)
        meta = record["_aws"]
        at = float(meta["Timestamp"]) / 1000.0
        out: list[Emitted] = []
        for directive in meta["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = float(record[metric["Name"]])
                for names in directive["Dimensions"]:
                    dims = {n: str(record[n]) for n in names}
                    out.append(
                        (directive["Namespace"], metric["Name"], dims, value,
                         str(metric.get("Unit", "None")), at)
                    )  # fmt: skip
        return out
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


@dataclass
class LogMetrics:
    """An observer of the invoke path that reads what a function wrote to its log file since
    the last look (since it was made, at first) and records its embedded-metric-format
    records, in the invocation's region."""

    metrics: Metrics
    files: dict[str, Path]  # function name -> its log file
    _offsets: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for function, path in self.files.items():
            try:
                self._offsets[function] = path.stat().st_size
            except OSError:
                self._offsets[function] = 0

    def __call__(self, done: Invocation) -> None:
        """Extract the metrics ``done``'s function logged since the last look."""
        path = self.files.get(done.function)
        if path is None:
            return
        with self._lock:
            try:
                with path.open("rb") as log_file:
                    log_file.seek(self._offsets.get(done.function, 0))
                    data = log_file.read()
            except OSError:
                return
            complete = data[: data.rfind(b"\n") + 1]
            self._offsets[done.function] = self._offsets.get(done.function, 0) + len(complete)
        for line in complete.decode("utf-8", "replace").splitlines():
            for namespace, name, dims, value, unit, at in embedded(line):
                self.metrics.add(done.region, namespace, name, dims, value, unit, at)
