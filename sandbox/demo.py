"""``failover demo`` and ``failover drill``: the whole story on the emulator, with a report.

Called by the CLI. Sandbox up; the data plane; a steady load through the router; each region's
watcher (the deployed handler, in its region's failure domain: :mod:`sandbox.watchers`); the
primary fails (hung or killed), its own watcher with it; a watcher of another region detects it
and fails over; the load goes on; then the report (what the clients saw per phase, times to
detect and to shift, which region's watcher acted, each region's decisions, acknowledged writes
against the writes found in the new primary, and the RPO: each table's lag as the switching run
read it, the acknowledged writes missing from the new primary) as JSON and a PNG timeline.
Everything started is stopped.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import clock
from controller.contract import DEFAULT_TIME_SCALE, DEMO_AFTER_SECONDS, DEMO_RATE
from controller.controltable.journal import Journal, Run, RunStatus
from controller.controltable.rpo import to_plain
from controller.errors import FailoverError, UsageError
from controller.topology import Kind, load
from sandbox import demo_page
from sandbox import report as reports
from sandbox import watchers as watcher_procs
from sandbox.dataplane import DataPlane, DataPlaneSettings
from sandbox.lifecycle import Sandbox
from sandbox.loadgen import LoadGenerator
from sandbox.router import Resolver

log = logging.getLogger(__name__)

#: ``progress(phase, seconds_done, seconds_total, counts)`` for the CLI's live display.
Progress = Callable[[str, float, float, dict[str, int]], None]
#: The file in the state directory the CLI sends the demo's log records to (the report names it).
LOG_NAME = "demo.log"


@dataclass(frozen=True)
class DemoOptions:
    """How long each phase lasts (AWS seconds: the sandbox's clock runs ``time_scale`` times
    the wall's pace) and how the outage looks. The topology is deployed as it is: its policy,
    TTL, health checks and schedules are the ones AWS would run."""

    spec: Path
    state_dir: Path = Path(".failover")
    region: str | None = None  # default: the primary
    mode: str = "hang"
    warmup: float = 120.0
    outage_max: float = 900.0
    after: float = DEMO_AFTER_SECONDS
    #: The clients' requests per AWS second. Each one costs the emulator's API, a Lambda runtime
    #: process and DynamoDB some CPU, k times as often per wall second: at 40 a second and k = 10
    #: that load alone took most of two cores, and its CPU counted as AWS seconds (issue 25).
    rate: float = DEMO_RATE  # requests per AWS second: 10 a wall second at k = 5
    replication_lag: float = 0.0
    time_scale: float = DEFAULT_TIME_SCALE
    #: A client's retry budget (AWS seconds): longer than detection, the run and the TTL.
    client_deadline: float = 300.0
    #: The outage starts this many AWS seconds after an evaluation of the sentinel (the watcher
    #: that evaluates every interval) is due, once the warmup is over; None: when it is over.
    #: The same phase at two time scales is the same outage (``bench/detect.py``).
    outage_phase: float | None = None
    #: The live status page: its port (0: a free one; None: no page), and who is told its URL.
    page_port: int | None = 0
    on_page: Callable[[str], None] | None = None
    #: The report's chart (``demo-report.png``): matplotlib's import and drawing take about 3 s
    #: of CPU, which a bench that reads the figures only does without.
    chart: bool = True


@dataclass
class DemoResult:
    """The report and where it was written."""

    report: dict[str, Any]
    json_path: Path
    png_path: Path | None
    decisions: list[dict[str, Any]] = field(default_factory=list)


def check_options(options: DemoOptions) -> None:
    """Refuse what the demo cannot do, before anything starts (one line each, exit code 2).

    The outage region must be one of the topology's regions (not a control region of its own
    nor the global services); durations and the rate must be finite, the phases' and the rate
    positive (a phase of no load reports nothing), the replication lag 0 (synchronous) or more;
    the page's port a port.

    Raises
    ------
    UsageError
        An option names what the demo cannot do; nothing was started.
    SpecError
        The topology cannot be read.
    """
    numbers = {
        "--warmup": (options.warmup, "seconds of load before the outage, more than 0"),
        "--after": (options.after, "seconds of load after the shift, more than 0"),
        "--rate": (options.rate, "requests per AWS second, more than 0"),
        "--replication-lag": (
            options.replication_lag,
            "seconds of asynchronous replication, 0 (synchronous) or more",
        ),
    }
    for name, (value, wanted) in numbers.items():
        positive = name != "--replication-lag"
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise UsageError(f"{name} {value:g}: must be {wanted}")
    if not (math.isfinite(options.time_scale) and options.time_scale > 0):
        raise UsageError(f"--time-scale {options.time_scale:g}: must be a number above 0")
    if options.page_port is not None and not 0 <= options.page_port <= 65535:
        raise UsageError(f"--port {options.page_port}: must be 0 (a free port) to 65535")
    if options.region is not None:
        topology = load(options.spec)
        if options.region not in topology.regions.all:
            raise UsageError(
                f"--region {options.region}: not a region of {topology.app} "
                f"({options.spec}); one of {', '.join(topology.regions.all)}"
            )


def run_demo(options: DemoOptions, progress: Progress | None = None) -> DemoResult:
    """Run the whole story and write the report into ``options.state_dir``.

    Raises
    ------
    UsageError
        An option the demo cannot do (:func:`check_options`): nothing was started.
    """
    check_options(options)
    say = progress or (lambda *args: None)
    say("sandbox up", 0, 1, {})
    box = Sandbox.up(options.spec, options.state_dir, time_scale=options.time_scale)
    feed = demo_page.Feed()
    page = None
    try:
        if options.page_port is not None:
            page = demo_page.start_page(box, feed, options.page_port)
            if options.on_page is not None:
                options.on_page(page.url)
        return _story(box, options, say, feed)
    finally:
        if page is not None:
            page.stop()
        box.down()


def _story(
    box: Sandbox, options: DemoOptions, say: Progress, feed: demo_page.Feed | None = None
) -> DemoResult:
    topology = box.topology
    region = options.region or topology.regions.primary
    plane = DataPlane(box, DataPlaneSettings(replication_lag=options.replication_lag))
    plane.start()
    load_gen = LoadGenerator(plane.url, rate=options.rate, deadline=options.client_deadline)
    journal = Journal(box.clients, box.manifest)
    regions = list(topology.regions.all)
    try:
        start = clock.now()
        box.start_watchers()  # as pulumi up deploys them: one per region, on a schedule
        if feed is not None:  # the page's traffic chart and each region watcher's decisions
            feed.attach(
                start,
                lambda: load_gen.samples,
                lambda: watcher_procs.decisions(box.state_dir, regions),
            )
        load_gen.start()
        _wait(options.warmup, "steady load", say, load_gen, served_within=options.client_deadline)
        if options.outage_phase is not None:
            _at_phase(box, region, options.outage_phase)
        outage = clock.now()
        box.fail(region, options.mode)
        phase = f"{region} {options.mode}: waiting for failover"
        shifted, answered = _until_shifted(
            plane, region, options.outage_max, say, load_gen, outage, phase
        )
        runs = _until_failed_over(journal, outage, outage + options.outage_max, say, load_gen)
        _wait(options.after, "after the failover", say, load_gen)
        load_gen.stop()
        end = clock.now()
        box.stop_watchers()
        decisions = watcher_procs.decisions(box.state_dir, regions)
        detected = detection(decisions, runs, outage)
        first_bad = next(
            (d["ts"] for d in decisions if d["action"] == "watch" and d["ts"] >= outage), None
        )
        acted = [d for d in decisions if d["action"] not in ("none", "lease_held", "cooldown")]
        marks = reports.Marks(
            start,
            outage,
            detected,
            shifted,
            end,
            tuple((d["ts"], d["watcher_region"], d["action"]) for d in acted),
            dns_answered=answered,
        )
        done = [r for r in runs if r.status.ok]
        new_primary = done[-1].plan.target if done else (plane.resolver.resolve() or "")
        found = _orders_in(box, new_primary, set(load_gen.acked))
        acting = sorted({_region_of(r.owner) for r in done})
        extra = {
            "title": f"{topology.app}: {region} {options.mode} at "
            f"{outage - start:.0f}s, failover to {new_primary}"
            + (f" by the watcher in {', '.join(acting)}" if acting else ""),
            "app": topology.app,
            "failed_region": region,
            "mode": options.mode,
            "outage_at": outage,
            "acted_by": acting,
            "log": str(options.state_dir / LOG_NAME),
            "new_primary": new_primary,
            "replication_lag_seconds": options.replication_lag,
            "time_scale": options.time_scale,
            "client_deadline_seconds": options.client_deadline,
            "first_bad_evaluation_seconds": None
            if first_bad is None
            else round(first_bad - outage, 2),
            "runs": [r.to_dict() | {"steps": len(r.steps)} for r in runs],
            "decisions": acted,
            "evaluations": {
                r: sum(1 for d in decisions if d["watcher_region"] == r) for r in regions
            },
        }
        switch = done[-1] if done else None  # the run that moved the application: its record
        kinds = {"dns": {name for name, _ in topology.of_kind(Kind.DNS)}}
        extra |= _where_time_went(outage, switch, kinds)
        extra["rpo"] = reports.rpo(
            load_gen.samples,
            load_gen.acked,
            found,
            to_plain(switch.rpo) if switch else [],
            switch.created if switch else None,
        )
        report = reports.build(
            load_gen.samples, marks, acked=load_gen.acked, found=found, extra=extra
        )
        json_path, png_path = reports.write(
            report, load_gen.samples, marks, options.state_dir, chart=options.chart
        )
        return DemoResult(report, json_path, png_path, decisions)
    finally:
        load_gen.stop()
        plane.stop()


def _where_time_went(
    outage: float, switch: Run | None, kinds: dict[str, set[str]]
) -> dict[str, Any]:
    """From the outage to the end of the switching run: when it started and ended, and each of
    its levels (seconds after the outage; the time to full service is the report's own)."""
    out: dict[str, Any] = {}
    if switch is not None:
        steps = [
            (s.level, str(s.phase), switch.steps[s.id].started, switch.steps[s.id].ended)
            for s in switch.plan.steps
        ]
        dns = [
            switch.steps[s.id].ended
            for s in switch.plan.steps
            if str(s.phase) == "activate" and s.component in kinds.get("dns", ())
        ]
        ended = [t for t in dns if t is not None]
        out["switch_run"] = {
            "started": round(switch.created - outage, 2),
            "ended": round(switch.updated - outage, 2),
            # the controller's own DNS step (the records moved to the target), after the outage
            "dns_step_ended": round(max(ended) - outage, 2) if ended else None,
            "levels": reports.levels(steps, outage),
        }
    return out


def _region_of(owner: str) -> str:
    """The region a watcher's lease owner names (``watcher@<region>/<request>``), else the
    owner itself."""
    return owner.removeprefix("watcher@").split("/")[0] if owner.startswith("watcher@") else owner


def _wait(
    seconds: float,
    phase: str,
    say: Progress,
    load_gen: LoadGenerator,
    served_within: float = 0.0,
) -> None:
    """Show ``phase`` for ``seconds`` AWS seconds; then until a client has had an answer, at
    most ``served_within`` AWS seconds more. On a loaded machine the application's first cold
    environments may answer no one inside a short warmup, and an outage begun then has no
    ``before``: every request under way when it began counts as the outage's."""
    started = clock.monotonic()
    while True:
        done, counts = clock.monotonic() - started, _counts(load_gen)
        if done >= seconds and (counts["ok"] or done >= seconds + served_within):
            if not counts["ok"] and served_within:
                log.warning("%s: no client served within %.0f AWS s", phase, done)
            return
        say(phase, done, seconds, counts)
        time.sleep(0.25)  # the display's pace: wall time


def _at_phase(box: Sandbox, failing: str, phase: float) -> None:
    """Return ``phase`` AWS seconds after the sentinel's next evaluation is due: its last
    logged evaluation plus whole intervals. The sentinel is the first region a failover from
    ``failing`` would pick whose watcher lives (:func:`controller.watchers.cadence.sentinel`):
    here, with every watcher alive, the first."""
    topology = box.topology
    interval = topology.policy.watch_interval_seconds
    order = topology.regions.targets(failing)
    deadline = clock.monotonic() + 3 * interval
    while not (
        logged := [
            d["ts"]
            for d in watcher_procs.decisions(box.state_dir, order[:1])
            if d.get("cadence") == "sentinel"
        ]
    ):
        if clock.monotonic() > deadline:
            log.warning("%s logged no sentinel evaluation: outage out of phase", order[0])
            return
        clock.sleep(interval / 10)
    last = max(logged)
    due = last + phase + interval * max(0, math.ceil((clock.now() - last - phase) / interval))
    clock.sleep(max(0.0, due - clock.now()))


def _until_shifted(
    plane: DataPlane,
    region: str,
    limit: float,
    say: Progress,
    load_gen: LoadGenerator,
    outage: float,
    phase: str,
) -> tuple[float | None, float | None]:
    """Wait until the first client's resolver (each keeps an answer for its TTL:
    :class:`~sandbox.router.Resolvers`) answers another region: traffic begins to shift; when
    that happened, and when Route 53 itself first answered another region (read with no cache:
    what a resolver asking afresh gets), or None each.

    Each is the middle of the polls around it, from the start of the last that saw nothing
    move to the end of the first that did: the polls are 0.2 wall s apart, 2 AWS s at k = 10
    and 1 at k = 5, and the first poll's time alone would count a change half that late."""
    fresh = Resolver(plane.clients, plane.resolver.manifest, ttl=0.0)
    answered: float | None = None
    unanswered = unshifted = outage  # when the last poll that saw nothing move began
    while (began := clock.now()) - outage < limit:
        say(phase, began - outage, limit, _counts(load_gen))
        if answered is None:
            if (now := fresh.resolve()) and now != region:
                answered = (unanswered + clock.now()) / 2
            else:
                unanswered = began
        if any(r and r != region for r in plane.router.resolvers.answers()):
            shifted = (unshifted + clock.now()) / 2
            return shifted, answered if answered is not None else shifted
        unshifted = began
        time.sleep(0.2)
    return None, answered


def detection(decisions: list[dict[str, Any]], runs: list[Run], outage: float) -> float | None:
    """When a watcher first decided to act on the outage: its failover (or hold) decision's
    time, or a run's journalled decision time when earlier. A watcher logs its decision once
    its run has ended: one killed mid-run (its region lost, its timeout) logs none, and its
    run says when it was decided.

    >>> from types import SimpleNamespace as Run
    >>> detection([{"action": "failover", "ts": 31.0}], [Run(decided=30.5)], 10.0)
    30.5
    >>> detection([{"action": "watch", "ts": 21.0}], [Run(decided=None)], 10.0) is None
    True
    """
    logged = [
        d["ts"] for d in decisions if d["action"] in ("failover", "hold") and d["ts"] >= outage
    ]
    journalled = [r.decided for r in runs if r.decided is not None and r.decided >= outage]
    return min(logged + journalled, default=None)


def _until_failed_over(
    journal: Journal, outage: float, deadline: float, say: Progress, load_gen: LoadGenerator
) -> list[Run]:
    """Wait until a watcher's failover run (started after ``outage``) has ended; the runs."""
    while True:
        say("failing over", 0, 1, _counts(load_gen))
        try:
            runs = [journal.run(r.id) for r in journal.runs() if r.created >= outage]
        except FailoverError as exc:  # the control table may be slow while a region hangs
            log.warning("journal unreadable: %s", exc)
            runs = []
        if (
            runs and all(r.status is not RunStatus.RUNNING for r in runs)
        ) or clock.now() >= deadline:
            return sorted(runs, key=lambda r: r.created)
        time.sleep(0.2)


def _counts(load_gen: LoadGenerator) -> dict[str, int]:
    counts: dict[str, int] = {"ok": 0, "degraded": 0, "failed": 0}
    for sample in list(load_gen.samples):
        counts[sample.outcome] += 1
    return counts


def _orders_in(box: Sandbox, region: str, ids: set[str]) -> set[str]:
    """Which of ``ids`` are in the orders table(s) of ``region`` (scanned, after the queues)."""
    if not region:
        return set()
    db = box.clients.client("dynamodb", region)
    deadline = time.monotonic() + 15
    found: set[str] = set()
    tables = [box.manifest.ref(n, region).name for n, _ in box.topology.of_kind(Kind.TABLE)]
    while True:
        found = set()
        try:
            for table in tables:
                for page in db.get_paginator("scan").paginate(TableName=table):
                    for item in page.get("Items", []):
                        for value in item.values():
                            if "S" in value and value["S"] in ids:
                                found.add(value["S"])
        except Exception as exc:  # the region cannot be read: nothing counts as found
            log.warning("orders in %s unreadable: %s", region, exc)
            return found
        if found >= ids or time.monotonic() > deadline:  # queued writes land via the worker
            return found
        time.sleep(1.0)
