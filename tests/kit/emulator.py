"""What the sandbox tests share: plain boto3 reads, injected faults, patient limits, a
controller run as a real process, and what "fenced everywhere" means read back.

Plain clients are not ours (no hooks, no retries of ours), so what they read back is what the
emulator holds, not what our code believes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from controller.actions.registry import action_class, action_for
from controller.aws import AwsSettings, Clients
from controller.contract import GLOBAL
from controller.topology import Kind
from sandbox import Sandbox
from sandbox import servers as sandbox_servers
from sandbox import watchers as watcher_procs
from sandbox.lambda_.invoke import Invoker
from sandbox.state import LOG_DIR
from tests.kit import controller_zygote
from tests.kit.cli import CliResult
from tests.kit.controller_zygote import Forked
from tests.kit.paths import EXAMPLE, REPO

PRIMARY = "us-east-1"
#: A deadline for tests about what status says, not how fast (a loaded machine is slow).
SLACK = 15.0
#: A bound that tells a fail-fast call from a hang: botocore's default read timeout is 60 s.
HANG_BOUND = 30.0
XML_SERVICES = frozenset({"s3", "route53", "route-53"})  # event names hyphenize the id


#: Plain clients of the last sandbox asked for, by service, region and endpoint: made once each
#: (a client costs milliseconds of CPU to make, and some tests read back on every step), used
#: from any thread; another sandbox's closes them (the servers keep connections open).
_PLAIN: dict[tuple[str, str, str], Any] = {}
_PLAIN_LOCK = threading.Lock()


#: An observer's read timeout (AWS seconds: 6 on the wall at k = 5). The controller's own 4 s
#: is 0.8 s on the wall at k = 5, which a scan of a live region outlived on two loaded cores and
#: failed a test that only looked; the control table still asks another region after its hedge
#: when one hangs, so waiting longer costs nothing there.
OBSERVER_READ_TIMEOUT = 30.0


def observer(box: Sandbox) -> Clients:
    """The sandbox's clients for a test that watches (the journal, the modes), patient with
    this machine's CPU: what it reads is not the timing under test."""
    return box.clients.derive(settings=AwsSettings(read_timeout=OBSERVER_READ_TIMEOUT))


def plain(box: Sandbox, service: str, region: str) -> Any:
    """A plain boto3 client on the sandbox (not ours: no hooks, boto3's own retries)."""
    endpoint = box.manifest.endpoints[GLOBAL if service == "route53" else region]
    key = (service, region, endpoint)
    with _PLAIN_LOCK:  # boto3's default session makes one client at a time
        if any(url not in box.manifest.endpoints.values() for _, _, url in _PLAIN):
            for made in _PLAIN.values():
                made.close()  # still usable: its next call connects again
            _PLAIN.clear()
        if key not in _PLAIN:
            _PLAIN[key] = boto3.client(
                service, region_name=region if region != GLOBAL else PRIMARY, endpoint_url=endpoint
            )
        return _PLAIN[key]


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def stream(self, **_: Any) -> Any:
        yield self._data.read()


def fault(status: int, code: str, every: int = 1) -> tuple[Callable[..., Any], list[int]]:
    """A ``before-send`` hook answering ``status``/``code`` to one call in ``every``.

    The answer is shaped as the service would send it: JSON for the JSON protocols, an XML
    ``<Error>`` for S3 and Route 53, and S3's own throttling (``503 SlowDown``), since a HEAD
    answer has no body and its status is all the client sees.
    """
    calls = [0, 0]  # seen, faulted

    def hook(request: Any, **kwargs: Any) -> AWSResponse | None:
        calls[0] += 1
        if calls[0] % every:
            return None
        calls[1] += 1
        service = str(kwargs.get("event_name", "before-send.x")).split(".")[1]
        answer, name = status, code
        if service in XML_SERVICES:
            if "Throttl" in code or status == 429:
                answer, name = 503, "SlowDown"
            body = b"<Error><Code>%s</Code><Message>injected</Message></Error>" % name.encode()
            if service != "s3":  # Route 53 wraps its errors in an ErrorResponse
                body = b"<ErrorResponse>%s</ErrorResponse>" % body
        else:
            body = b'{"message": "injected", "__type": "%s"}' % name.encode()
        return AWSResponse(request.url, answer, {"x-amzn-ErrorType": name}, _Body(body))

    return hook, calls


def set_alarms(box: Sandbox, region: str, state: str) -> list[str]:
    """Set every alarm the manifest names in ``region`` to ``state`` (OK or ALARM); their names."""
    cloudwatch = plain(box, "cloudwatch", region)
    names = [a for ref in box.manifest.regions[region].components.values() for a in ref.alarms]
    for name in names:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="a test")
    return names


def mapping_enabled(box: Sandbox, region: str) -> dict[str, bool]:
    """Per function with event sources: is any of its mappings enabled in ``region``?"""
    lam = plain(box, "lambda", region)
    out = {}
    for name, _ in box.topology.of_kind(Kind.FUNCTION):
        ref = box.manifest.ref(name, region)
        if ref.mappings:
            states = [lam.get_event_source_mapping(UUID=u)["State"] for u in ref.mappings]
            out[name] = any(s in ("Enabled", "Enabling", "Updating", "Creating") for s in states)
    return out


