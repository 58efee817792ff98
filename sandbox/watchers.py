"""Each region's watcher in the sandbox: the deployed handler, in that region's failure domain.

Called by :mod:`sandbox.lifecycle` (``failover sandbox up`` starts them as ``pulumi up`` deploys
them; ``fail`` and ``heal`` take a region's watcher down and back with its server) and by the
demo, which reads their log lines. ``pulumi up`` deploys one Lambda function per application
region, invoked by a schedule; here each region gets one process that plays that schedule: it
calls :func:`controller.watchers.lambda_entry.handler` (the same code, with a Lambda-like context
and a region's environment) once per period, each invocation lasting up to the period plus one
interval, as the deployed function's timeout allows. The process belongs to its region: a
region that hangs stops it (SIGSTOP), a region that is killed kills it, a healed region resumes
or restarts it; a partitioned region's watcher runs on, and its calls (which name their home
region, as a Lambda function's do) are cut off with the region (:mod:`sandbox.mrsc`). Its
stdout is the region's watcher log (``logs/watcher-<region>.log``), one JSON
line per evaluation, as the function's CloudWatch log group would hold.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from controller import contract
from controller.topology import load
from sandbox.state import LOG_DIR, MANIFEST_FILE, read_state

log = logging.getLogger(__name__)

#: Seconds between two scheduled invocations (EventBridge's ``rate(1 minute)``); tests shorten
#: it to see the hysteresis carried from one invocation to the next.
ENV_SCHEDULE = "FAILOVER_SANDBOX_WATCHER_SCHEDULE"
SCHEDULE_SECONDS = 60.0
MARKER = "sandbox.watchers"


class Context:
    """Lambda's context for one invocation: a request id and a deadline."""

    def __init__(self, seconds: float) -> None:
        self.aws_request_id = uuid.uuid4().hex[:12]
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds before the invocation's timeout."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def log_path(state_dir: Path, region: str) -> Path:
    """Where ``region``'s watcher logs (its "log group")."""
    return Path(state_dir) / LOG_DIR / f"watcher-{region}.log"


def start(state_dir: Path, spec: str, region: str, schedule: float | None = None) -> int:
    """Start ``region``'s watcher process (in its own session, outliving the caller); its pid."""
    state_dir = Path(state_dir).resolve()
    out = log_path(state_dir, region)
    out.parent.mkdir(parents=True, exist_ok=True)
    spec_topology = load(spec)
    # What Lambda gives the function: its name and region, so that its clients name their home
    # region (controller.contract.home_region) and a partition cuts it off with its region.
    env = {
        **os.environ,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": spec_topology.watcher_function(region),
        contract.ENV_HOME_REGION: region,
        contract.ENV_WATCHER_MANIFEST: str(state_dir / MANIFEST_FILE),
        contract.ENV_WATCHER_SPEC: spec,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "sandbox"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "sandbox"),
    }
    env.pop(contract.ENV_WATCHER_CONTROL_TABLE, None)
    if schedule is not None:
        env[ENV_SCHEDULE] = str(schedule)
    with out.open("ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", MARKER, region, "--state-dir", str(state_dir)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
    deadline = time.monotonic() + 10.0  # until it runs our module (not the forked parent yet)
    while not is_ours(proc.pid, region) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    log.info("watcher of %s started (pid %d)", region, proc.pid)
    return proc.pid


def is_ours(pid: int, region: str) -> bool:
    """True when ``pid`` is still ``region``'s watcher process (not a reused pid)."""
    from sandbox.servers import alive

    if not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    return MARKER.encode() in cmdline and region.encode() in cmdline


def signal_watcher(pid: int, region: str, sig: signal.Signals) -> None:
    """Send ``sig`` to ``region``'s watcher if it still runs."""
    if is_ours(pid, region):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def kill(pid: int, region: str, timeout: float = 10.0) -> None:
    """SIGKILL ``region``'s watcher (resumed first if stopped) and wait until it is gone."""
    if not is_ours(pid, region):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGKILL)
    from sandbox.servers import alive

    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def find_processes(state_dir: Path) -> list[int]:
    """The pids of this user's watcher processes of the sandbox in ``state_dir``."""
    marker = str(Path(state_dir).resolve()).encode()
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
        if MARKER.encode() in cmdline and marker in cmdline:
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
                out.append(record)
    return sorted(out, key=lambda r: str(r.get("time", "")))


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.watchers REGION --state-dir DIR``: play the schedule until the
    sandbox is gone."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.watchers")
    parser.add_argument("region")
    parser.add_argument("--state-dir", required=True, type=Path)
    ns = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from controller.watchers.lambda_entry import handler

    schedule = float(os.environ.get(ENV_SCHEDULE) or SCHEDULE_SECONDS)
    # the handler evaluates inside each period, as the deployed function inside its minute
    os.environ[contract.ENV_WATCHER_PERIOD] = str(schedule)
    tick = time.monotonic()
    while read_state(ns.state_dir) is not None:  # the sandbox is gone: so is its watcher
        interval = load(os.environ[contract.ENV_WATCHER_SPEC]).policy.watch_interval_seconds
        context = Context(schedule + interval + contract.WATCHER_MARGIN_SECONDS)
        event = {
            "source": "aws.scheduler",
            "detail-type": "Scheduled Event",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "detail": {},
        }
        try:
            handler(event, context)
        except Exception:  # an invocation that fails ends; the schedule invokes again
            log.exception("watcher invocation failed")
        tick += schedule
        time.sleep(max(0.0, tick - time.monotonic()))
        tick = max(tick, time.monotonic() - schedule)
    return 0


if __name__ == "__main__":
    sys.exit(main())
