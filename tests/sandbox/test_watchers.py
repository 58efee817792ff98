"""The watchers, region by region, on the emulator: the deployed handler runs in each region's
failure domain, so a region's outage takes its watcher with it; nobody types a command.

- hang the primary: a watcher outside the primary fails over (the run's owner names its region);
  heal the primary: it ends fenced within three evaluations of every watcher outside it;
- kill the region whose watcher holds the lease mid-run: another region's watcher finishes the
  run once the lease has expired, and the end state is an uninterrupted run's;
- ``failover automation pause`` stops every watcher's failovers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller import clock
from controller.actions import mode as modes
from controller.aws import Clients
from controller.controltable.journal import Journal, Run, RunStatus
from controller.controltable.table import ControlTable
from controller.controltable.watchstate import WatchStates
from controller.interfaces import views
from controller.watchers.cadence import Role
from controller.watchers.isolation import cut_off_parameter
from sandbox import Sandbox
from sandbox import watchers as watcher_procs
from tests.kit.emulator import (
    fenced_everywhere,
    mapping_enabled,
    observer,
    primary_record,
    region_host,
    rules_enabled,
    watched_sandbox,
)
from tests.kit.paths import EXAMPLE
from tests.kit.polling import until
from tests.kit.topologies import short_policy

pytestmark = pytest.mark.sandbox

PRIMARY, STANDBY, OTHER = "us-east-1", "us-west-2", "eu-west-1"
#: The regions whose watchers run on while the primary hangs.
OUTSIDE = (STANDBY, OTHER)
#: The sandbox's clock runs K times the wall's pace (:mod:`controller.clock`): every period
#: below is AWS seconds, and takes 1/K of its time on the wall.
K = 5.0
INTERVAL = 4.0
LEASE = 24.0
#: Bad evaluations in a row before a watcher fails the primary over.
THRESHOLD = 2
#: Seconds between two scheduled invocations: short, so that every test crosses invocations.
SCHEDULE = 30.0


@pytest.fixture(scope="module")
def box(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Its own sandbox: the example with a short watch interval and lease."""
    tmp = tmp_path_factory.mktemp("watchers")
    spec = short_policy(EXAMPLE, tmp)
    data = yaml.safe_load(spec.read_text())
    data["policy"].update(
        {
            "watch_interval_seconds": INTERVAL,
            "lease_seconds": LEASE,
            "failure_threshold": THRESHOLD,
            "cooldown_seconds": 60,
        }
    )
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    state_dir = tmp / ".failover"
    with watched_sandbox(spec, state_dir, time_scale=K) as box:
        yield box


def watching(box: Sandbox, regions: list[str] | None = None) -> Iterator[Sandbox]:
    """The sandbox reset, the watchers of ``regions`` (default: every region's) started and
    seen evaluating; stopped after."""
    box.reset()
    box.model_round_trip(0)  # a test that failed half-way may have left it on
    box.start_watchers(regions, schedule=SCHEDULE)
    states = WatchStates(ControlTable(box.clients, box.manifest))
    until(
        lambda: set(states.all()) >= set(regions or box.topology.regions.all),
        60,
        "every watcher started evaluates",
    )
    yield box
    box.stop_watchers()


@pytest.fixture
def watched(box: Sandbox) -> Iterator[Sandbox]:
    """The sandbox reset, its watchers started and seen evaluating in every region."""
    yield from watching(box)


@pytest.fixture
def primary_watched(box: Sandbox) -> Iterator[Sandbox]:
    """The sandbox reset, only the primary's watcher started (no other ever ran since the
    reset, so none can have failed it over) and seen evaluating."""
    yield from watching(box, [PRIMARY])


def evaluations(box: Sandbox, regions: tuple[str, ...]) -> dict[str, int]:
    """How many evaluations the watcher of each of ``regions`` has logged so far."""
    return {r: len(watcher_procs.decisions(box.state_dir, [r])) for r in regions}


def evaluated_since(box: Sandbox, before: dict[str, int], count: int) -> bool:
    """True once the watcher of every region of ``before`` (an :func:`evaluations`) has logged
    ``count`` evaluations more."""
    now = evaluations(box, tuple(before))
    return all(now[r] >= n + count for r, n in before.items())