def rules_enabled(box: Sandbox, region: str) -> dict[str, bool]:
    events = plain(box, "events", region)
    return {
        name: events.describe_rule(Name=box.manifest.ref(name, region).name)["State"] == "ENABLED"
        for name, _ in box.topology.of_kind(Kind.SCHEDULE)
    }


def primary_record(box: Sandbox) -> str:
    r53 = plain(box, "route53", GLOBAL)
    records = r53.list_resource_record_sets(HostedZoneId=box.manifest.dns.zone_id)
    for rs in records["ResourceRecordSets"]:
        if rs.get("Failover") == "PRIMARY":
            return str(rs["ResourceRecords"][0]["Value"])
    raise AssertionError("no PRIMARY record")


def region_host(box: Sandbox, region: str) -> str:
    """The host the failover records name when ``region`` serves the application's name: the
    regional target of its custom domain (the DNS component's endpoint in the manifest)."""
    from controller.contract import normalize_host

    dns = next(name for name, _ in box.topology.of_kind(Kind.DNS))
    endpoint = box.manifest.ref(dns, region).endpoint
    assert endpoint, f"the manifest names no endpoint for {dns} in {region}"
    return normalize_host(endpoint)


def status_json(
    cli: Callable[..., CliResult], box: Sandbox, timeout: float = SLACK
) -> dict[str, Any]:
    """What ``failover status --json`` says of ``box`` (a non-zero exit fails the test)."""
    result = cli(
        "status",
        "--manifest",
        box.manifest_path,
        "--spec",
        EXAMPLE,
        "--json",
        "--timeout",
        str(timeout),
    )
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def controller(
    box: Sandbox, *args: str, kill_after: int | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str] | Forked:
    """``failover ARGS --manifest M`` as a real process (with ``env``, default this process's
    environment); with ``kill_after``, one that SIGKILLs itself once that many steps have ended
    (``sandbox.faults``).

    Forked from the session's controller zygote when there is one (:mod:`tests.kit.controller_
    zygote`: about a second of imports saved), else started as ``python -m``.
    """
    entry, words = (
        ("controller", [])
        if kill_after is None
        else ("sandbox.faults", ["--kill-after-steps", str(kill_after), "--"])
    )
    argv = [*words, *args, "--manifest", str(box.manifest_path)]
    forked = controller_zygote.spawn(entry, argv, os.environ if env is None else env, REPO)
    if forked is not None:
        return forked
    return subprocess.Popen(
        [sys.executable, "-m", entry, *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def fenced_everywhere(box: Sandbox, region: str, *, inside: bool = False) -> dict[str, str]:
    """Each component of ``region`` that is not fenced, with what it says (read back fresh).

    ``inside``: read as a caller of ``region`` itself (its home region), which a partition
    lets through; the global components (DNS), out of its reach then, are left out.
    """
    # not the controller's: no cache, no hook
    clients = Clients(endpoints=box.manifest.endpoints, home=region if inside else None)
    ssm = clients.client("ssm", region) if inside else plain(box, "ssm", region)
    region_mode = ssm.get_parameter(Name=box.manifest.regions[region].mode_parameter)
    wrong = {}
    for name, spec in box.topology.components.items():
        action = action_for(box.topology, box.manifest, clients, name, region)
        if inside and action.global_resource:
            continue
        seen = action.read()
        mode = ssm.get_parameter(Name=action.mode_parameter)["Parameter"]["Value"]
        if mode == "normal":  # as deployed: the region's mode holds
            mode = region_mode["Parameter"]["Value"]
        fenced = action_class(str(spec.kind)).fenced_state
        if seen.state not in (fenced, "missing") or mode != "fenced":
            wrong[name] = f"{seen.state} (mode {mode})"
    return wrong


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


def new_invoker(box: Sandbox) -> Invoker:
    """An invoker on ``box``, started (as the data plane and each watcher make theirs)."""
    made = Invoker(
        box.manifest.endpoints,
        box.state_dir / "lambda",
        box.state_dir / LOG_DIR / "functions",
        box.state.secret,
    )
    made.start()
    return made


def stopped(box: Sandbox) -> None:
    """Bring ``box`` down; whatever happens, none of its servers or its zygote outlives it."""
    try:
        box.down()
    finally:
        sandbox_servers.stop_zygote(box.state.zygote)
        for server in box.state.servers.values():
            sandbox_servers.kill(server)


@contextmanager
def watched_sandbox(spec: Path, state_dir: Path, time_scale: float = 1.0) -> Iterator[Sandbox]:
    """A sandbox of ``spec`` whose tests start its watchers: brought down at the end, and every
    watcher process still running in ``state_dir`` killed even if bringing it down failed."""
    box = Sandbox.up(spec, state_dir, time_scale=time_scale)
    try:
        yield box
    finally:
        try:
            box.down()
        finally:
            for pid in watcher_procs.find_processes(state_dir):
                watcher_procs.kill(pid, "")
