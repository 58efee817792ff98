"""A region's watcher cut off from the control table's majority fences its own region, once the
cut has lasted longer than the lease, and never un-fences it (issue 26, item 13).

The clock of the cut is kept in the region's own SSM (a partition outlives an invocation); here
an in-memory parameter store and a clock the test moves stand in for SSM and time, and the
fence is recorded instead of made (the emulator test, ``tests/sandbox/test_watchers.py``, makes
it for real).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from controller.contract import WATCHER_SCHEDULE, WatcherCadence
from controller.errors import NoMajorityError
from controller.topology import load
from controller.watchers import isolation as isolated
from controller.watchers import lambda_entry as lambda_watcher
from controller.watchers.decisions import Decision, WatchAction
from controller.watchers.isolation import CUT_OFF, JOINED, SELF_FENCE, Isolation, cut_off_parameter
from controller.watchers.watcher import Watcher
from tests.kit.manifests import fake_manifest
from tests.kit.paths import EXAMPLE
from tests.kit.watcher import Context, Memory

REGION = "us-east-1"
TOPOLOGY = load(EXAMPLE)
LEASE = TOPOLOGY.policy.lease_seconds  # 60 s
INTERVAL = TOPOLOGY.policy.watch_interval_seconds  # 10 s


class Region:
    """The region's parameter store, a clock, and the fences made."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parameters: dict[str, str] = {}
        self.now = 1_000_000.0
        self.fences = 0
        monkeypatch.setattr(isolated.modes, "get", self._get)
        monkeypatch.setattr(isolated.modes, "put", self._put)
        monkeypatch.setattr(Isolation, "fence", lambda _: self._fence())

    def _get(self, clients: Any, region: str, names: list[str]) -> dict[str, str]:
        assert region == REGION  # only its own region: the one a partition leaves it
        return {n: self.parameters[n] for n in names if n in self.parameters}

    def _put(self, clients: Any, region: str, name: str, value: str) -> None:
        assert region == REGION
        self.parameters[name] = value

    def _fence(self) -> tuple[int, list[str]]:
        self.fences += 1
        return 7, []

    def isolation(self) -> Isolation:
        """A new invocation's view (nothing remembered but what the region holds)."""
        manifest = fake_manifest(TOPOLOGY)
        return Isolation(TOPOLOGY, manifest, None, REGION, clock=lambda: self.now)  # type: ignore[arg-type]