def watcher_function(box: Sandbox, region: str) -> str:
    """The name of ``region``'s watcher function, as deployed."""
    watcher = box.manifest.regions[region].watcher
    assert watcher is not None
    return watcher.function


def journal(box: Sandbox) -> Journal:
    return Journal(observer(box), box.manifest)


def finished_run(box: Sandbox) -> Run | None:
    runs = journal(box).runs()
    return next((r for r in runs if r.status is RunStatus.COMPLETED), None)


def region_of(owner: str) -> str:
    """``watcher@<region>/<request id>`` -> region."""
    assert owner.startswith("watcher@"), owner
    return owner.removeprefix("watcher@").split("/")[0]


def mode(box: Sandbox, region: str) -> str:
    """``region``'s mode parameter, read back."""
    name = box.manifest.regions[region].mode_parameter
    return str(box.clients.client("ssm", region).get_parameter(Name=name)["Parameter"]["Value"])


def cadences(box: Sandbox, region: str) -> set[str]:
    """The cadences ``region``'s watcher has evaluated in so far."""
    return {str(d["cadence"]) for d in watcher_procs.decisions(box.state_dir, [region])}


def running(box: Sandbox) -> Run | None:
    """The current run, once it has finished a step and while it runs (else None)."""
    current = journal(box).current_run_id()
    run = journal(box).run(current) if current else None
    return (
        run
        if run
        and run.status is RunStatus.RUNNING
        and any(s.state.finished for s in run.steps.values())
        else None
    )


def test_a_hung_primary_is_failed_over_by_a_watcher_outside_it_and_fenced_when_it_returns(
    watched: Sandbox,
) -> None:
    box = watched
    # The primary's watcher first evaluates calm (once an invocation, never the sentinel), as
    # the last assertion reads: its first evaluation may not be, on a loaded machine (a read
    # that outlived its deadline makes it vigilant for the rest of its minute).
    until(lambda: Role.CALM in cadences(box, PRIMARY), 120, "the primary's watcher evaluates calm")
    box.fail(PRIMARY, "hang")
    run = until(lambda: finished_run(box), 120, "a watcher fails over the hung primary")
    assert run.plan.source == PRIMARY and run.plan.target == STANDBY
    assert region_of(run.owner) in (STANDBY, OTHER)  # never the hung region's own watcher
    assert journal(box).desired(PRIMARY).active == STANDBY
    before = evaluations(box, OUTSIDE)
    box.heal(PRIMARY)
    # Counted in evaluations, not seconds (a loaded machine stretches both the interval and
    # each evaluation): the one under way at the heal may have read the primary still hung,
    # then each watcher outside it evaluates three times with the primary answering.
    until(
        lambda: evaluated_since(box, before, 1 + 3),
        120,
        "every watcher outside the primary evaluates three times after the heal",
    )
    assert fenced_everywhere(box, PRIMARY) == {}, "fenced within three evaluations"
    assert mode(box, STANDBY) == "active"
    decisions = watcher_procs.decisions(box.state_dir, box.topology.regions.all)
    assert any(
        d["action"] == "failover" and d["watcher_region"] == region_of(run.owner) for d in decisions
    )
    # Detected at the interval cadence: the acting watcher's evaluation just before its failover
    # had counted at least the threshold's bad ones but one (more by one for each flap it saw
    # before the hang, up to twice the threshold: a loaded machine's slow read is one), and the
    # bad ones in a row before the failover counted up to it, none of them the end of a calm
    # invocation. (Two of its invocations may overlap, the sentinel's chain and the minute's
    # schedule: no reserved concurrency, infra/watchers.py; each counts in its own state, so
    # their evaluations interleave: a fresh-clone run saw 1, 1, then the failover.)
    acting = [d for d in decisions if d["watcher_region"] == region_of(run.owner)]
    at = next(i for i, d in enumerate(acting) if d["action"] == "failover")
    threshold = box.topology.policy.failure_threshold
    before = list(itertools.takewhile(lambda d: d["action"] == "watch", reversed(acting[:at])))
    last = before[0]["consecutive_bad"] if before else 0
    assert threshold - 1 <= last <= 2 * threshold - 1, acting[: at + 1]
    assert set(range(1, last + 1)) <= {d["consecutive_bad"] for d in before}, acting[: at + 1]
    assert {d["cadence"] for d in before} <= {Role.SENTINEL, Role.VIGILANT}
    # ... while the active region's own watcher, never the sentinel, evaluated once an invocation
    # (until the failover: a standby then, its watcher may become the sentinel)
    own = {
        d["cadence"]
        for d in decisions
        if d["watcher_region"] == PRIMARY and float(d["ts"]) < run.created
    }
    assert Role.CALM in own and Role.SENTINEL not in own, own


