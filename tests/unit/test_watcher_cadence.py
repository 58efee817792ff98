"""The deployed watchers' cadence (controller/watchers/cadence.py): one watcher outside the active
region evaluates every interval (the sentinel), the others once a minute unless something is not
calm; a dead sentinel is replaced at the next invocation. What detection needs (3 intervals) at
the price of one function alive instead of three."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from controller.aws import Clients
from controller.contract import WatcherCadence
from controller.controltable.watchstate import WatchState
from controller.errors import FailoverError
from controller.topology import load
from controller.watchers import lambda_entry
from controller.watchers.decisions import Decision, WatchAction
from controller.watchers.watcher import Watcher
from tests.kit.manifests import fake_manifest
from tests.kit.paths import EXAMPLE
from tests.kit.watcher import Context, Memory

PRIMARY, STANDBY, OTHER = "us-east-1", "us-west-2", "eu-west-1"
#: The sandbox's invocation: its minute, one interval and the margin (as Lambda's timeout allows).
INVOCATION = 73.0


@pytest.fixture
def deployment() -> lambda_entry.Deployment:
    topology = load(EXAMPLE)
    manifest = fake_manifest(topology)
    return lambda_entry.Deployment(topology, manifest, Clients(endpoints=manifest.endpoints))


def alive(region: str, ago: float = 5.0) -> WatchState:
    """``region``'s watcher item, its last evaluation ``ago`` seconds old."""
    return WatchState(region, evaluations=10, updated=time.time() - ago)


def invoke(
    deployment: lambda_entry.Deployment,
    region: str,
    memory: Memory,
    monkeypatch: pytest.MonkeyPatch,
    *,
    bad: bool = False,
    cadence: WatcherCadence = WatcherCadence.SENTINEL,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One invocation of ``region``'s watcher whose evaluations find the primary (active) good,
    or bad; its summary and its log lines."""
    monkeypatch.setattr(lambda_entry, "WatchStates", memory)

    def step(self: Watcher) -> Decision:
        self.consecutive_bad = self.consecutive_bad + 1 if bad else 0
        action = WatchAction.WATCH if bad else WatchAction.NONE
        return Decision(time.time(), action, "", PRIMARY, {}, self.consecutive_bad)

    monkeypatch.setattr(Watcher, "step", step)
    context = Context(INVOCATION)
    lines: list[str] = []

    def sleep(s: float) -> None:
        context.left -= s

    summary = lambda_entry.watch(
        region, context, deployment=deployment, sleep=sleep, emit=lines.append, cadence=cadence
    )
    logged = [json.loads(line) for line in lines if '"message"' in line]
    return summary, logged


def test_only_the_sentinel_outside_the_active_region_evaluates_every_interval(
    deployment: lambda_entry.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    others = {r: alive(r) for r in (PRIMARY, STANDBY, OTHER)}
    done = {
        r: invoke(deployment, r, Memory(others=others), monkeypatch)[0]
        for r in (PRIMARY, STANDBY, OTHER)
    }
    # the first standby is the sentinel: 0, 10, ..., 50 s, as every watcher did before
    assert done[STANDBY]["evaluations"] == 6 and done[STANDBY]["role"] == "sentinel"
    # the active region's own watcher and the second standby: one evaluation a minute
    assert done[PRIMARY]["evaluations"] == 1 and done[PRIMARY]["role"] == "calm"
    assert done[OTHER]["evaluations"] == 1 and done[OTHER]["role"] == "calm"


def test_a_dead_sentinel_is_replaced_by_the_next_region_at_its_next_invocation(
    deployment: lambda_entry.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the first standby's watcher last evaluated a minute ago: its region went down with it
    others = {STANDBY: alive(STANDBY, ago=60.0), PRIMARY: alive(PRIMARY)}
    summary, logged = invoke(deployment, OTHER, Memory(others=others), monkeypatch)
    assert summary["evaluations"] == 6 and summary["role"] == "sentinel"
    assert {line["cadence"] for line in logged} == {"sentinel"}
    # within three intervals (and the margin) it still counts as alive: no second sentinel
    others[STANDBY] = alive(STANDBY, ago=30.0)
    summary, _ = invoke(deployment, OTHER, Memory(others=others), monkeypatch)
    assert summary["evaluations"] == 1


def test_a_watcher_that_sees_the_active_region_bad_once_keeps_watching_every_interval(
    deployment: lambda_entry.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the sentinel, but its evaluation found the primary bad: it evaluates every interval
    through its minute, and counts towards the threshold as the sentinel does."""
    memory = Memory(others={STANDBY: alive(STANDBY)})
    summary, logged = invoke(deployment, OTHER, memory, monkeypatch, bad=True)
    assert summary["evaluations"] == 6 and summary["role"] == "vigilant"
    assert [s.consecutive_bad for s in memory.written] == [1, 2, 3, 4, 5, 6]
    assert {line["cadence"] for line in logged} == {"vigilant"}


def test_a_watcher_that_cannot_read_the_other_watchers_items_keeps_watching_every_interval(
    deployment: lambda_entry.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Throttled on the query of the watcher items: not knowing whether a sentinel is alive,
    it watches every interval itself (costs a minute of duration, never a missed detection)."""

    class Throttled(Memory):
        def all(self) -> dict[str, WatchState]:
            raise FailoverError("control table: ThrottlingException (Rate exceeded)")

    summary, _ = invoke(deployment, OTHER, Throttled(), monkeypatch)
    assert summary["evaluations"] == 6 and summary["role"] == "vigilant"


def test_the_minute_cadence_every_watcher_evaluates_every_interval(
    deployment: lambda_entry.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cadence before issue #27 (the cost bench's baseline)."""
    others = {STANDBY: alive(STANDBY)}
    for region in (PRIMARY, OTHER):
        summary, _ = invoke(
            deployment, region, Memory(others=others), monkeypatch, cadence=WatcherCadence.MINUTE
        )
        assert summary["evaluations"] == 6, region


def test_an_invocation_reads_the_watcher_items_in_one_query_its_own_among_them(
    deployment: lambda_entry.Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own item (to carry on from) and the others' (is a sentinel alive?) are one query of
    one partition: not a read of its own and a query of all, two requests an invocation. What
    it carries on from is its own item in that query."""
    reads: list[str] = []

    class Counted(Memory):
        def read(self, region: str) -> WatchState:
            reads.append("read")
            return super().read(region)

        def all(self) -> dict[str, WatchState]:
            reads.append("all")
            return super().all()

    memory = Counted(WatchState(OTHER, evaluations=41), others={STANDBY: alive(STANDBY)})
    summary, _ = invoke(deployment, OTHER, memory, monkeypatch)
    assert reads == ["all"]
    assert summary["role"] == "calm" and summary["evaluations"] == 1  # the sentinel is alive
    assert [s.evaluations for s in memory.written] == [42]  # carried on from its own item
