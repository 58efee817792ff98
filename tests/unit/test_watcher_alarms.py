"""Which regions' alarms an evaluation reads (:mod:`controller.watchers.signals`): one
``DescribeAlarms`` per calm evaluation, and every decision the same as with every region's alarms.

Only the I/O is replaced: the status read answers from a scenario (which regions answer, which
alarms fire) and counts a ``DescribeAlarms`` for each region whose alarms the manifest it was
given still names (``alarm_states`` makes one call per region with names, none without); the
control table's desired state and switch, the reconciler and the executor (which records the
target).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from controller import health
from controller.aws import Clients
from controller.controltable.desired import Desired
from controller.controltable.glance import Glance
from controller.controltable.journal import Journal, Run, RunStatus
from controller.health import Health, RegionStatus, Signals, StatusReport
from controller.topology import Topology, load
from controller.topology.manifest import Manifest
from controller.watchers import signals
from controller.watchers import watcher as watchers
from controller.watchers.watcher import Watcher
from tests.kit.manifests import fake_manifest
from tests.kit.paths import EXAMPLE

PRIMARY, STANDBY, OTHER = "us-east-1", "us-west-2", "eu-west-1"


@dataclass
class World:
    """What the regions would answer: who does not answer, whose alarms fire, the active one."""

    topology: Topology
    active: str = PRIMARY
    down: set[str] = field(default_factory=set)
    firing: set[str] = field(default_factory=set)
    http_failing: set[str] = field(default_factory=set)
    describe_alarms: list[int] = field(default_factory=list)
    started: list[str] = field(default_factory=list)

    def status(self, topology: Topology, manifest: Manifest, *_: Any, **__: Any) -> StatusReport:
        """A signals read as :func:`controller.health.status` makes it, from this world."""
        regions, calls = {}, 0
        for r in topology.regions.all:
            if r in self.down:
                regions[r] = RegionStatus(r, False, Health.UNREACHABLE)
                continue
            named = [a for c in manifest.regions[r].components.values() for a in c.alarms]
            calls += 1 if named else 0
            fired = tuple(sorted(a for a in named if r in self.firing))
            http_ok = r not in self.http_failing
            bad = bool(fired) or not http_ok
            regions[r] = RegionStatus(
                r,
                True,
                Health.UNHEALTHY if bad else Health.HEALTHY,
                mode="active" if r == self.active else "standby",
                signals=Signals(alarms_firing=fired, http_ok=http_ok),
            )
        self.describe_alarms.append(calls)
        return StatusReport(topology.app, self.active, regions)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World(load(EXAMPLE))
    monkeypatch.setattr(health, "status", w.status)
    monkeypatch.setattr(
        Journal,
        "glance",
        lambda self, default: Glance(Desired(w.active, 0), None, {"paused": False}, None),
    )
    monkeypatch.setattr(Watcher, "_reconcile", lambda self, decision, returning: decision)
    return w


def with_alarms(manifest: Manifest) -> Manifest:
    """``manifest`` with an alarm on each of its components (as deployed: several a function)."""
    regions = {
        r: regional.model_copy(
            update={
                "components": {
                    c: ref.model_copy(update={"alarms": [f"{ref.name}-errors-high"]})
                    for c, ref in regional.components.items()
                }
            }
        )
        for r, regional in manifest.regions.items()
    }
    return manifest.model_copy(update={"regions": regions})


def watcher(world: World, topology: Topology | None = None) -> Watcher:
    topology = topology or world.topology
    manifest = with_alarms(fake_manifest(topology))

    class Executor:
        def execute(self, plan: Any, **_: Any) -> Any:
            world.started.append(plan.target)
            run = Run("run-1", plan, RunStatus.COMPLETED, "watcher", 0.0, 0.0)
            return type("Result", (), {"run": run})()

    return Watcher(
        topology,
        manifest,
        Clients(endpoints=manifest.endpoints),
        executor=Executor(),  # type: ignore[arg-type]
    )


def every_alarm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher before: every region's alarms at every evaluation."""
    monkeypatch.setattr(
        signals, "alarm_regions", lambda topology, active, **_: frozenset(topology.regions.all)
    )