def test_a_watcher_killed_with_its_region_mid_run_is_finished_by_another_region(
    watched: Sandbox,
) -> None:
    box = watched
    # Make the run's owner a region other than its target (so that killing it leaves the
    # target up): only OTHER's watcher watches when the primary hangs; STANDBY's starts later.
    box.stop_watchers()
    box.start_watchers([OTHER, PRIMARY], schedule=SCHEDULE)
    # A hung source costs a run one timeout, and the rest takes about a second on loopback:
    # the target answers as a distant region does, so that the run is seen mid-way.
    box.model_round_trip(0.3, [STANDBY])
    box.fail(PRIMARY, "hang")
    try:
        run = until(lambda: running(box), 120, "OTHER's watcher starts a failover")
    except AssertionError:
        seen = watcher_procs.decisions(box.state_dir, [OTHER])
        raise AssertionError(
            [(d["action"], d["reason"][:200]) for d in seen[-8:]]
            + [r.to_dict() for r in journal(box).runs()]
        ) from None
    assert region_of(run.owner) == OTHER
    box.fail(OTHER, "down")  # its watcher dies with it, holding the lease mid-run
    held = journal(box).holder()
    assert held is not None and held.owner == run.owner
    assert journal(box).run(run.id).status is RunStatus.RUNNING
    box.start_watchers([STANDBY], schedule=SCHEDULE)
    done = until(
        lambda: (r := journal(box).run(run.id)).status is not RunStatus.RUNNING and r,
        120,
        "another region's watcher finishes the run",
    )
    box.model_round_trip(0, [STANDBY])
    assert done.status is RunStatus.COMPLETED, done.status
    assert region_of(done.owner) == STANDBY
    assert done.updated >= held.expires_at  # taken over only after the lease expired
    # The end state is an uninterrupted run's: the target active, its traffic on it.
    assert journal(box).desired(PRIMARY).active == STANDBY
    assert mode(box, STANDBY) == "active"
    assert all(s.state.finished for s in done.steps.values())
    assert all(mapping_enabled(box, STANDBY).values())
    assert all(rules_enabled(box, STANDBY).values())
    assert primary_record(box).rstrip(".") == region_host(box, STANDBY)
    box.heal(OTHER)
    box.heal(PRIMARY)
    try:
        until(lambda: fenced_everywhere(box, PRIMARY) == {}, 120, "the returning primary fenced")
    except AssertionError:  # what is still unfenced, and what the watchers last decided
        seen = watcher_procs.decisions(box.state_dir, list(box.topology.regions.all))
        raise AssertionError(
            [fenced_everywhere(box, PRIMARY)]
            + [(d["watcher_region"], d["action"], d["reason"][:160]) for d in seen[-12:]]
        ) from None
    assert mode(box, OTHER) == "standby"


