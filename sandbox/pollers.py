"""Pollers: drive the event-sourced functions as Lambda would, honouring each region's switches.

Called by the data plane. For every function with event sources, in every region, a poller reads
its queue (SQS) or its table's stream and invokes the function's handler with the batch, but only
while that region's event source mapping is enabled and the function is not fenced (reserved
concurrency 0): a fenced region consumes nothing. Schedules fire their target every
``schedule_every`` seconds while their rule is enabled in that region.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.aws import Clients
from controller.topology import Kind, Topology
from controller.topology.kinds import FunctionSpec
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)

#: ``invoke(region, component, event) -> response``: runs a function's handler in-process.
Invoke = Callable[[str, str, dict[str, Any]], Any]
ON_STATES = ("Enabled", "Enabling", "Updating")
SWITCH_MAX_AGE = 1.0


@dataclass
class Pollers:
    """Every event source of every function in every region, polled on its own thread."""

    topology: Topology
    manifest: Manifest
    clients: Clients
    invoke: Invoke
    poll: float = 0.5
    schedule_every: float = 10.0
    invocations: dict[tuple[str, str], int] = field(default_factory=dict)
    _switches: dict[tuple[str, str], tuple[float, bool]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start a poller per (function, event source, region) and per (schedule, region)."""
        for region in self.topology.regions.all:
            for name, comp in self.topology.of_kind(Kind.FUNCTION):
                for source in comp.events:
                    self._spawn(
                        self._source_loop, region, name, comp, source.source, source.batch_size
                    )
            for name, comp in self.topology.of_kind(Kind.SCHEDULE):
                self._spawn(self._schedule_loop, region, name, comp.target)

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

    def consuming(self, region: str, function: str) -> bool:
        """True when ``function``'s mappings are enabled in ``region`` and it is not fenced.

        Read at most once a second per (function, region), as Lambda's pollers notice a change.
        """
        key = (function, region)
        cached = self._switches.get(key)
        if cached and time.monotonic() - cached[0] < SWITCH_MAX_AGE:
            return cached[1]
        on = self._read_switch(region, function)
        self._switches[key] = (time.monotonic(), on)
        return on

    def _read_switch(self, region: str, function: str) -> bool:
        ref = self.manifest.ref(function, region)
        lam = self.clients.client("lambda", region)
        if not ref.mappings:
            return False
        states = [lam.get_event_source_mapping(UUID=u)["State"] for u in ref.mappings]
        if not any(s in ON_STATES for s in states):
            return False
        got = lam.get_function_concurrency(FunctionName=ref.name)
        return bool(got.get("ReservedConcurrentExecutions") != 0)

    def _wait(self) -> bool:
        return not self._stop.wait(self.poll)

    # -- sources -----------------------------------------------------------------------------

    def _source_loop(
        self, region: str, function: str, spec: FunctionSpec, source: str, batch: int
    ) -> None:
        kind = Kind(self.topology.components[source].kind)
        iterator: str | None = None
        while self._wait():
            try:
                if not self.consuming(region, function):
                    iterator = None  # a paused mapping resumes from the latest position
                    continue
                if kind == Kind.QUEUE:
                    self._drain_queue(region, function, source, batch)
                elif kind == Kind.TABLE:
                    iterator = self._read_stream(region, function, source, iterator, batch)
            except Exception as exc:  # a failed region: keep trying, as Lambda's pollers do
                log.debug("poller %s/%s: %s", function, region, exc)

    def _drain_queue(self, region: str, function: str, queue: str, batch: int) -> None:
        ref = self.manifest.ref(queue, region)
        if ref.queue_url is None:
            return
        sqs = self.clients.client("sqs", region)
        got = sqs.receive_message(
            QueueUrl=ref.queue_url,
            MaxNumberOfMessages=min(batch, 10),
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
                    "eventSourceARN": ref.arn,
                    "awsRegion": region,
                }
                for m in messages
            ]
        }
        response = self._call(region, function, event) or {}
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=ref.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )

    def _read_stream(
        self, region: str, function: str, table: str, iterator: str | None, batch: int
    ) -> str | None:
        ref = self.manifest.ref(table, region)
        if ref.stream_arn is None:
            return iterator
        streams = self.clients.client("dynamodbstreams", region)
        if iterator is None:
            shards = streams.describe_stream(StreamArn=ref.stream_arn)["StreamDescription"]
            shard = shards["Shards"][0]["ShardId"]
            iterator = streams.get_shard_iterator(
                StreamArn=ref.stream_arn, ShardId=shard, ShardIteratorType="LATEST"
            )["ShardIterator"]
        got = streams.get_records(ShardIterator=iterator, Limit=batch)
        records = [
            {
                **r,
                "eventSource": "aws:dynamodb",
                "awsRegion": region,
                "eventSourceARN": ref.stream_arn,
            }
            for r in got.get("Records", [])
        ]
        if records:
            self._call(region, function, {"Records": records})
        return str(got.get("NextShardIterator") or iterator)

    def _schedule_loop(self, region: str, schedule: str, target: str) -> None:
        last = time.monotonic()
        while self._wait():
            if time.monotonic() - last < self.schedule_every:
                continue
            last = time.monotonic()
            try:
                rule = self.manifest.ref(schedule, region).name
                state = self.clients.client("events", region).describe_rule(Name=rule)["State"]
                if state == "ENABLED":
                    self._call(
                        region,
                        target,
                        {
                            "source": "aws.events",
                            "detail-type": "Scheduled Event",
                            "resources": [rule],
                            "region": region,
                        },
                    )
            except Exception as exc:
                log.debug("schedule %s/%s: %s", schedule, region, exc)

    def _call(self, region: str, function: str, event: dict[str, Any]) -> Any:
        key = (function, region)
        self.invocations[key] = self.invocations.get(key, 0) + 1
        return self.invoke(region, function, event)
