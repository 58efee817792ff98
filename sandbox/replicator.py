"""The replicator: copies each table's writes between the regions' emulators, from the streams.

Called by the data plane. The emulator has no global tables, so the sandbox plays their part:
it reads each region's table stream and applies every change to the same table in the other
regions, after ``lag`` seconds (asynchronous, as global tables in their default mode: a write
acknowledged just before an outage can be lost, and the demo counts it). With ``lag`` 0 the
regional endpoints wait for :meth:`Replicator.sync` before they acknowledge a write, the model of
multi-Region strong consistency: nothing acknowledged is lost. A replicated item carries
``_replicated_from`` so it is not copied back.

No region that does not answer holds up the others: each region's stream has one reader and
each destination one sender at a time, and no lock is held over a call to a region. A write
acknowledged in a live region waits for one other live region, never for a hung one, as a
multi-Region strongly consistent table answers with its majority while a replica is lost.

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
    #: guards the queues, the sequence, the lags and the backoffs; never held over a call
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: one reader per source region (a shard's iterator is read once), one sender per
    #: destination (its changes in order): a call that hangs holds up only its own region
    _reading: dict[str, threading.Lock] = field(default_factory=dict)
    _sending: dict[str, threading.Lock] = field(default_factory=dict)
    #: a destination that failed is skipped until then (monotonic seconds), so that one dead
    #: region does not hold up the copies to the others
    _down_until: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    #: worst lag measured since the last publication, per (table, source, receiving region)
    _lags: dict[tuple[str, str, str], float] = field(default_factory=dict)
    _published: float = 0.0

    def __post_init__(self) -> None:
        for region in self.topology.regions.all:
            self._reading[region] = threading.Lock()
            self._sending[region] = threading.Lock()

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

        True when the source could be read and every change it has written reached at least
        one other region (a majority of three, as multi-Region strong consistency asks); False
        when the write must not be acknowledged. The destinations that answered last are tried
        first, and one busy with another sender is waited for only if no other took the
        changes: a hung region costs a write nothing while another region takes it.
        """
        if not self._read_region(region):
            return False
        order = self._destinations(exclude=region)
        for wait in (False, True):
            for destination in order:
                if self._copied(region):
                    return True
                self._send(destination, force=True, wait=wait)
        return self._copied(region)

    def _copied(self, source: str) -> bool:
        """Has every change read from ``source`` reached at least one other region?"""
        others = len(self.topology.regions.all) - 1
        with self._lock:
            waiting = Counter(
                seq
                for heap in self._due.values()
                for _, seq, _, record in heap
                if record["_source"] == source
            )
        return all(count < others for count in waiting.values())

    def _destinations(self, exclude: str = "") -> list[str]:
        """The regions to send to, those that never failed or failed longest ago first."""
        with self._lock:
            down = dict(self._down_until)
        return sorted(
            (r for r in self.topology.regions.all if r != exclude),
            key=lambda r: down.get(r, 0.0),
        )

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
            for region in self.topology.regions.all:
                self._read_region(region)
            for region in self._destinations():
                self._send(region)
            with self._lock:
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

    def _read_region(self, region: str) -> bool:
        """Queue the new changes of every stream in ``region``; False if one was unreadable."""
        with self._reading[region]:
            return all(self._read(shard) for shard in self._shards if shard.region == region)

    def _read(self, shard: _Shard) -> bool:
        """Queue the shard's new changes for every other region; False if it was unreadable.
        The caller holds the shard region's reading lock."""
        if shard.iterator is None:
            return True
        with self._lock:
            if self._down_until.get(shard.region, 0.0) > clock.monotonic():
                return False
        streams = self.clients.client("dynamodbstreams", shard.region)
        try:
            got = streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        except Exception as exc:  # a failed region: keep the iterator, try again later
            log.debug("stream of %s in %s unreadable: %s", shard.table, shard.region, exc)
            with self._lock:
                self._down_until[shard.region] = clock.monotonic() + DOWN_BACKOFF
            return False
        shard.iterator = got.get("NextShardIterator", shard.iterator)
        with self._lock:  # due times in the order of the queue: a change never jumps ahead
            read_at = clock.monotonic()
            due = read_at + self.lag
            for record in got.get("Records", []):
                change = record.get("dynamodb", {})
                image = change.get("NewImage")
                if image and MARK in image:
                    continue  # itself a copy: do not send it back
                seq = next(self._seq)
                for region in self.topology.regions.all:
                    if region != shard.region:
                        heapq.heappush(
                            self._due.setdefault(region, []),
                            (
                                due,
                                seq,
                                shard.table,
                                {**record, "_source": shard.region, "_read_at": read_at},
                            ),
                        )
        return True

    def _send(self, region: str, force: bool = False, wait: bool = True) -> None:
        """Apply ``region``'s due changes (all with ``force``) in order, until one fails: that
        destination is then skipped for :data:`DOWN_BACKOFF`. A change stays queued while it is
        being applied, so that :meth:`sync` counts it as not there yet. Without ``wait``, a
        destination another thread is sending to is left to that thread."""
        gate = self._sending[region]
        if not gate.acquire(blocking=wait):
            return
        try:
            while True:
                with self._lock:
                    heap = self._due.get(region)
                    now = clock.monotonic()
                    if self._down_until.get(region, 0.0) > now or not heap:
                        return
                    if not force and heap[0][0] > now:
                        return
                    entry = heap[0]  # only this region's sender takes from its queue
                _, _, table, record = entry
                ok = self._apply(table, region, record)
                with self._lock:
                    if not ok:  # this destination does not answer: keep its order, retry later
                        self._down_until[region] = clock.monotonic() + DOWN_BACKOFF
                        return
                    _remove(self._due[region], entry)
                    self.applied += 1
                    key = (table, str(record["_source"]), region)
                    lag = clock.monotonic() - float(record["_read_at"])
                    self._lags[key] = max(lag, self._lags.get(key, 0.0))
        finally:
            gate.release()

    def backlog(self) -> int:
        """Changes read but not yet applied (all destinations)."""
        with self._lock:
            return sum(len(h) for h in self._due.values())

    def _apply(self, table: str, region: str, record: dict[str, Any]) -> bool:
        """Put (or delete) one change in ``region``'s table; False when the region failed it."""
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
        return True


def _remove(heap: list[Any], entry: Any) -> None:
    """Take ``entry`` out of ``heap``: its head, as a rule, else wherever it is now.

    >>> heap = [(1, "a"), (2, "b"), (3, "c")]
    >>> _remove(heap, (1, "a")), heap[0]
    (None, (2, 'b'))
    >>> _remove(heap, (3, "c")), heap
    (None, [(2, 'b')])
    """
    if heap and heap[0] is entry:
        heapq.heappop(heap)
        return
    heap.remove(entry)
    heapq.heapify(heap)
