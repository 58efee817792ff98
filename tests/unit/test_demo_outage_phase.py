"""The demo's timing at two time scales: the outage at a phase of the sentinel's evaluations (the
same phase is the same outage: ``bench/detect.py`` rehearses each of its outages so), and when
the traffic moved, read by polls whose wall pace is not the same in AWS seconds at each scale."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from controller import clock
from controller.topology import load
from sandbox import demo
from sandbox import watchers as watcher_procs
from sandbox.loadgen import Sample
from tests.kit.paths import EXAMPLE

#: AWS seconds per wall second: the example's 10 s interval is one wall second.
K = 10.0


@pytest.fixture
def scaled() -> Iterator[None]:
    before = clock.current()
    clock.use(clock.Clock(origin=time.time(), scale=K))
    try:
        yield
    finally:
        clock.use(before)


def logged(state_dir: Path, region: str, ts: float, cadence: str) -> None:
    """One evaluation in ``region``'s watcher log, as the deployed function writes it."""
    path = watcher_procs.log_path(state_dir, region)
    path.parent.mkdir(parents=True, exist_ok=True)
    line: dict[str, Any] = {
        "message": "evaluation",
        "watcher_region": region,
        "action": "none",
        "ts": ts,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
        "cadence": cadence,
    }
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def test_the_outage_starts_its_phase_after_the_sentinels_next_evaluation_is_due(
    tmp_path: Path, scaled: None
) -> None:
    topology = load(EXAMPLE)  # us-east-1 fails; us-west-2 is the first a failover picks
    assert topology.policy.watch_interval_seconds == 10
    now = clock.now()
    logged(tmp_path, "us-west-2", now - 33.0, "sentinel")
    logged(tmp_path, "us-west-2", now - 23.0, "sentinel")  # its next are due at now - 3, + 7
    # eu-west-1 says sentinel too (it may, for a minute, when us-west-2's item looks stale):
    # not the one the outage is timed on
    logged(tmp_path, "eu-west-1", now - 6.0, "sentinel")
    box = SimpleNamespace(topology=topology, state_dir=tmp_path)
    demo._at_phase(box, "us-east-1", 4.0)  # type: ignore[arg-type]
    # now - 3 + 4 = now + 1 is the first such moment still ahead (eu-west-1's: now + 8)
    assert now + 1.0 <= clock.now() < now + 7.5


class Moving:
    """Route 53's fresh answer, then the clients' resolvers, move to the standby at set times."""

    def __init__(self, answered_at: float, shifted_at: float) -> None:
        self.answered_at, self.shifted_at = answered_at, shifted_at
        self.resolvers = self  # plane.router.resolvers

    def resolve(self) -> str:
        return "us-west-2" if clock.now() >= self.answered_at else "us-east-1"

    def answers(self) -> list[str]:
        return ["us-west-2" if clock.now() >= self.shifted_at else "us-east-1"]


def test_traffic_moved_in_the_middle_of_the_polls_around_it_not_at_the_first_that_saw_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wall = [1000.0]
    before = clock.current()
    clock.use(clock.Clock(origin=1000.0, scale=K, wall_time=lambda: wall[0]))
    try:
        outage = clock.now()  # polls every 0.2 wall s: at 0, 2, 4, 6, 8, 10 AWS s after it
        moving = Moving(answered_at=outage + 5.0, shifted_at=outage + 9.0)
        monkeypatch.setattr(demo, "Resolver", lambda *args, **kwargs: moving)
        # the demo's poll pace is wall time: each sleep moves the fake wall on
        monkeypatch.setattr(time, "sleep", lambda seconds: wall.__setitem__(0, wall[0] + seconds))
        plane: Any = SimpleNamespace(
            clients=None, resolver=SimpleNamespace(manifest=None), router=moving
        )
        load_gen: Any = SimpleNamespace(samples=[])
        shifted, answered = demo._until_shifted(
            plane, "us-east-1", 60.0, lambda *a: None, load_gen, outage, "failing over"
        )
    finally:
        clock.use(before)
    # seen at the polls of 6 and 10 (the first after each move): 4-6 and 8-10 bracket them
    assert answered == pytest.approx(outage + 5.0)
    assert shifted == pytest.approx(outage + 9.0)


class Answers:
    """A load generator's samples as the steady-load phase reads them: none for the first
    ``silent`` reads (the application's environments still cold), then one request served."""

    def __init__(self, silent: int) -> None:
        self.silent, self.reads = silent, 0

    @property
    def samples(self) -> list[Sample]:
        self.reads += 1
        return [] if self.reads <= self.silent else [Sample(0.0, 1.0, "read", "ok", 200, 1)]


def test_the_steady_load_lasts_until_a_client_was_served_not_only_its_seconds() -> None:
    """A fresh-clone run began the outage 32 AWS s in, before any request had ended (cold
    environments under load): the report's ``before`` held nothing."""
    answers = Answers(silent=4)
    demo._wait(0.0, "steady load", lambda *_: None, answers, served_within=3600.0)  # type: ignore[arg-type]
    assert answers.reads == 5  # read on until the first answer, and no longer


def test_an_application_that_serves_no_one_holds_the_steady_load_only_to_its_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = Answers(silent=10**9)
    with caplog.at_level("WARNING", logger="sandbox.demo"):
        demo._wait(0.0, "steady load", lambda *_: None, answers, served_within=0.3)  # type: ignore[arg-type]
    assert answers.reads >= 2  # it waited past its seconds for an answer that never came
    assert "steady load: no client served within" in caplog.text
