"""Each region's watcher in the sandbox: the deployed function, invoked by its deployed schedule.

Called by :mod:`sandbox.lifecycle` (``failover sandbox up`` starts them as ``pulumi up`` deploys
them; ``fail`` and ``heal`` take a region's watcher down and back with its server) and by the
demo, which reads their log lines. ``pulumi up`` deploys one watcher function per application
region and an EventBridge rule that invokes it every minute; here each region gets one process
that plays that rule: it reads the rule back from the emulator (its rate, its state, its
target) and the function's event invoke config, and invokes the target asynchronously, as
EventBridge does (it does not wait for the invocation; an event older than its maximum age is
dropped, a failed one retried as the config says), through the sandbox's one invoke path
(:mod:`sandbox.lambda_.invoke`), which runs the deployed watcher bundle in an execution
environment of the region, with the function's deployed environment, and kills it at the
function's timeout. The function reads its deployment as on AWS: the topology from its bundle,
the manifest from the control table, where the program wrote it. It evaluates inside the period
it is told (``FAILOVER_WATCHER_PERIOD``, the rule's rate as deployed): a schedule the tests
shorten (``FAILOVER_SANDBOX_WATCHER_SCHEDULE``) is told to the function as its period, so that
each invocation still ends inside its own.

The process belongs to its region: a region that hangs stops it and its environments (SIGSTOP to
its process group), a region that is killed kills them, a healed region resumes or restarts
them; a partitioned region's watcher runs on, and its calls (which name their home region, as a
Lambda function's do) are cut off with the region (:mod:`sandbox.mrsc`). The function's output is
the region's watcher log (``logs/watcher-<region>.log``), one JSON line per evaluation, as its
CloudWatch log group would hold.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller import clock, contract
from controller.errors import FailoverError
from controller.topology.manifest import load_manifest
from sandbox import forkserver
from sandbox.liveness import alive, output_of
from sandbox.owner import watch as end_with_owner
from sandbox.state import LOG_DIR, MANIFEST_FILE, read_state

if TYPE_CHECKING:  # botocore only in the watcher's own process (main), not in fail or heal
    from controller.aws import Clients
    from sandbox.lambda_.invoke import Invocation, Invoker

log = logging.getLogger(__name__)

#: Seconds between two scheduled invocations, instead of the deployed rule's rate (tests shorten
#: it to cross invocations sooner).
ENV_SCHEDULE = "FAILOVER_SANDBOX_WATCHER_SCHEDULE"
MARKER = "sandbox.watchers"
#: Its schedule's log, beside the function's (``logs/``): a forked watcher's output.
SCHEDULE_LOG = "schedule-{region}.log"
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def period(expression: str) -> float:
    """Seconds between a rate rule's invocations.

    >>> period("rate(1 minute)"), period("rate(2 hours)")
    (60.0, 7200.0)
    """
    found = _RATE.fullmatch(expression.strip())
    if found is None:
        raise ValueError(f"not a rate expression: {expression!r}")
    return float(int(found.group(1)) * _UNIT[found.group(2)])


def log_path(state_dir: Path, region: str) -> Path:
    """Where ``region``'s watcher function logs (its "log group")."""
    return Path(state_dir) / LOG_DIR / f"watcher-{region}.log"


def start(
    state_dir: Path,
    spec: str,
    region: str,
    schedule: float | None = None,
    *,
    on: clock.Clock,
) -> int:
    """Start ``region``'s watcher process (in its own session and process group, outliving the
    caller), on clock ``on`` (its sandbox's); its pid."""
    state_dir = Path(state_dir).resolve()
    out = log_path(state_dir, region)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The schedule's own reads (the rule, the function's configuration) come from its region.
    env = {**os.environ, **on.environment(), contract.ENV_HOME_REGION: region}
    env.pop(ENV_SCHEDULE, None)
    if schedule is not None:
        env[ENV_SCHEDULE] = str(schedule)
    argv, cwd = [region, "--state-dir", str(state_dir)], str(Path(__file__).resolve().parents[1])
    sink_path = schedule_log(state_dir, region)
    pid = forkserver.spawn_watcher(argv, env, cwd, sink_path)  # moto and ours imported
    if pid is None:
        with sink_path.open("ab") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", MARKER, *argv],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                cwd=cwd,
            )
        pid = proc.pid
        deadline = time.monotonic() + 10.0  # until it runs our module (not the forked parent)
        while not is_ours(pid, region) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    log.info("watcher of %s started (pid %d)", region, pid)
    return pid


