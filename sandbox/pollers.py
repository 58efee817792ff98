"""Pollers: Lambda's event source mappings and EventBridge's schedules, as deployed.

Called by the data plane. For every event source mapping the manifest names, in every region, a
poller reads the mapping back from the emulator (its function's alias, its source, batch size,
starting position, whether the function reports partial batch failures, its retries and its
on-failure destination) and polls the source as Lambda does, but only while the mapping is
enabled and its function is not fenced (reserved concurrency 0): a fenced region consumes nothing.

- a queue: a batch is received; the messages the function did not report as failed are deleted
  (all of them when it does not report failures and returned); a batch whose invocation failed
  goes back to the queue when its visibility ends;
- a table's stream or a Kinesis stream: each shard is read from the mapping's starting position
  and its place is kept while the mapping is disabled; a batch whose invocation fails is retried
  up to the mapping's retries, then described on its on-failure queue and passed.

Each schedule component's rule is read back too (its state, its targets): while it is enabled,
its targets are invoked at the rule's rate on the sandbox's clock (:mod:`controller.clock`), or
every ``schedule_every`` AWS seconds when given; a ``cron`` rule is not played (the sandbox's
day is not AWS's calendar). Every invocation goes through the one invoke path
(:mod:`sandbox.lambda_.invoke`).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller import clock
from controller.aws import Clients
from controller.topology import Kind, Topology
from controller.topology.manifest import Manifest
from sandbox.lambda_.invoke import Invocation, Invoker
from sandbox.watchers import period

log = logging.getLogger(__name__)

ON_STATES = ("Enabled", "Enabling", "Updating")
SWITCH_MAX_AGE = 1.0


@dataclass(frozen=True)
class Mapping:
    """One deployed event source mapping, as the emulator holds it."""

    uuid: str
    region: str
    function: str  # the ARN it invokes (the function's alias)
    source: str  # the queue's, the table stream's or the Kinesis stream's ARN
    batch_size: int
    starting_position: str
    reports_failures: bool
    retries: int
    on_failure: str | None

    @property
    def service(self) -> str:
        """``sqs``, ``dynamodb`` or ``kinesis``: what it polls."""
        return self.source.split(":")[2]

    @classmethod
    def read(cls, clients: Clients, region: str, uuid: str) -> Mapping:
        """The mapping ``uuid`` of ``region``, read back."""
        got = clients.client("lambda", region).get_event_source_mapping(UUID=uuid)
        retries = got.get("MaximumRetryAttempts")
        return cls(
            uuid=uuid,
            region=region,
            function=str(got["FunctionArn"]),
            source=str(got["EventSourceArn"]),
            batch_size=int(got.get("BatchSize") or 10),
            starting_position=str(got.get("StartingPosition") or "LATEST"),
            reports_failures="ReportBatchItemFailures" in (got.get("FunctionResponseTypes") or []),
            retries=-1 if retries is None else int(retries),
            on_failure=(got.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination"),
        )


@dataclass
class Pollers:
    """Every deployed mapping and schedule of every region, each polled on its own thread."""

    topology: Topology
    manifest: Manifest
    clients: Clients
    invoker: Invoker
    poll: float = 0.5
    schedule_every: float | None = None
    invocations: dict[tuple[str, str], int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Read every mapping back and start a poller per mapping and per (schedule, region)."""
        for region in self.topology.regions.all:
            for name, _ in self.topology.of_kind(Kind.FUNCTION):
                for uuid in self.manifest.ref(name, region).mappings:
                    mapping = Mapping.read(self.clients, region, uuid)
                    self._spawn(self._source_loop, region, mapping.uuid, mapping)
            for name, _ in self.topology.of_kind(Kind.SCHEDULE):
                self._spawn(self._schedule_loop, region, name)

    def stop(self) -> None:
        """Stop every poller."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(
            target=target, args=args, daemon=True, name=f"poll-{args[0]}-{args[1]}"
        )
        thread.start()
        self._threads.append(thread)

    # -- switches ----------------------------------------------------------------------------

    def consuming(self, mapping: Mapping) -> Switch:
        """Whether ``mapping`` is enabled and its function not fenced (reserved concurrency
        0), as a :class:`Switch`."""

        def read() -> bool:
            lam = self.clients.client("lambda", mapping.region)
            if not enabled(lam, mapping.uuid):
                return False
            got = lam.get_function_concurrency(FunctionName=mapping.function.split(":")[6])
            return got.get("ReservedConcurrentExecutions") != 0

        return Switch(read)

    def _wait(self) -> bool:
        return not self._stop.wait(self.poll)

    # -- sources -----------------------------------------------------------------------------

    def _source_loop(self, region: str, uuid: str, mapping: Mapping) -> None:
        shards: dict[str, str | None] = {}  # a stream's place in each shard, kept while paused
        queue, consuming = QueueUrl(self.clients, mapping), self.consuming(mapping)
        call = functools.partial(self._call, mapping, source="sqs")
        while self._wait():
            try:
                if not consuming():
                    continue
                if mapping.service == "sqs":
                    drain_queue(self.clients, mapping, call, queue.get())
                else:
                    self._read_stream(mapping, shards)
            except Exception as exc:  # a failed region: keep trying, as Lambda's pollers do
                log.debug("poller %s in %s: %s", uuid, region, exc)

    def _read_stream(self, mapping: Mapping, shards: dict[str, str | None]) -> None:
        client: Any
        if mapping.service == "kinesis":
            client = self.clients.client("kinesis", mapping.region)
            listed = client.list_shards(StreamARN=mapping.source)["Shards"]
        else:
            client = self.clients.client("dynamodbstreams", mapping.region)
            listed = client.describe_stream(StreamArn=mapping.source)["StreamDescription"]["Shards"]
        for shard in listed:
            ident = shard["ShardId"]
            if shards.get(ident) is None:
                shards[ident] = self._iterator(client, mapping, ident)
            shards[ident] = self._read_shard(client, mapping, shards[ident])

    def _iterator(self, client: Any, mapping: Mapping, shard: str) -> str:
        where = mapping.starting_position
        if mapping.service == "kinesis":
            return str(
                client.get_shard_iterator(
                    StreamARN=mapping.source, ShardId=shard, ShardIteratorType=where
                )["ShardIterator"]
            )
        return str(
            client.get_shard_iterator(
                StreamArn=mapping.source, ShardId=shard, ShardIteratorType=where
            )["ShardIterator"]
        )

    def _read_shard(self, client: Any, mapping: Mapping, iterator: str | None) -> str | None:
        if iterator is None:
            return None
        if mapping.service == "kinesis":
            got = client.get_records(ShardIterator=iterator, Limit=mapping.batch_size)
            records = [_kinesis_record(r, mapping) for r in got.get("Records", [])]
        else:
            got = client.get_records(ShardIterator=iterator, Limit=mapping.batch_size)
            records = [
                {
                    **r,
                    "eventSource": "aws:dynamodb",
                    "awsRegion": mapping.region,
                    "eventSourceARN": mapping.source,
                }
                for r in got.get("Records", [])
            ]
        if records:
            self._deliver(mapping, {"Records": records})
        return str(got.get("NextShardIterator") or iterator)

    def _deliver(self, mapping: Mapping, event: dict[str, Any]) -> None:
        """Invoke with a stream batch; retried as the mapping says, then sent to its
        on-failure queue and passed (a poison batch does not stop the shard)."""
        attempts = 0
        while True:
            done = self._call(mapping, event, mapping.service)
            if done.ok or self._stop.is_set():
                return
            attempts += 1
            if 0 <= mapping.retries < attempts:
                break
            self._stop.wait(self.poll)
        if mapping.on_failure:
            self.clients.client("sqs", mapping.region).send_message(
                QueueUrl=self.clients.client("sqs", mapping.region).get_queue_url(
                    QueueName=mapping.on_failure.rsplit(":", 1)[-1]
                )["QueueUrl"],
                MessageBody=json.dumps(
                    {
                        "requestContext": {
                            "functionArn": mapping.function,
                            "condition": "RetryAttemptsExhausted",
                            "approximateInvokeCount": attempts,
                        },
                        "responseContext": {"functionError": done.error_type},
                        "records": len(event["Records"]),
                        "source": mapping.source,
                    }
                ),
            )

    def _schedule_loop(self, region: str, schedule: str) -> None:
        last = clock.monotonic()
        rule = self.manifest.ref(schedule, region).name
        targets: list[str] = []
        every = self.schedule_every
        while self._wait():
            try:
                events = self.clients.client("events", region)
                if every is None:
                    expression = str(events.describe_rule(Name=rule).get("ScheduleExpression", ""))
                    if not expression.startswith("rate("):
                        log.info("schedule %s/%s: %s is not played", schedule, region, expression)
                        return
                    every = period(expression)
                if clock.monotonic() - last < every:
                    continue
                last = clock.monotonic()
                if events.describe_rule(Name=rule)["State"] != "ENABLED":
                    continue
                if not targets:
                    targets = [
                        str(t["Arn"]) for t in events.list_targets_by_rule(Rule=rule)["Targets"]
                    ]
                for target in targets:
                    self.invoker.invoke(
                        region,
                        target,
                        {
                            "source": "aws.events",
                            "detail-type": "Scheduled Event",
                            "resources": [rule],
                            "region": region,
                            "detail": {},
                        },
                        source="schedule",
                    )
            except Exception as exc:
                log.debug("schedule %s/%s: %s", schedule, region, exc)

    def _call(self, mapping: Mapping, event: dict[str, Any], source: str) -> Invocation:
        key = (mapping.function, mapping.region)
        self.invocations[key] = self.invocations.get(key, 0) + 1
        return self.invoker.invoke(mapping.region, mapping.function, event, source=source)


class QueueUrl:
    """The URL of a mapping's queue, asked once (Lambda's poller knows its queue): a poll
    costs its receive, not a ``GetQueueUrl`` as well. Asked again after a failed ask (the
    region did not answer), never after one that answered: a queue keeps its URL."""

    def __init__(self, clients: Clients, mapping: Mapping) -> None:
        self.clients = clients
        self.mapping = mapping
        self.url: str | None = None

    def get(self) -> str:
        """The queue's URL (raises as ``GetQueueUrl`` does while it has none)."""
        if self.url is None:
            sqs = self.clients.client("sqs", self.mapping.region)
            name = self.mapping.source.rsplit(":", 1)[-1]
            self.url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        return self.url