def test_paused_automation_stops_every_watchers_failover_but_not_their_evaluations(
    watched: Sandbox, cli: Callable[..., Any]
) -> None:
    box = watched
    assert (
        cli("automation", "pause", "--reason", "drill", "--manifest", box.manifest_path).code == 0
    )
    before = evaluations(box, OUTSIDE)
    box.fail(PRIMARY, "hang")
    states = WatchStates(ControlTable(box.clients, box.manifest))

    def paused(region: str) -> bool:
        """The last evaluation ``region``'s watcher wrote in the control table says paused."""
        state = states.all().get(region)
        return state is not None and state.decision.get("action") == "paused"

    # Twice the failure threshold of evaluations with the primary hung (after the one under
    # way): unpaused, each watcher would have failed over.
    until(
        lambda: evaluated_since(box, before, 1 + 2 * THRESHOLD) and all(map(paused, OUTSIDE)),
        120,
        "every watcher outside the primary keeps evaluating, paused",
    )
    assert journal(box).runs() == []
    assert journal(box).desired(PRIMARY).active == PRIMARY
    shown = cli("watchers", "--json", "--manifest", box.manifest_path)
    assert shown.code == 0, shown.err  # the hung primary's watcher is stopped, not yet silent
    rows = {r["region"]: r for r in json.loads(shown.out)["watchers"]}
    for region in (STANDBY, OTHER):
        assert rows[region]["last"]["decision"]["action"] == "paused"
        assert rows[region]["last"]["owner"].startswith(f"watcher@{region}/")
        assert Path(rows[region]["log_file"]).exists()
        assert (
            rows[region]["log_group"] == f"/aws/lambda/{box.topology.app}-failover-watcher-{region}"
        )
    page = views.watchers_view(box.topology, box.manifest, box.clients, None)["regions"]
    for region in (STANDBY, OTHER):  # the status page shows what `failover watchers` shows
        assert page[region]["watcher"]["decision"]["action"] == "paused"
        assert page[region]["watcher"]["owner"].startswith(f"watcher@{region}/")
        assert page[region]["silent"] is False
    box.heal(PRIMARY)


def test_each_invocation_evaluates_inside_the_shortened_schedule_it_is_told(
    watched: Sandbox,
) -> None:
    """The deployed function is told a period of 60 s (its rule's rate); the sandbox's schedule,
    shortened to SCHEDULE seconds, tells it that period instead: each invocation stops
    evaluating inside it, so invocations follow one another instead of piling up beside one
    another (told 60 s, each would evaluate for most of a minute, four at once)."""
    box = watched
    since = clock.now()

    def ended() -> list[list[float]]:
        """The evaluation times of each invocation that began after ``since``, was the sentinel
        throughout (the watcher that evaluates every interval; the others evaluate once when
        calm, and a watcher restarted hands the role over mid-invocation) and has ended: its
        region's watcher was invoked again since (one at a time: reserved concurrency 1)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for d in watcher_procs.decisions(box.state_dir, box.topology.regions.all):
            out.setdefault(d["owner"], []).append(d)
        by_region: dict[str, list[list[dict[str, Any]]]] = {}
        for owner, ds in out.items():
            by_region.setdefault(owner.split("@", 1)[1].split("/", 1)[0], []).append(ds)
        return sorted(
            (
                [float(d["ts"]) for d in ds]
                for invocations in by_region.values()
                for ds in sorted(invocations, key=lambda ds: min(float(d["ts"]) for d in ds))[:-1]
                if min(float(d["ts"]) for d in ds) >= since
                and all(d.get("cadence") == Role.SENTINEL for d in ds)
            ),
            key=min,
        )

    invocations = until(lambda: len(got := ended()) >= 2 and got, 150, "two ended sentinels")
    for times in invocations:
        assert max(times) - min(times) < SCHEDULE, times
    # It evaluated at its interval, not once per scheduled invocation: each evaluation a link
    # of its chain (controller.watchers.chain), an invocation of its own.
    evaluated = sorted(t for times in invocations for t in times)
    assert any(b - a < SCHEDULE / 2 for a, b in itertools.pairwise(evaluated)), invocations


def test_sandbox_up_starts_the_watchers_and_no_watchers_leaves_them_out(
    tmp_path: Path, sandbox_env: None, cli: Callable[..., Any]
) -> None:
    state = tmp_path / ".failover"
    import os

    os.environ["FAILOVER_STATE_DIR"] = str(state)
    try:
        got = cli("sandbox", "up", "--no-watchers", "--spec", EXAMPLE)
        assert got.code == 0, got.err
        assert Sandbox.attach(state).state.watchers == {}
        assert "watchers: none" in got.out
        assert cli("sandbox", "down").code == 0
        got = cli("sandbox", "up", "--spec", EXAMPLE)
        assert got.code == 0, got.err
        box = Sandbox.attach(state)
        assert set(box.state.watchers) == set(box.topology.regions.all)
        assert all(w["alive"] for w in box.describe()["watchers"].values())
        pids = dict(box.state.watchers)
    finally:
        cli("sandbox", "down")
        os.environ.pop("FAILOVER_STATE_DIR", None)
    assert not any(watcher_procs.is_ours(pid, region) for region, pid in pids.items())


def test_a_deployed_watcher_reads_the_manifest_pulumi_wrote_into_the_control_table(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program writes its manifest output into the control table (``manifest`` item); the
    watcher reads it there, as on AWS: the sandbox writes nothing of its own for it."""
    from controller import contract
    from controller.topology.manifest import load_manifest
    from controller.watchers.lambda_entry import load_deployment
    from sandbox.state import DEPLOYED_FILE

    box.reset()
    monkeypatch.setenv(contract.ENV_WATCHER_SPEC, box.state.spec)
    monkeypatch.setenv(contract.ENV_WATCHER_CONTROL_TABLE, box.manifest.control.table)
    monkeypatch.setenv(contract.ENV_WATCHER_CONTROL_REGIONS, ",".join(box.manifest.control.regions))
    monkeypatch.delenv(contract.ENV_WATCHER_MANIFEST, raising=False)
    # the standard variable stands for AWS's own endpoint of the control table's region
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL_DYNAMODB", box.manifest.endpoints[box.manifest.control.regions[0]]
    )
    got = load_deployment(STANDBY)
    deployed = load_manifest(box.state_dir / DEPLOYED_FILE)  # the program's output, as written
    # the program's output names no clock; the sandbox's copy adds its own (scaled) one
    assert deployed.clock is not None and got.manifest.clock is None
    assert got.manifest == deployed.model_copy(update={"clock": None})
    assert got.manifest.endpoints == box.manifest.endpoints  # so it calls the emulator