def schedule_log(state_dir: Path, region: str) -> Path:
    """The output of ``region``'s watcher process (its schedule's log)."""
    return Path(state_dir) / LOG_DIR / SCHEDULE_LOG.format(region=region)


def is_schedule_log(path: str, logs: Path) -> bool:
    """Whether ``path`` is the schedule's log of a region's watcher in the folder ``logs``.

    >>> is_schedule_log("/s/logs/schedule-eu-west-1.log", Path("/s/logs"))
    True
    >>> is_schedule_log("/s/logs/eu-west-1.log", Path("/s/logs"))
    False
    """
    prefix, suffix = SCHEDULE_LOG.split("{region}")
    name = Path(path).name
    return Path(path).parent == logs and name.startswith(prefix) and name.endswith(suffix)


def is_ours(pid: int, region: str) -> bool:
    """True when ``pid`` is still ``region``'s watcher process (not a reused pid)."""
    if not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    if forkserver.MODULE.encode() in cmdline:
        return Path(output_of(pid)).name == SCHEDULE_LOG.format(region=region)
    return MARKER.encode() in cmdline and region.encode() in cmdline


def signal_watcher(pid: int, region: str, sig: signal.Signals) -> None:
    """Send ``sig`` to ``region``'s watcher and its environments, if it still runs."""
    if is_ours(pid, region):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)


def kill(pid: int, region: str, timeout: float = 10.0) -> None:
    """SIGKILL ``region``'s watcher and its environments (resumed first if stopped) and wait
    until it is gone."""
    if not is_ours(pid, region):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGCONT)
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def find_processes(state_dir: Path) -> list[int]:
    """The pids of this user's watcher processes of the sandbox in ``state_dir``."""
    marker = str(Path(state_dir).resolve()).encode()
    logs = Path(state_dir).resolve() / LOG_DIR
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (MARKER.encode() in cmdline and marker in cmdline) or (
            forkserver.MODULE.encode() in cmdline
            and is_schedule_log(output_of(int(entry.name)), logs)
        ):
            found.append(int(entry.name))
    return sorted(found)


def decisions(state_dir: Path, regions: Iterable[str]) -> list[dict[str, Any]]:
    """Every evaluation the watchers of ``regions`` logged, oldest first (each with its
    ``watcher_region``), as CloudWatch Logs Insights would return them."""
    out: list[dict[str, Any]] = []
    for region in regions:
        path = log_path(state_dir, region)
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message") == "evaluation":
                if "ts" not in record:  # an error line (no deployment read) has only its time
                    when = _epoch(record.get("time"))
                    if when is None:
                        continue
                    record["ts"] = when
                out.append(record)
    return sorted(out, key=lambda r: str(r.get("time", "")))


