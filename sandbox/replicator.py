"""The replicator: copies each table's writes between the regions' emulators, from the streams.

Called by the data plane. The emulator has no global tables, so the sandbox plays their part:
it reads each region's table stream and applies every change to the same table in the other
regions, after ``lag`` seconds (asynchronous, as global tables in their default mode: a write
acknowledged just before an outage can be lost, and the demo counts it). With ``lag`` 0 the
regional endpoints wait for :meth:`Replicator.sync` before they acknowledge a write, the model of
multi-Region strong consistency: nothing acknowledged is lost. A replicated item carries
``_replicated_from`` so it is not copied back.

Like a global table, it reports how far behind each replica is: once a second, the worst lag it
measured (from reading a change to applying it elsewhere) goes to the source region's CloudWatch
as ``AWS/DynamoDB`` ``ReplicationLatency`` (milliseconds, per ``TableName`` and
``ReceivingRegion``), which the controller's replication-lag precheck reads there, as on AWS.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from controller import clock
from controller.aws import Clients
from controller.topology import Kind, Topology
from controller.topology.manifest import Manifest

log = logging.getLogger(__name__)

MARK = "_replicated_from"
#: AWS seconds (:mod:`controller.clock`), as the lag itself: a region that does not answer is
#: tried again after DOWN_BACKOFF; a region pair's ReplicationLatency is a datapoint every
#: PUBLISH_EVERY.
DOWN_BACKOFF = 5.0
PUBLISH_EVERY = 10.0


@dataclass
class _Shard:
    table: str  # component name
    region: str
    stream_arn: str
    shard_id: str
    iterator: str | None = None


@dataclass
class Replicator:
    """Streams in, puts and deletes out, per table, between every pair of regions."""

    topology: Topology
    manifest: Manifest
    clients: Clients
    lag: float = 0.0
    poll: float = 0.2
    applied: int = 0
    _shards: list[_Shard] = field(default_factory=list)
    #: per destination region, a heap of (due, seq, table, record)
    _due: dict[str, list[tuple[float, int, str, dict[str, Any]]]] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    #: a destination that failed is skipped until then (monotonic seconds), so that one dead
    #: region does not hold up the copies to the others
    _down_until: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    #: worst lag measured since the last publication, per (table, source, receiving region)
    _lags: dict[tuple[str, str, str], float] = field(default_factory=dict)
    _published: float = 0.0

    def start(self) -> None:
        """Open every table stream at its latest position and start copying."""
        for name, comp in self.topology.of_kind(Kind.TABLE):
            if not comp.stream:
                continue
            for region in self.topology.regions.all:
                self._open(name, region)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="replicator")
        self._thread.start()

    def stop(self) -> None:
        """Stop copying."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def sync(self, region: str) -> bool:
        """Copy everything ``region`` has written so far, now (used when ``lag`` is 0).

        True when the source could be read and every change reached at least one other region
        (a majority of three, as multi-Region strong consistency asks); False when the write
        must not be acknowledged.
        """
        with self._lock:
            seqs: list[int] = []
            for shard in [s for s in self._shards if s.region == region]:
                if not self._read(shard, seqs):
                    return False
            self._apply_due(force=True)
            waiting = Counter(seq for heap in self._due.values() for _, seq, _, _ in heap)
            others = len(self.topology.regions.all) - 1
            return all(waiting[seq] < others for seq in seqs)

    def _open(self, table: str, region: str) -> None:
        ref = self.manifest.regions[region].components.get(table)
        if ref is None or not ref.stream_arn:
            return
        streams = self.clients.client("dynamodbstreams", region)
        try:
            desc = streams.describe_stream(StreamArn=ref.stream_arn)["StreamDescription"]
            for shard in desc.get("Shards", []):
                it = streams.get_shard_iterator(
                    StreamArn=ref.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
                )["ShardIterator"]
                self._shards.append(_Shard(table, region, ref.stream_arn, shard["ShardId"], it))
        except Exception as exc:
            log.warning("stream of %s in %s not opened: %s", table, region, exc)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                for shard in self._shards:
                    self._read(shard)
                self._apply_due()
                lags = self._take_lags()
            self._publish(lags)
            self._stop.wait(self.poll)

    def _take_lags(self) -> dict[tuple[str, str, str], float]:
        """The lags measured since the last publication, once :data:`PUBLISH_EVERY` passed."""
        if clock.monotonic() - self._published < PUBLISH_EVERY or not self._lags:
            return {}
        self._published = clock.monotonic()
        lags, self._lags = self._lags, {}
        return lags

    def _publish(self, lags: dict[tuple[str, str, str], float]) -> None:
        """Each lag as a ``ReplicationLatency`` datapoint in its source region's CloudWatch."""
        for (table, source, target), seconds in lags.items():
            ref = self.manifest.regions[source].components.get(table)
            if ref is None:
                continue
            try:
                self.clients.client("cloudwatch", source).put_metric_data(
                    Namespace="AWS/DynamoDB",
                    MetricData=[
                        {
                            "MetricName": "ReplicationLatency",
                            "Unit": "Milliseconds",
                            "Value": seconds * 1000.0,
                            "Dimensions": [
                                {"Name": "TableName", "Value": ref.name},
                                {"Name": "ReceivingRegion", "Value": target},
                            ],
                        }
                    ],
                )
            except Exception as exc:  # a failed source region: nobody can read it there either
                log.debug("lag of %s %s->%s not published: %s", table, source, target, exc)

    def _read(self, shard: _Shard, seqs: list[int] | None = None) -> bool:
        """Queue the shard's new changes for every other region; False if it was unreadable."""
        if shard.iterator is None:
            return True
        if self._down_until.get(shard.region, 0.0) > clock.monotonic():
            return False
        streams = self.clients.client("dynamodbstreams", shard.region)
        try:
            got = streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        except Exception as exc:  # a failed region: keep the iterator, try again later
            log.debug("stream of %s in %s unreadable: %s", shard.table, shard.region, exc)
            self._down_until[shard.region] = clock.monotonic() + DOWN_BACKOFF
            return False
        shard.iterator = got.get("NextShardIterator", shard.iterator)
        due = clock.monotonic() + self.lag
        for record in got.get("Records", []):
            change = record.get("dynamodb", {})
            image = change.get("NewImage")
            if image and MARK in image:
                continue  # itself a copy: do not send it back
            seq = next(self._seq)
            if seqs is not None:
                seqs.append(seq)
            for region in self.topology.regions.all:
                if region != shard.region:
                    heapq.heappush(
                        self._due.setdefault(region, []),
                        (
                            due,
                            seq,
                            shard.table,
                            {**record, "_source": shard.region, "_read_at": clock.monotonic()},
                        ),
                    )
        return True

    def _apply_due(self, force: bool = False) -> None:
        now = clock.monotonic()
        for region, heap in self._due.items():
            if self._down_until.get(region, 0.0) > now:
                continue
            while heap and (force or heap[0][0] <= now):
                _, _, table, record = heap[0]
                if not self._apply(table, region, record):
                    # this destination does not answer: keep its order, retry it later
                    self._down_until[region] = clock.monotonic() + DOWN_BACKOFF
                    break
                heapq.heappop(heap)

    def backlog(self) -> int:
        """Changes read but not yet applied (all destinations)."""
        return sum(len(h) for h in self._due.values())

    def _apply(self, table: str, region: str, record: dict[str, Any]) -> bool:
        ref = self.manifest.regions[region].components.get(table)
        if ref is None:
            return True
        db = self.clients.client("dynamodb", region)
        change = record.get("dynamodb", {})
        try:
            if record.get("eventName") == "REMOVE":
                db.delete_item(TableName=ref.name, Key=change["Keys"])
            else:
                item = {**change["NewImage"], MARK: {"S": record["_source"]}}
                db.put_item(TableName=ref.name, Item=item)
        except Exception as exc:
            log.debug("replication to %s/%s failed: %s", table, region, exc)
            return False
        self.applied += 1
        key = (table, str(record["_source"]), region)
        lag = clock.monotonic() - float(record["_read_at"])
        self._lags[key] = max(lag, self._lags.get(key, 0.0))
        return True