def test_a_partitioned_primary_is_failed_over_from_outside_and_its_own_watcher_takes_no_lease(
    watched: Sandbox,
) -> None:
    box = watched
    box.fail(PRIMARY, "partition")  # its watcher runs on, cut off with it
    try:
        run = until(lambda: finished_run(box), 120, "a watcher outside the partition fails over")
        assert region_of(run.owner) in (STANDBY, OTHER)
        assert journal(box).desired(PRIMARY).active == STANDBY
        held = journal(box).holder()
        assert held is None or region_of(held.owner) != PRIMARY
    finally:
        box.heal(PRIMARY)
    mine = [
        d
        for d in watcher_procs.decisions(box.state_dir, [PRIMARY])
        if d["action"] in ("failover", "failback", "reconcile")
    ]
    assert all(d["ts"] < run.created for d in mine), mine  # it never acted while cut off


def inside(box: Sandbox, region: str) -> Clients:
    """Clients of a caller in ``region`` (its home region): a partition lets them through."""
    return Clients(endpoints=box.manifest.endpoints, home=region)


def read_inside(box: Sandbox, region: str, name: str) -> str | None:
    """An SSM parameter of ``region``, read from inside it."""
    return modes.get(inside(box, region), region, [name]).get(name)


def self_fenced(box: Sandbox, region: str) -> bool:
    """``region``, read from inside: every regional component and the region's mode fenced."""
    mode = read_inside(box, region, box.manifest.regions[region].mode_parameter)
    return mode == "fenced" and fenced_everywhere(box, region, inside=True) == {}


def decided(box: Sandbox, region: str, action: str, since: float) -> list[dict[str, Any]]:
    return [
        d
        for d in watcher_procs.decisions(box.state_dir, [region])
        if d["action"] == action and d["ts"] >= since
    ]


def acted(box: Sandbox, since: float) -> list[tuple[str, str, str, str]]:
    """What any watcher decided since ``since`` (AWS s) but to wait or fence itself: (region,
    time, action, reason)."""
    quiet = {"none", "cooldown", "self_fence"}
    return [
        (d["watcher_region"], d["time"], d["action"], d["reason"])
        for d in watcher_procs.decisions(box.state_dir, box.topology.regions.all)
        if d["ts"] >= since and d["action"] not in quiet
    ]