def _epoch(iso: object) -> float | None:
    """Epoch seconds of an ISO 8601 UTC time (``2026-12-03T15:07:40Z``); None when it is not.

    >>> _epoch("1970-01-01T00:01:00Z"), _epoch(None)
    (60.0, None)
    """
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.watchers REGION --state-dir DIR``: play the region's watcher schedule
    until the sandbox is gone."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.watchers")
    parser.add_argument("region")
    parser.add_argument("--state-dir", required=True, type=Path)
    ns = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from controller.aws import Clients  # botocore: this process calls AWS, fail and heal do not
    from sandbox.cloudwatch.metrics import LambdaMetrics, LogMetrics, Metrics
    from sandbox.lambda_.invoke import Invoker

    end_with_owner()  # a test's sandbox: ends with the test process, however that ends
    region, state_dir = ns.region, ns.state_dir
    state = read_state(state_dir)
    if state is None:
        return 0
    manifest = load_manifest(state_dir / MANIFEST_FILE)
    watcher = manifest.regions[region].watcher
    if watcher is None:
        raise SystemExit(f"the manifest names no watcher in {region}")
    rule = f"{watcher.function}-schedule"
    events = Clients(endpoints=manifest.endpoints).client("events", region)
    deployed = events.describe_rule(Name=rule)
    every = float(os.environ.get(ENV_SCHEDULE) or period(deployed["ScheduleExpression"]))
    # The function evaluates inside the period it is told (its deployed environment says the
    # rule's): a schedule shortened here tells it the period it is really invoked at.
    told = {contract.ENV_WATCHER_PERIOD: f"{every:g}"} if os.environ.get(ENV_SCHEDULE) else {}
    invoker = Invoker(
        manifest.endpoints,
        state_dir / "lambda",
        state_dir / LOG_DIR / "functions",
        state.secret,
        log_files={watcher.function: log_path(state_dir, region)},
        told={watcher.function: told},
    )
    invoker.start()
    # Lambda's metrics of the watcher's invocations, into its region's CloudWatch
    cloudwatch = Clients(endpoints=manifest.endpoints)
    metrics = Metrics(lambda where: cloudwatch.client("cloudwatch", where))
    invoker.observers.append(LambdaMetrics(metrics))
    # ... and the metrics its log records carry (EMF), as CloudWatch Logs extracts them
    invoker.observers.append(LogMetrics(metrics, {watcher.function: log_path(state_dir, region)}))
    metrics.start()
    stop = threading.Event()
    try:
        targets = [t["Arn"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]]
        lam = Clients(endpoints=manifest.endpoints).client("lambda", region)
        for uuid in chain_mappings(lam, watcher.function):
            threading.Thread(
                target=follow_chain,
                args=(Clients(endpoints=manifest.endpoints), invoker, region, uuid, stop),
                name=f"chain-{region}",
                daemon=True,
            ).start()
        configs = {target: async_config(lam, target) for target in targets}
        tick = clock.monotonic()  # the deployed rate, in AWS seconds
        while read_state(state_dir) is not None:  # the sandbox is gone: so is its watcher
            try:
                if events.describe_rule(Name=rule)["State"] == "ENABLED":
                    for target in targets:  # EventBridge invokes and does not wait
                        threading.Thread(
                            target=deliver,
                            args=(invoker, region, target, scheduled(rule, region)),
                            kwargs={"config": configs[target]},
                            name=f"invoke-{region}",
                            daemon=True,
                        ).start()
            except Exception:  # the rule cannot be read this minute: the next one is invoked
                log.exception("watcher schedule failed")
            tick += every
            clock.sleep(tick - clock.monotonic())
            tick = max(tick, clock.monotonic() - every)
    finally:
        stop.set()
        metrics.stop()
        invoker.close()
    return 0


#: AWS seconds between two receives of a watcher's chain queue: Lambda long-polls it, and hands
#: a link over about as soon as its delay ends.
CHAIN_POLL_SECONDS = 1.0


def chain_mappings(lam: Any, function: str) -> list[str]:
    """The event source mappings that invoke the watcher ``function`` (its chain queue's:
    :mod:`controller.watchers.chain`), as deployed."""
    got = lam.list_event_source_mappings(FunctionName=function).get("EventSourceMappings", [])
    return [str(m["UUID"]) for m in got if str(m["EventSourceArn"]).startswith("arn:aws:sqs:")]


