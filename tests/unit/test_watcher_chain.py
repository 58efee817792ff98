"""The watchers' chain (:mod:`controller.watchers.chain`): a watcher that must evaluate again
sends one delayed link and ends instead of sleeping; a duplicated, late or superseded link
evaluates nothing and sends nothing; a queue that refuses the link leaves the invocation
evaluating by itself, as before; a link delivered late asks for the next one sooner, so the
chain keeps the interval's rate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.aws import Clients
from controller.controltable.watchstate import WatchState
from controller.errors import ConflictError, FailoverError
from controller.topology import load
from controller.watchers import chain
from controller.watchers import lambda_entry as lambda_watcher
from controller.watchers.decisions import Decision, WatchAction
from controller.watchers.watcher import Watcher
from tests.kit.manifests import fake_manifest
from tests.kit.paths import EXAMPLE
from tests.kit.watcher import Context, Memory

PRIMARY, STANDBY, OTHER = "us-east-1", "us-west-2", "eu-west-1"


@pytest.fixture
def deployment() -> lambda_watcher.Deployment:
    topology = load(EXAMPLE)
    manifest = fake_manifest(topology)
    return lambda_watcher.Deployment(topology, manifest, Clients(endpoints=manifest.endpoints))


class Invocation:
    """One invocation of a region's watcher whose evaluations find the primary healthy (calm),
    with its links recorded and its sleeps counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, memory: Memory) -> None:
        self.steps = 0
        self.links: list[tuple[int, float]] = []
        #: the watcher's clock when each link was sent: a delay counts from then
        self.sent_at: list[float] = []
        self.slept: list[float] = []
        self.refuse = False
        monkeypatch.setattr(lambda_watcher, "WatchStates", memory)

        def step(watcher: Watcher) -> Decision:
            self.steps += 1
            return Decision(1.0, WatchAction.NONE, "healthy", PRIMARY, {}, 0)

        monkeypatch.setattr(Watcher, "step", step)

    def send(self, after: int, delay: float) -> None:
        if self.refuse:
            raise FailoverError("sqs: the queue does not answer")
        self.links.append((after, delay))
        self.sent_at.append(lambda_watcher.clock.now())

    def __call__(
        self, deployment: lambda_watcher.Deployment, region: str, link: chain.Link | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        context = Context(75.0)
        lines: list[str] = []

        def sleep(s: float) -> None:
            self.slept.append(s)
            context.left -= s

        summary = lambda_watcher.watch(
            region,
            context,
            deployment=deployment,
            sleep=sleep,
            emit=lines.append,
            link=link,
            send=self.send,
        )
        return summary, lines


def test_a_sentinel_evaluates_once_and_sends_one_link_due_an_interval_later(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No sleep billed: one evaluation, then one link whose delay is what is left of the
    interval, carrying the count of evaluations the invocation saved (the chain's token)."""
    memory = Memory(WatchState(STANDBY, evaluations=41))
    invoke = Invocation(monkeypatch, memory)
    summary, lines = invoke(deployment, STANDBY)
    assert (summary["evaluations"], summary["role"], summary["linked"]) == (1, "sentinel", True)
    assert invoke.slept == []
    interval = deployment.topology.policy.watch_interval_seconds
    [(after, delay)] = invoke.links
    assert after == 42 == memory.written[-1].evaluations
    assert interval - 1.0 < delay <= interval
    assert json.loads(lines[0])["cadence"] == "sentinel"


def test_the_next_link_evaluates_and_sends_the_one_after(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = Memory(WatchState(STANDBY, evaluations=42))
    invoke = Invocation(monkeypatch, memory)
    summary, _ = invoke(deployment, STANDBY, chain.Link(STANDBY, 42))
    assert summary["evaluations"] == 1 and [a for a, _ in invoke.links] == [43]


def test_a_duplicated_or_late_link_is_dropped_without_evaluating(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count moved on since the link was sent (its first copy, or the scheduled invocation,
    evaluated meanwhile): nothing evaluated, logged as an evaluation, saved or sent."""
    memory = Memory(WatchState(STANDBY, evaluations=43))
    invoke = Invocation(monkeypatch, memory)
    summary, lines = invoke(deployment, STANDBY, chain.Link(STANDBY, 42))
    assert summary == {"region": STANDBY, "evaluations": 0, "dropped": True}
    assert invoke.steps == 0 and lines == [] and memory.written == [] and invoke.links == []


def test_two_copies_of_a_link_at_once_only_the_one_that_saves_sends_the_next(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both copies read the same count and evaluate; the item's conditional write lets one
    save: the other sends no link and ends (it neither doubles the chain nor sleeps)."""

    class Lost(Memory):
        def write(self, state: WatchState) -> None:
            raise ConflictError(f"{state.region}'s watcher item holds evaluation 43")

    invoke = Invocation(monkeypatch, Lost(WatchState(STANDBY, evaluations=42)))
    summary, _ = invoke(deployment, STANDBY, chain.Link(STANDBY, 42))
    assert summary["evaluations"] == 1 and invoke.links == [] and invoke.slept == []


def test_the_schedules_invocation_leaves_a_running_chain_alone(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its last link evaluated within the interval: the next one is on its way, the scheduled
    invocation evaluates nothing (one chain, not a second one every minute)."""
    now = lambda_watcher.clock.now()
    memory = Memory(WatchState(STANDBY, evaluations=42, updated=now - 4.0))
    invoke = Invocation(monkeypatch, memory)
    summary, lines = invoke(deployment, STANDBY)
    assert summary == {"region": STANDBY, "evaluations": 0, "chained": True}
    assert invoke.steps == 0 and lines == [] and invoke.links == []


def test_the_schedules_invocation_starts_a_broken_chain_again(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault: a link was lost (or its invocation failed). The last evaluation is older than
    the interval: the scheduled invocation evaluates and sends a link of its own."""
    now = lambda_watcher.clock.now()
    memory = Memory(WatchState(STANDBY, evaluations=42, updated=now - 55.0))
    invoke = Invocation(monkeypatch, memory)
    summary, _ = invoke(deployment, STANDBY)
    assert summary["evaluations"] == 1 and [a for a, _ in invoke.links] == [43]


def test_a_calm_watcher_that_is_not_the_sentinel_sends_no_link(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    alive = WatchState(STANDBY, evaluations=9, updated=lambda_watcher.clock.now())
    invoke = Invocation(monkeypatch, Memory(others={STANDBY: alive}))
    summary, _ = invoke(deployment, OTHER)
    assert (summary["evaluations"], summary["role"]) == (1, "calm")
    assert invoke.links == []


def test_a_queue_that_refuses_the_link_leaves_the_invocation_evaluating_inside_its_minute(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault: SQS does not take the link. The sentinel then sleeps between evaluations
    through its minute, as it did before the chain (six at 10 s)."""
    invoke = Invocation(monkeypatch, Memory())
    invoke.refuse = True
    summary, _ = invoke(deployment, STANDBY)
    assert summary["evaluations"] == 6 and summary["linked"] is False
    assert len(invoke.slept) == 5


def test_a_link_delivered_late_asks_for_the_next_one_that_much_sooner(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link was due 3 s ago (its delay rounded up, the mapping's poll, the invocation's
    start): the next is due an interval after this one was due, not an interval from now, and
    says so. Each period was the interval plus that lateness before. (The delay counts from
    when the link is sent, however long the invocation took to get there: on two busy cores it
    once took 1.2 s, and a bound on the delay alone failed.)"""
    interval = deployment.topology.policy.watch_interval_seconds
    invoke = Invocation(monkeypatch, Memory(WatchState(STANDBY, evaluations=42)))
    due = lambda_watcher.clock.now() - 3.0
    invoke(deployment, STANDBY, chain.Link(STANDBY, 42, due=due))
    [(after, delay)] = invoke.links
    assert after == 43
    assert invoke.sent_at[0] + delay == pytest.approx(due + interval, abs=0.25)
    assert delay <= interval - 3.0


def test_a_link_later_than_an_interval_asks_for_the_next_at_once(
    deployment: lambda_watcher.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    interval = deployment.topology.policy.watch_interval_seconds
    invoke = Invocation(monkeypatch, Memory(WatchState(STANDBY, evaluations=42)))
    due = lambda_watcher.clock.now() - 2.5 * interval
    invoke(deployment, STANDBY, chain.Link(STANDBY, 42, due=due))
    assert [delay for _, delay in invoke.links] == [0.0]


def test_a_link_says_when_the_next_evaluation_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the sender puts on the queue: the count, and now plus the delay it was asked (not
    the whole seconds SQS delays it by), read back as the same link."""
    sent: list[dict[str, Any]] = []

    class Sqs:
        def send_message(self, **kw: Any) -> None:
            sent.append(kw)

    class Made:
        def client(self, service: str, region: str) -> Sqs:
            assert (service, region) == ("sqs", STANDBY)
            return Sqs()

    monkeypatch.setattr(lambda_watcher.clock, "now", lambda: 1_000.0)
    chain.sender(Made(), STANDBY, "https://sqs/q")(43, 8.25)  # type: ignore[arg-type]
    [message] = sent
    assert message["DelaySeconds"] == 9
    record = {"eventSource": "aws:sqs", "body": message["MessageBody"]}
    assert chain.link_of({"Records": [record]}, STANDBY) == chain.Link(STANDBY, 43, 1_008.25)


def test_the_handler_passes_an_sqs_link_and_its_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(lambda_watcher, "watch", lambda region, context, **kw: seen.update(kw))
    monkeypatch.setenv("AWS_REGION", STANDBY)
    monkeypatch.setenv(lambda_watcher.contract.ENV_WATCHER_CHAIN_QUEUE, "https://sqs/q")
    record = {"eventSource": "aws:sqs", "body": chain.Link(STANDBY, 7).body()}
    lambda_watcher.handler({"Records": [record]}, Context(60.0))
    assert seen == {"link": chain.Link(STANDBY, 7), "chain_queue": "https://sqs/q"}
    lambda_watcher.handler({"source": "aws.events"}, Context(60.0))
    assert seen["link"] is None
