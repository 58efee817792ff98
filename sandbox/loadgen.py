"""The load generator: a steady mix of reads and writes through the router, every answer kept.

Called by the demo and the drill. Each client behaves as an SDK client does: a request that gets
no answer or a 5xx without a degraded mark is retried with backoff within a deadline; what it
finally got is its outcome: ``ok`` (2xx), ``degraded`` (an answer marked ``X-Degraded``: a read
served read-only, a write queued or refused with Retry-After) or ``failed``. Written order ids
that were acknowledged are remembered, so the demo can look for them in the new primary.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from controller import clock
from sandbox.router import CLIENT_HEADER


@dataclass(frozen=True)
class Sample:
    """One logical request: when it started, what it was, how it ended."""

    start: float
    end: float
    kind: str  # read | write
    outcome: str  # ok | degraded | failed
    status: int
    attempts: int
    region: str = ""
    order_id: str = ""


#: A client's socket timeout is AWS seconds, but at least this long on the wall: a live region's
#: answer costs this machine's CPU, which is not AWS's time. On two busy cores a write's answer
#: took up to 1.7 s (99th percentile 0.3-1.7 s, demo under load, 2026-12-06), so a floor of
#: 0.5 s (the timeout was 10 AWS s, 2 wall s at k = 5) failed live writes: a client then saw an
#: outage that AWS would not have had. A region that does not answer is answered for by the
#: router and the endpoint (504, 503) well before this.
SOCKET_WALL_FLOOR = 5.0


@dataclass
class LoadGenerator:
    """``workers`` threads sending about ``rate`` requests per AWS second in all, ``write_share``
    of them writes, each with a retry budget of ``deadline`` AWS seconds. Pacing, backoff, budget
    and each attempt's socket ``timeout`` are AWS seconds on the sandbox's clock
    (:mod:`controller.clock`): a client's timeout in wall seconds would be k times longer in AWS
    time, and a request to a region that does not answer would cost k times as much at k; paced
    on the wall, the clients would ask k times less often in AWS time, and when a client first
    asked after an outage would depend on k. The clients start spread over one period, as
    independent clients are, not all at one instant."""

    url: str
    rate: float = 2.0
    workers: int = 16
    write_share: float = 0.3
    timeout: float = 10.0
    deadline: float = 25.0
    samples: list[Sample] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # order id -> region that acked it
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _rng: random.Random = field(default_factory=lambda: random.Random(11))

    def start(self) -> None:
        """Start the client threads."""
        for i in range(self.workers):
            thread = threading.Thread(
                target=self._loop,
                args=(f"{i}/{self.workers}", i / self.workers),
                daemon=True,
                name=f"load-{i}",
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop sending; requests in flight finish (or give up at their deadline)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=clock.wall(self.deadline) + 5)

    def _loop(self, client: str, offset: float) -> None:
        """One client: a request every ``workers / rate`` AWS seconds, the first ``offset`` of
        that period after the start; ``client`` names it to the router (its own resolver)."""
        period = self.workers / self.rate
        if self._stop.wait(clock.wall(offset * period)):
            return
        while not self._stop.is_set():
            started = clock.monotonic()
            with self._lock:
                write = self._rng.random() < self.write_share or not self.acked
                known = list(self.acked) if not write else []
                pick = self._rng.choice(known) if known else ""
            sample = self._write(client) if write else self._read(client, pick)
            with self._lock:
                self.samples.append(sample)
                if sample.kind == "write" and sample.status in (201, 202):
                    self.acked[sample.order_id] = sample.region
            self._stop.wait(clock.wall(max(0.0, period - (clock.monotonic() - started))))

    def _write(self, client: str) -> Sample:
        order_id = uuid.uuid4().hex
        body = json.dumps(
            {"order_id": order_id, "items": [{"sku": "tea", "qty": 2}], "total": 7.5}
        ).encode()
        return self._request(client, "POST", "/orders", body, "write", order_id)

    def _read(self, client: str, order_id: str) -> Sample:
        return self._request(client, "GET", f"/orders/{order_id}", b"", "read", order_id)

    def _request(
        self, client: str, method: str, path: str, body: bytes, kind: str, order_id: str
    ) -> Sample:
        start = clock.now()
        deadline = clock.monotonic() + self.deadline
        attempts, status = 0, 0
        headers: dict[str, str] = {}
        delay = 0.2
        while True:
            attempts += 1
            status, headers = self._once(client, method, path, body)
            if (
                _final(status, headers)
                or clock.monotonic() + delay > deadline
                or (self._stop.is_set() and attempts > 1)
            ):
                break
            clock.sleep(delay)
            delay = min(2.0, delay * 1.6)
        return Sample(
            start,
            clock.now(),
            kind,
            classify(status, headers),
            status,
            attempts,
            headers.get("x-served-by-region", ""),
            order_id,
        )

    def _once(self, client: str, method: str, path: str, body: bytes) -> tuple[int, dict[str, str]]:
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1",
            parts.port,
            timeout=clock.wall(clock.patient(self.timeout, SOCKET_WALL_FLOOR)),
        )
        try:
            conn.request(
                method,
                path,
                body=body or None,
                headers={CLIENT_HEADER: client}
                | ({"Content-Type": "application/json"} if body else {}),
            )
            response = conn.getresponse()
            response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}
        except (OSError, http.client.HTTPException):
            return 0, {}
        finally:
            conn.close()


def classify(status: int, headers: dict[str, str]) -> str:
    """``ok``, ``degraded`` or ``failed``, from a final status and its headers.

    >>> classify(200, {}), classify(503, {"x-degraded": "read_only"}), classify(504, {})
    ('ok', 'degraded', 'failed')
    """
    if "x-degraded" in headers and (status < 500 or "retry-after" in headers or status == 503):
        return "degraded"
    if 200 <= status < 300:
        return "ok"
    if status == 404:
        return "ok"  # a read of an order the region has not got yet is an answer, not a failure
    return "failed"


def _final(status: int, headers: dict[str, str]) -> bool:
    """True when the client would not retry this answer."""
    return status != 0 and (status < 500 or "x-degraded" in headers)


Clock = Callable[[], float]
