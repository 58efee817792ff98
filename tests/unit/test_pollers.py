"""Lambda's queue pollers in the sandbox (:mod:`sandbox.pollers`, the watchers' chain in
:mod:`sandbox.watchers`): a poll costs its receive, not a ``GetQueueUrl`` and a read of the
mapping as well. The queue's URL is asked once, and again only after an ask that failed; the
mapping's state is read at most once every ``SWITCH_MAX_AGE`` wall seconds. An idle sandbox's
watchers sent three calls per region per AWS second for this, most of its background load."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from sandbox import pollers, watchers
from sandbox.lambda_.invoke import Invocation, Outcome
from sandbox.pollers import Mapping, QueueUrl, Switch

REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:orders-watcher-chain"
FUNCTION = f"arn:aws:lambda:{REGION}:123456789012:function:orders-watcher:live"
URL = "http://127.0.0.1:9/123456789012/orders-watcher-chain"


class Fake:
    """The Lambda and SQS clients of one region: each call counted, the queue's answers
    scripted (one batch of one message, then empty ones)."""

    def __init__(self, receives_until_stop: int, stop: threading.Event) -> None:
        self.calls: Counter[str] = Counter()
        self.fail_url = 0  # GetQueueUrl calls that fail before one answers
        self.deleted: list[tuple[str, list[str]]] = []
        self.left = receives_until_stop
        self.stop = stop

    def client(self, service: str, region: str) -> Fake:
        assert region == REGION
        return self

    def get_event_source_mapping(self, UUID: str) -> dict[str, Any]:
        self.calls["GetEventSourceMapping"] += 1
        return {"FunctionArn": FUNCTION, "EventSourceArn": QUEUE_ARN, "State": "Enabled"}

    def get_queue_url(self, QueueName: str) -> dict[str, Any]:
        self.calls["GetQueueUrl"] += 1
        assert QueueName == "orders-watcher-chain"
        if self.fail_url:
            self.fail_url -= 1
            raise ConnectionError("the region did not answer")
        return {"QueueUrl": URL}

    def receive_message(self, QueueUrl: str, **_: Any) -> dict[str, Any]:
        self.calls["ReceiveMessage"] += 1
        assert QueueUrl == URL
        self.left -= 1
        if self.left <= 0:
            self.stop.set()
        if self.calls["ReceiveMessage"] == 1:
            return {"Messages": [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "{}"}]}
        return {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        self.deleted.append((QueueUrl, [e["ReceiptHandle"] for e in Entries]))


class Invoker:
    """Records each invocation and answers it as done."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, region: str, function: str, event: dict[str, Any], **_: Any) -> Invocation:
        self.events.append(event)
        return Invocation(REGION, function, "sqs", Outcome.OK, 0.0, 0.0, cold=False)


def test_the_chain_poller_asks_the_url_once_and_reads_the_mapping_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watchers, "CHAIN_POLL_SECONDS", 0.001)
    monkeypatch.setattr(
        Switch, "clock", staticmethod(lambda: 100.0)
    )  # under a second, however slow
    stop = threading.Event()
    fake, invoker = Fake(receives_until_stop=30, stop=stop), Invoker()
    watchers.follow_chain(fake, invoker, REGION, "uuid-1", stop)  # type: ignore[arg-type]
    assert fake.calls["ReceiveMessage"] == 30
    assert fake.calls["GetQueueUrl"] == 1
    # one read back of the mapping, one of its state: the 30 polls took no time on its clock
    assert fake.calls["GetEventSourceMapping"] == 2
    # what the polls are for still happens: the link invoked the watcher, then was deleted
    assert [r["receiptHandle"] for e in invoker.events for r in e["Records"]] == ["r1"]
    assert fake.deleted == [(URL, ["r1"])]


def test_a_url_that_could_not_be_asked_is_asked_again_then_kept() -> None:
    stop = threading.Event()
    fake = Fake(receives_until_stop=99, stop=stop)
    fake.fail_url = 2
    mapping = Mapping.read(fake, REGION, "uuid-1")  # type: ignore[arg-type]
    queue = QueueUrl(fake, mapping)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(ConnectionError):
            queue.get()
    assert [queue.get() for _ in range(5)] == [URL] * 5
    assert fake.calls["GetQueueUrl"] == 3


def test_a_switch_reads_at_most_once_per_max_age_and_again_after_a_failed_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(Switch, "clock", staticmethod(lambda: now[0]))
    answers: list[bool | Exception] = [True, ConnectionError("no answer"), False, True]
    reads = []

    def read() -> bool:
        reads.append(now[0])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    on = Switch(read)
    assert on() is True
    now[0] += pollers.SWITCH_MAX_AGE / 2
    assert on() is True  # not read again yet
    now[0] += pollers.SWITCH_MAX_AGE / 2
    with pytest.raises(ConnectionError):
        on()
    assert on() is False  # the failed read kept nothing: read again at once
    now[0] += pollers.SWITCH_MAX_AGE
    assert on() is True
    assert len(reads) == 4