def test_the_region_fences_itself_only_once_cut_off_longer_than_the_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    region = Region(monkeypatch)
    watch = region.isolation()
    seen = []
    for _ in range(int(LEASE // INTERVAL) + 2):  # every interval, from the cut on
        seen.append(watch.cut_off())
        region.now += INTERVAL
    actions = [v.action for v in seen]
    assert actions == [CUT_OFF] * 7 + [SELF_FENCE], [v.reason for v in seen]
    assert seen[6].cut_for == LEASE  # at the lease itself, not yet
    assert "fenced, 7 changed" in seen[-1].reason and region.fences == 1
    assert "serves again only when the control table says so" in seen[-1].reason


def test_the_clock_of_the_cut_outlives_the_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A partition lasts longer than a minute: the next invocation carries on counting from
    what the region holds, instead of starting the lease over."""
    region = Region(monkeypatch)
    region.isolation().cut_off()
    name = cut_off_parameter(TOPOLOGY, fake_manifest(TOPOLOGY), REGION)
    assert float(region.parameters[name]) == region.now
    region.now += LEASE + 1
    verdict = region.isolation().cut_off()  # a new invocation
    assert verdict.action == SELF_FENCE and verdict.cut_for == LEASE + 1


def test_answering_again_forgets_the_cut_and_a_new_cut_starts_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    region = Region(monkeypatch)
    region.isolation().cut_off()
    region.now += LEASE / 2
    back = region.isolation()
    back.answered()  # the control table answered this invocation
    name = cut_off_parameter(TOPOLOGY, fake_manifest(TOPOLOGY), REGION)
    assert region.parameters[name] == JOINED
    region.now += LEASE  # cut again, more than a lease after the first cut began
    assert back.cut_off().action == CUT_OFF
    assert region.isolation().cut_off().cut_for == 0.0
    assert region.fences == 0


def test_a_cut_off_invocation_keeps_watching_and_fences_past_the_lease(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler does not end at the first evaluation without a majority (it did): it counts
    the cut at every interval, within each minute's invocation and across invocations (the cut's
    start is kept in the region), and fences past the lease; it never evaluates the application
    meanwhile."""
    region = Region(monkeypatch)

    class NoMajority(Memory):  # every read of the watcher items: its own, all of them
        def read(self, _: str) -> Any:
            raise NoMajorityError("the control table x has no majority: us-east-1 answered 500")

        def all(self) -> Any:
            return self.read("")

    monkeypatch.setattr(lambda_watcher, "WatchStates", NoMajority())
    monkeypatch.setattr(Watcher, "step", lambda self: pytest.fail("evaluated while cut off"))
    lines: list[str] = []
    manifest = fake_manifest(TOPOLOGY)
    deployment = lambda_watcher.Deployment(
        TOPOLOGY, manifest, lambda_watcher.Clients(endpoints=manifest.endpoints)
    )
    monkeypatch.setattr(
        lambda_watcher, "Isolation", functools.partial(Isolation, clock=lambda: region.now)
    )
    period = WATCHER_SCHEDULE.period_seconds
    summaries = []
    for minute in range(3):  # the schedule's invocations, one a minute, each inside its minute
        region.now = 1_000_000.0 + minute * period
        context = Context(period + LEASE)  # a timeout longer than the minute

        def sleep(seconds: float, context: Context = context) -> None:
            context.left -= seconds
            region.now += seconds

        summaries.append(
            lambda_watcher.watch(
                REGION, context, deployment=deployment, sleep=sleep, emit=lines.append
            )
        )
    summary = {"actions": sorted({a for s in summaries for a in s["actions"]})}
    records = [json.loads(line) for line in lines]
    logged = [r for r in records if r.get("message") == "evaluation"]
    metrics = [r for r in records if "_aws" in r]
    assert [r["action"] for r in logged][-1] == SELF_FENCE, logged
    assert {r["action"] for r in logged} == {CUT_OFF, SELF_FENCE}
    assert summary["actions"] == sorted({CUT_OFF, SELF_FENCE})
    assert all(m["Evaluations"] == 0 for m in metrics)  # the dead-man alarm sees silence
    assert metrics[-1]["Acted"] == 1 and region.fences >= 1


def stops_writing_after(cadence: WatcherCadence, monkeypatch: pytest.MonkeyPatch) -> float:
    """Seconds from a partition of the active region to its self-fence: the cut begins just
    after its watcher's first evaluation of a minute found everything calm (the worst case of
    the cadence), and the schedule invokes the watcher every minute."""
    region = Region(monkeypatch)
    start = region.now
    cut_at = start + 0.001
    fenced: list[float] = []
    monkeypatch.setattr(Isolation, "fence", lambda _: (fenced.append(region.now), (7, []))[1])

    class Partitioned(Memory):  # every read of the watcher items, once cut off
        def read(self, name: str) -> Any:
            self.cut()
            return super().read(name)

        def all(self) -> Any:
            self.cut()
            return super().all()

        def cut(self) -> None:
            if region.now > cut_at:
                raise NoMajorityError("the control table x has no majority: us-east-1 answered 500")

    def step(self: Watcher) -> Decision:
        if region.now > cut_at:
            raise NoMajorityError("the control table x has no majority: us-east-1 answered 500")
        return Decision(region.now, WatchAction.NONE, "healthy", REGION, {}, 0)

    monkeypatch.setattr(lambda_watcher, "WatchStates", Partitioned())
    monkeypatch.setattr(Watcher, "step", step)
    monkeypatch.setattr(
        lambda_watcher, "Isolation", functools.partial(Isolation, clock=lambda: region.now)
    )
    # evaluations take no time on the test's clock: every wait is the interval
    monkeypatch.setattr(lambda_watcher.clock, "monotonic", lambda: region.now)
    manifest = fake_manifest(TOPOLOGY)
    deployment = lambda_watcher.Deployment(
        TOPOLOGY, manifest, lambda_watcher.Clients(endpoints=manifest.endpoints)
    )
    period = WATCHER_SCHEDULE.period_seconds
    for minute in range(4):
        region.now = start + minute * period
        context = Context(period + INTERVAL + lambda_watcher.MARGIN_SECONDS)

        def sleep(seconds: float, context: Context = context) -> None:
            context.left -= seconds
            region.now += seconds

        lambda_watcher.watch(
            REGION,
            context,
            deployment=deployment,
            sleep=sleep,
            emit=lambda _: None,
            cadence=cadence,
        )
        if fenced:
            return fenced[0] - cut_at
    raise AssertionError(f"{REGION} never fenced itself under the {cadence} cadence")


def test_a_partitioned_active_region_fences_itself_within_the_stated_two_writer_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window isolation.py states, shown: under the sentinel cadence the active region's own
    watcher (calm, one evaluation a minute) sees the partition up to a minute after it began,
    and its region stops writing ``P + lease + I`` after the cut (130 s), where every watcher
    evaluating every interval stopped it ``2I + lease`` after (80 s). The standbys' sentinel
    may write ``(threshold - 1) * I`` after the cut (20 s): two writers for up to 110 s, not
    60 s (plus the check and the fence, zero here)."""
    period = WATCHER_SCHEDULE.period_seconds
    threshold = TOPOLOGY.policy.failure_threshold
    every_interval = stops_writing_after(WatcherCadence.MINUTE, monkeypatch)
    sentinel = stops_writing_after(WatcherCadence.SENTINEL, monkeypatch)
    assert every_interval == pytest.approx(2 * INTERVAL + LEASE, abs=0.01)  # 80 s
    assert sentinel == pytest.approx(period + LEASE + INTERVAL, abs=0.01)  # 130 s
    two_writers = sentinel - (threshold - 1) * INTERVAL
    assert two_writers == pytest.approx(110.0, abs=0.01)
    assert two_writers - (every_interval - (threshold - 1) * INTERVAL) == pytest.approx(
        50, abs=0.01
    )