def test_a_partitioned_primary_fences_itself_once_cut_off_longer_than_the_lease(
    watched: Sandbox,
) -> None:
    """Issue 26, item 13: partitioned, the old primary kept calling itself active to its own
    clients while the others failed over (two writers for the whole partition). Its own watcher
    fences it once cut off from the control table's majority for longer than the lease."""
    box = watched
    assert not self_fenced(box, PRIMARY)
    cut = clock.now()
    box.fail(PRIMARY, "partition")  # its watcher runs on, cut off with it
    try:
        run = until(lambda: finished_run(box), 120, "a watcher outside the partition fails over")
        assert region_of(run.owner) in (STANDBY, OTHER)
        until(lambda: self_fenced(box, PRIMARY), 120, "the partitioned primary fences itself")
        marker = cut_off_parameter(box.topology, box.manifest, PRIMARY)
        since = float(read_inside(box, PRIMARY, marker) or 0)  # when its watcher saw the cut
        [fence, *_] = until(  # logged once its evaluation has ended, after the fence
            lambda: decided(box, PRIMARY, "self_fence", cut), 30, "the self-fence is logged"
        )
        assert cut <= since, "the cut was counted from this partition, not an older one"
        assert fence["ts"] - since > LEASE, "never before the lease"
        assert "serves again only when the control table says so" in fence["reason"]
        window = fence["ts"] - run.created
        print(
            f"cut at 0 s; {run.plan.target} taking over from {run.created - cut:.1f} s; "
            f"{PRIMARY} fenced at {fence['ts'] - cut:.1f} s (lease {LEASE:g} s, interval "
            f"{INTERVAL:g} s): two writers for at most {max(0.0, window):.1f} s"
        )
        # It stays fenced while cut off: later evaluations fence again, never activate.
        until(
            lambda: len(decided(box, PRIMARY, "self_fence", cut)) >= 3,
            60,
            "the primary's watcher keeps evaluating while cut off",
        )
        assert self_fenced(box, PRIMARY)
    finally:
        box.heal(PRIMARY)
    # Joined again: the control table names the standby, the primary stays fenced everywhere.
    assert journal(box).desired(PRIMARY).active == STANDBY
    until(lambda: fenced_everywhere(box, PRIMARY) == {}, 30, "the primary stays fenced")
    assert mode(box, STANDBY) == "active"


def test_a_self_fenced_region_serves_again_only_once_the_control_table_says_so(
    primary_watched: Sandbox,
) -> None:
    """Only the primary's watcher runs: nobody fails over. Cut off past the lease, the primary
    fences itself and stays fenced while the partition lasts; joined again, the control table
    still names it active, and the reconciler (under the lease) makes it serve again.

    (A watcher fences its region with the deployment its execution environment last read: a
    cold one cut off cannot read the manifest from the control table. The fixture has seen the
    primary's watcher evaluate once, so it has read it.)"""
    box = primary_watched
    cut = clock.now()
    box.fail(PRIMARY, "partition")
    try:
        until(lambda: self_fenced(box, PRIMARY), 120, "the partitioned primary fences itself")
        until(
            lambda: len(decided(box, PRIMARY, "self_fence", cut)) >= 3,
            60,
            "the primary's watcher keeps evaluating while cut off",
        )
        assert self_fenced(box, PRIMARY), "nothing un-fences it while it is cut off"
        runs = journal(box).runs()
        # nobody failed over; else say who did (a run names its owner and decision time)
        assert journal(box).desired(PRIMARY).active == PRIMARY, (runs, acted(box, cut - LEASE))
        assert runs == []
    finally:
        healed = clock.now()
        box.heal(PRIMARY)
    until(
        lambda: mode(box, PRIMARY) == "active" and all(mapping_enabled(box, PRIMARY).values()),
        60,
        "the primary serves again once the control table answers",
    )
    # by the reconciler, under the lease: its evaluation is logged once it has ended, after the
    # fixes the lines above saw (read at once, the log once lacked it by a fraction of a second)
    until(lambda: decided(box, PRIMARY, "reconcile", healed), 30, "the reconcile is logged")
    assert read_inside(box, PRIMARY, cut_off_parameter(box.topology, box.manifest, PRIMARY)) == "0"