def test_a_calm_evaluation_reads_the_alarms_of_the_active_region_only(world: World) -> None:
    """One DescribeAlarms per calm evaluation (three before: one per region); a fresh watcher,
    which does not know the active region yet, reads every region's the first time, a deployed
    one carries the active region over from its item."""
    w = watcher(world)
    actions = [w.step().action for _ in range(4)]
    assert actions == ["none"] * 4
    assert world.describe_alarms == [3, 1, 1, 1]
    carried = watcher(world)
    carried.restore(w.remember(OTHER, w.step()))
    world.describe_alarms.clear()
    carried.step()
    assert world.describe_alarms == [1]


def scenario(world: World, steps: Iterator[Callable[[World], None]], w: Watcher) -> list[Any]:
    out = []
    for change in steps:
        change(world)
        d = w.step()
        out.append((d.action, d.target))
    return out


def outage_with_a_sick_standby() -> Iterator[Callable[[World], None]]:
    """Calm, then the primary goes down while the first standby's alarm fires: the target
    must be the other standby."""
    yield lambda w: w.firing.add(STANDBY)
    yield lambda w: None
    yield lambda w: w.down.add(PRIMARY)
    yield lambda w: None
    yield lambda w: None


def test_a_standby_whose_alarm_fires_while_unread_is_not_the_failover_target(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A standby's alarms are not read while calm, but are read by the evaluation that may
    choose a target: the decisions are those of a watcher that reads every alarm every time."""
    got = scenario(world, outage_with_a_sick_standby(), watcher(world))
    assert got[2:] == [("watch", None), ("watch", None), ("failover", OTHER)], got
    assert world.started == [OTHER]
    # the primary down: no call to it; its alarms alone until the evaluation that may choose
    assert world.describe_alarms == [3, 1, 0, 0, 2]

    before = World(load(EXAMPLE))
    monkeypatch.setattr(health, "status", before.status)
    every_alarm(monkeypatch)
    assert scenario(before, outage_with_a_sick_standby(), watcher(before)) == got
    assert before.describe_alarms == [3, 3, 2, 2, 2]


def test_an_active_region_changed_by_another_watcher_has_its_alarms_read_again(
    world: World,
) -> None:
    """Another watcher failed over between two evaluations: the evaluation read the old active
    region's alarms only, so it reads again, and the new active region's firing alarm counts
    (with its failing HTTP probe: a quorum of two, bad)."""
    w = watcher(world)
    assert w.step().action == "none"
    world.active = STANDBY
    world.firing.add(STANDBY)
    world.http_failing.add(STANDBY)
    d = w.step()
    assert (d.action, d.active, d.consecutive_bad) == ("watch", STANDBY, 1)
    assert world.describe_alarms == [3, 1, 3]


def test_auto_failback_reads_the_primarys_alarms_every_evaluation_a_firing_one_holds_it_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``auto_failback``, the primary must be good for the threshold's evaluations in a
    row: its alarms are read every time, and its firing alarm keeps the application away."""
    policy = world.topology.policy.model_copy(update={"auto_failback": True})
    topology = world.topology.model_copy(update={"policy": policy})
    world.active = STANDBY
    world.firing.add(PRIMARY)
    caught_up = SimpleNamespace(ok=True, detail="")
    monkeypatch.setattr(watchers, "lag_check", lambda *_, **__: caught_up)
    w = watcher(world, topology)
    reasons = [w.step().reason for _ in range(5)]
    assert all("primary good 0/" in r for r in reasons), reasons
    assert world.describe_alarms == [3, 2, 2, 2, 2]
    world.firing.clear()
    assert [w.step().action for _ in range(3)][-1] == "failback"
    assert world.started == [PRIMARY]