def enabled(lam: Any, uuid: str) -> bool:
    """Whether the event source mapping ``uuid`` is on, as ``lam`` (its region's Lambda) says."""
    return lam.get_event_source_mapping(UUID=uuid)["State"] in ON_STATES


class Switch:
    """Whether a mapping is on, read back at most once every :data:`SWITCH_MAX_AGE` wall
    seconds, as Lambda's pollers notice a change a moment after it is made; ``read`` raises
    as the emulator does (the previous answer is not kept then)."""

    #: The wall's monotonic clock (tests stop it).
    clock = staticmethod(time.monotonic)

    def __init__(self, read: Callable[[], bool]) -> None:
        self.read = read
        self.at = -math.inf
        self.on = False

    def __call__(self) -> bool:
        now = self.clock()
        if now - self.at >= SWITCH_MAX_AGE:
            self.on, self.at = self.read(), now
        return self.on


def drain_queue(
    clients: Clients, mapping: Mapping, call: Callable[[dict[str, Any]], Invocation], url: str
) -> None:
    """One receive on ``mapping``'s queue at ``url``, as Lambda's poller does it: a batch
    invokes the function (``call``, synchronously); the messages it did not report as failed are
    deleted (all of them when it does not report failures and returned); a batch whose
    invocation failed goes back to the queue when its visibility ends."""
    sqs = clients.client("sqs", mapping.region)
    got = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=min(mapping.batch_size, 10),
        WaitTimeSeconds=0,
        AttributeNames=["All"],
    )
    messages = got.get("Messages", [])
    if not messages:
        return
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": mapping.source,
                "awsRegion": mapping.region,
            }
            for m in messages
        ]
    }
    done = call(event)
    if not done.ok:
        return  # the whole batch comes back when its visibility ends
    failures = (done.result or {}).get("batchItemFailures", []) if mapping.reports_failures else []
    failed = {f.get("itemIdentifier") for f in failures}
    kept = [m for m in messages if m["MessageId"] not in failed]
    if kept:
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(kept)
            ],
        )


def _kinesis_record(record: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """A Kinesis record as Lambda hands it to a function."""
    data = record.get("Data", b"")
    arrived = record.get("ApproximateArrivalTimestamp")
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record.get("PartitionKey", ""),
            "sequenceNumber": record.get("SequenceNumber", ""),
            "data": base64.b64encode(
                data if isinstance(data, bytes) else str(data).encode()
            ).decode(),
            "approximateArrivalTimestamp": arrived.timestamp() if arrived else clock.now(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId:{record.get('SequenceNumber', '')}",
        "eventName": "aws:kinesis:record",
        "awsRegion": mapping.region,
        "eventSourceARN": mapping.source,
    }