def follow_chain(
    clients: Clients, invoker: Invoker, region: str, uuid: str, stop: threading.Event
) -> None:
    """Lambda's poller of the watcher's chain queue: each link, once its delay is over, invokes
    the watcher synchronously (and is deleted when that returned), while the mapping is enabled,
    until ``stop``."""
    from sandbox.pollers import Mapping, QueueUrl, Switch, drain_queue, enabled

    mapping = Mapping.read(clients, region, uuid)
    lam = clients.client("lambda", region)
    queue, on = QueueUrl(clients, mapping), Switch(lambda: enabled(lam, uuid))
    while not stop.wait(clock.wall(CHAIN_POLL_SECONDS)):
        try:
            if not on():
                continue
            drain_queue(
                clients,
                mapping,
                lambda event: invoker.invoke(region, mapping.function, event, source="sqs"),
                queue.get(),
            )
        except Exception as exc:  # its region failed: keep trying, as Lambda's pollers do
            log.debug("chain of %s: %s", region, exc)


@dataclass(frozen=True)
class AsyncConfig:
    """How Lambda handles a function's asynchronous invocations (its event invoke config, or
    Lambda's defaults without one): how old an event may get before it is dropped, and how
    often a failed invocation is retried."""

    max_event_age: float = 21600.0
    retries: int = 2


#: Lambda's waits before the first and the second retry of a failed asynchronous invocation.
RETRY_DELAYS = (60.0, 120.0)
#: Lambda's queue tries a throttled event again after a backoff that grows up to five minutes
#: (the first wait is the sandbox's choice: AWS documents only the bound).
THROTTLE_BACKOFF = 1.0
THROTTLE_BACKOFF_MAX = 300.0


def async_config(lam: Any, function: str) -> AsyncConfig:
    """The deployed event invoke config of ``function`` (a name or an ARN), read back."""
    try:
        got = lam.get_function_event_invoke_config(FunctionName=function)
    except lam.exceptions.ResourceNotFoundException:
        return AsyncConfig()
    return AsyncConfig(
        max_event_age=float(got.get("MaximumEventAgeInSeconds", AsyncConfig.max_event_age)),
        retries=int(got.get("MaximumRetryAttempts", AsyncConfig.retries)),
    )


def deliver(
    invoker: Invoker,
    region: str,
    target: str,
    event: dict[str, Any],
    *,
    config: AsyncConfig,
    sleep: Callable[[float], None] = clock.sleep,
    monotonic: Callable[[], float] = clock.monotonic,
) -> list[Invocation]:
    """Invoke ``target`` asynchronously with ``event``, as Lambda handles an event EventBridge
    queued: started only while the event is younger than its maximum age (a throttled event
    goes back to Lambda's queue and is tried again after a backoff, :data:`THROTTLE_BACKOFF`
    doubling up to :data:`THROTTLE_BACKOFF_MAX`, while its age allows; throttles use up no
    retry), a failed invocation retried as often as the config says, after Lambda's waits; each
    invocation made, in order (a throttle is none)."""
    from sandbox.lambda_.invoke import Throttled

    queued = monotonic()
    done: list[Invocation] = []
    attempt, backoff = 0, THROTTLE_BACKOFF
    while attempt <= config.retries:
        left = config.max_event_age - (monotonic() - queued)
        if left <= 0:
            log.warning(
                "%s in %s: event dropped, older than %gs", target, region, config.max_event_age
            )
            break
        try:
            done.append(invoker.invoke(region, target, event, source="schedule", wait=left))
        except Throttled:
            sleep(min(backoff, max(0.0, config.max_event_age - (monotonic() - queued))))
            backoff = min(backoff * 2, THROTTLE_BACKOFF_MAX)
            continue
        except FailoverError as exc:  # never started: no environment within its age, or no region
            log.warning("%s in %s: event dropped: %s", target, region, exc)
            break
        if done[-1].ok:
            break
        attempt += 1
        if attempt <= config.retries:
            sleep(RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)])
    return done


def scheduled(rule: str, region: str) -> dict[str, Any]:
    """The event EventBridge sends a schedule's target."""
    return {
        "version": "0",
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"rule/{rule}"],
        "detail": {},
    }


if __name__ == "__main__":
    sys.exit(main())
