"""Route 53's health checkers, in the global server's failure domain, and what they found.

Loaded by :mod:`sandbox.launcher` into every server; only the one the sandbox configures (the
``global`` server, at ``up`` and whenever a region fails or heals) runs checkers, in threads of
its own process: when the global server hangs or dies, so do they, as Route 53's would with it.

Each health check moto stores is probed at its own ``RequestInterval`` on the sandbox's clock
(:mod:`controller.clock`), whatever a probe takes (a hung target costs a probe its timeout, not
the cadence), and flips after ``FailureThreshold`` results in a row, as one checker does. A
probe not answered by Route 53's deadline (4 s to connect, then 2 s) counts as failed from that
moment on, as Route 53 counts it, until its answer settles it: the sandbox waits at least a
wall floor before it fails a probe (its endpoints' answers cost this machine's CPU, not AWS's
time), yet a hung region must not be seen later in AWS seconds at k = 10 than at k = 5. An
answer in time for the floor takes the failure back. A
probe goes where a client resolving the check's name would go: the regional endpoint the data
plane serves for that host (``hosts``, when a data plane runs: its health route, healthy on
2xx or 3xx), else the front door of the region the name is in (``regions``: the region's
emulator, healthy when it answers at all). ``GetHealthCheckStatus`` answers from the findings
(:func:`patch_status`); an inverted check reads the other way where Route 53 uses the status
(the router's failover answer), while the observations report what the checkers saw.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from controller import clock
from controller.contract import SANDBOX_RELAY_PATH
from sandbox.controls import PREFIX

log = logging.getLogger(__name__)

#: ``POST`` a JSON :class:`Network` here (with the sandbox's secret) to (re)start the checkers.
CHECKERS_PATH = f"{PREFIX}route53-checkers"
#: Route 53 allows an HTTP check 4 s to establish its TCP connection, then 2 s after connecting
#: for the answer (AWS seconds): a stopped process whose socket still accepts connections fails
#: a probe 2 s after it connects, not 6.
CONNECT_SECONDS = 4.0
ANSWER_SECONDS = 2.0
#: ... but at least this long on the wall: the endpoint's answer is this machine's CPU, not
#: AWS's latency. A healthy region's health route took up to 0.61 wall s under the bench's load
#: (a Lambda runtime started, the watchers evaluating): with 0.5 (0.6 s at k = 10) such probes
#: failed, and three in a row sent DNS to the standby before any outage; with 1.0 it happened
#: again on a machine twice as loaded (2026-12-07: the demo's DNS answered the standby at the
#: first look after the outage, 24 AWS s before any watcher acted). Past Route 53's own
#: deadline a probe still under way counts as failed (:meth:`Checkers.status`), so the floor
#: decides only whether a late answer takes that back, not when the failure is seen: a hung
#: region, which never answers, flips after as many AWS seconds whatever the floor.
PROBE_WALL_FLOOR = 3.0
#: What a probe past Route 53's deadline, its answer not in, reports (Route 53's words).
LATE_REPORT = "Failure: Connection timed out. The endpoint did not answer in time"
#: How often (wall seconds) the scheduler looks for checks that are due, and for new checks.
TICK = 0.05
_REGION = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com$")


@dataclass(frozen=True)
class Network:
    """Where a check's name leads: a host served by the data plane, or a region's front door."""

    hosts: Mapping[str, str] = field(default_factory=dict)
    regions: Mapping[str, str] = field(default_factory=dict)
    #: Forget the findings so far (a reset sandbox: every check starts healthy again).
    forget: bool = False

    def target(self, fqdn: str, path: str) -> tuple[str, bool] | None:
        """``(url, served)``: the URL a probe of ``fqdn`` and ``path`` GETs, and whether a data
        plane serves it (else it is the region's front door); None when the name leads nowhere.

        >>> net = Network({"d-1.execute-api.us-east-1.amazonaws.com": "http://127.0.0.1:9"},
        ...               {"us-west-2": "http://127.0.0.1:8"})
        >>> net.target("d-1.execute-api.us-east-1.amazonaws.com", "/health")
        ('http://127.0.0.1:9/health', True)
        >>> net.target("d-2.execute-api.us-west-2.amazonaws.com", "/health")
        ('http://127.0.0.1:8/', False)
        >>> net.target("example.org", "/") is None
        True
        """
        host = fqdn.rstrip(".").lower()
        if host in self.hosts:
            return self.hosts[host].rstrip("/") + (path or "/"), True
        found = _REGION.search(host)
        if found and found.group(1) in self.regions:
            return self.regions[found.group(1)].rstrip("/") + "/", False
        return None

    @classmethod
    def from_json(cls, body: bytes) -> Network:
        data = json.loads(body or b"{}")
        return cls(
            dict(data.get("hosts", {})), dict(data.get("regions", {})), bool(data.get("forget"))
        )

    def to_json(self) -> bytes:
        return json.dumps(
            {"hosts": dict(self.hosts), "regions": dict(self.regions), "forget": self.forget}
        ).encode()


@dataclass
class Finding:
    """One check's state as its checker holds it: healthy until ``threshold`` failures in a row."""

    healthy: bool = True
    streak: int = 0
    report: str = "Success: no observation yet"
    checked: float = 0.0

    def observe(self, ok: bool, report: str, threshold: int, now: float) -> bool:
        """Count one probe result; True when it flipped the state.

        >>> f = Finding()
        >>> [f.observe(False, "Failure", 3, t) for t in (1.0, 2.0, 3.0)], f.healthy
        ([False, False, True], False)
        >>> f.observe(True, "Success", 3, 4.0), f.healthy, f.streak
        (False, False, 1)
        """
        self.report, self.checked = report, now
        if ok == self.healthy:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak < max(1, threshold):
            return False
        self.healthy, self.streak = ok, 0
        return True


@dataclass
class Underway:
    """A probe sent and not settled: Route 53 counts it failed once ``deadline`` (AWS seconds,
    :func:`controller.clock.monotonic`) has passed: connected by then, or answered 2 s after
    connecting."""

    threshold: int
    epoch: int
    deadline: float = field(default_factory=lambda: clock.monotonic() + CONNECT_SECONDS)

    def connected(self) -> None:
        """The connection is up: the answer is due :data:`ANSWER_SECONDS` from now."""
        self.deadline = clock.monotonic() + ANSWER_SECONDS

    def late(self) -> bool:
        """Past Route 53's deadline (so counted failed until the answer settles it)."""
        return clock.monotonic() >= self.deadline


def waits() -> tuple[float, float]:
    """The wall seconds a probe may take to connect, then to be answered: Route 53's AWS
    seconds on the sandbox's clock, each at least :data:`PROBE_WALL_FLOOR` on the wall."""
    return (
        clock.wall(clock.patient(CONNECT_SECONDS, PROBE_WALL_FLOOR)),
        clock.wall(clock.patient(ANSWER_SECONDS, PROBE_WALL_FLOOR)),
    )


def probe(
    url: str, fqdn: str, *, served: bool = True, connected: Callable[[], None] | None = None
) -> tuple[bool, str]:
    """GET ``url`` as a checker does (``Host: fqdn``), within Route 53's times (:func:`waits`);
    healthy on 2xx/3xx from a served endpoint, on any answer below 500 from a region's front
    door. ``connected`` is called once the TCP connection is up."""
    parts = urlsplit(url)
    connect, answer = waits()
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=connect)
    try:
        conn.connect()
        if conn.sock is not None:  # connected: the answer has its own, shorter time
            conn.sock.settimeout(answer)
        if connected is not None:
            connected()
        conn.request("GET", parts.path or "/", headers={"Host": fqdn})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"Failure: the endpoint did not answer ({exc.__class__.__name__})"
    finally:
        conn.close()
    ok = 200 <= status < 400 if served else status < 500
    return ok, f"{'Success' if ok else 'Failure'}: HTTP Status Code {status}"


class Checkers:
    """Every stored health check probed at its interval; :meth:`status` is what they found."""

    def __init__(self, checks: Callable[[], Iterable[Any]]) -> None:
        self._checks = checks
        self.network = Network()
        self.findings: dict[str, Finding] = {}
        self._underway: dict[str, list[Underway]] = {}
        #: Raised by a reset: a probe sent before it is not counted after it.
        self._epoch = 0
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def configure(self, network: Network) -> None:
        """Probe through ``network`` from now on (starting the scheduler the first time)."""
        with self._lock:
            self.network = network
            if network.forget:
                self._forget()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="route53-checkers"
                )
                self._thread.start()

    def forget(self) -> None:
        """Start every check healthy again (a reset sandbox): nothing found so far counts, nor
        does a probe sent before, when it ends."""
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        self.findings.clear()
        self._underway.clear()
        self._due.clear()
        self._epoch += 1

    def status(self, check_id: str) -> Finding:
        """What the checkers hold of ``check_id`` (healthy until they found otherwise), each
        probe past Route 53's deadline counted failed as Route 53 counts it (a copy then: its
        answer may still take that back)."""
        with self._lock:
            found = self.findings.setdefault(check_id, Finding())
            late = [p for p in self._underway.get(check_id, []) if p.late()]
            if not late:
                return found
            seen = replace(found)
            for underway in late:
                seen.observe(False, LATE_REPORT, underway.threshold, clock.now())
            return seen

    def _run(self) -> None:
        while True:
            try:
                self.tick(clock.monotonic())
            except Exception:  # a check deleted mid-tick, moto's internals: the next tick
                log.exception("route53 checkers")
            threading.Event().wait(TICK)

    def tick(self, now: float) -> list[str]:
        """Start a probe of every check whose interval has passed; the ids started."""
        started = []
        for check in list(self._checks()):
            due = self._due.get(check.id)
            if due is not None and now < due:
                continue
            self._due[check.id] = (due if due is not None else now) + float(
                check.request_interval or 30
            )
            threading.Thread(
                target=self._probe, args=(check,), daemon=True, name=f"r53-{check.id}"
            ).start()
            started.append(check.id)
        return started

    def _probe(self, check: Any) -> None:
        fqdn = str(check.fqdn or check.ip_address or "")
        where = self.network.target(fqdn, str(check.resource_path or "/"))
        threshold = int(check.failure_threshold or 3)
        with self._lock:
            underway = Underway(threshold, self._epoch)
            self._underway.setdefault(check.id, []).append(underway)
        ok, report = False, f"Failure: {fqdn} does not resolve"
        try:
            if where is not None:
                ok, report = probe(where[0], fqdn, served=where[1], connected=underway.connected)
        finally:
            with self._lock:
                if underway in self._underway.get(check.id, []):
                    self._underway[check.id].remove(underway)
                settled = underway.epoch == self._epoch
                finding = self.findings.setdefault(check.id, Finding())
                flipped = settled and finding.observe(ok, report, threshold, clock.now())
        if flipped:
            log.info("health check %s (%s) -> %s", check.id, fqdn, finding.healthy)


#: The checkers of this server process (made on the first configuration).
_CHECKERS: Checkers | None = None


def _stored_checks() -> Iterable[Any]:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.route53.models import route53_backends

    return list(route53_backends[DEFAULT_ACCOUNT_ID]["global"].health_checks.values())


def checkers() -> Checkers:
    """This process's checkers."""
    global _CHECKERS
    if _CHECKERS is None:
        _CHECKERS = Checkers(_stored_checks)
    return _CHECKERS


class Configure:
    """WSGI middleware: ``POST`` :data:`CHECKERS_PATH` configures this server's checkers (the
    launcher's round-trip middleware has already checked the sandbox's secret)."""

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(SANDBOX_RELAY_PATH):
            return _relay(path.removeprefix(SANDBOX_RELAY_PATH), start_response)
        if path != CHECKERS_PATH:
            return self.application(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        checkers().configure(Network.from_json(environ["wsgi.input"].read(length)))
        start_response("204 No Content", [])
        return [b""]


def _relay(rest: str, start_response: Callable[..., Any]) -> list[bytes]:
    """A plain HTTP GET of ``<host>/<path>`` where the checkers' network leads (the
    controller's probe of a region's health route, :meth:`controller.aws.Clients.http_url`):
    answered with the target's status, 502 when it leads nowhere or does not answer."""
    host, _, path = rest.partition("/")
    where = checkers().network.target(host, "/" + path)
    if where is None:
        start_response("502 Bad Gateway", [("Content-Length", "0")])
        return [b""]
    ok, report = probe(where[0], host, served=where[1])
    status = report.split("HTTP Status Code ", 1)
    code = status[1] if len(status) == 2 else "502"
    if not where[1]:  # a region's front door stands for its API: answered, it is up
        code = "200" if ok else code
    start_response(f"{code} Relayed", [("Content-Length", "0")])
    return [b""]


def patch_status() -> None:
    """moto answers ``GetHealthCheckStatus`` with a fixed "Success"; here, with what this
    process's checkers found (one checker's observation)."""
    from moto.core.responses import ActionResult
    from moto.route53.responses import Route53

    def get_health_check_status(self: Any) -> Any:
        check_id = self._get_param("HealthCheckId")
        self.backend.get_health_check(check_id)  # NoSuchHealthCheck as before
        found = checkers().status(check_id)
        checked = datetime.fromtimestamp(found.checked or clock.now(), UTC)
        said = ("Success" if found.healthy else "Failure") + ": " + found.report.split(": ", 1)[-1]
        return ActionResult(
            {
                "HealthCheckObservations": [
                    {
                        "Region": "us-east-1",
                        "IPAddress": "127.0.0.1",
                        "StatusReport": {
                            "Status": said,
                            "CheckedTime": checked,
                        },
                    }
                ]
            }
        )

    Route53.get_health_check_status = get_health_check_status  # type: ignore[method-assign]


def configure(url: str, network: Network, secret_header: Mapping[str, str]) -> None:
    """Tell the server at ``url`` (the global one) to run its checkers through ``network``."""
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - a loopback URL of the sandbox
        f"{url}{CHECKERS_PATH}", data=network.to_json(), method="POST", headers=dict(secret_header)
    )
    with urllib.request.urlopen(request, timeout=2.0):  # noqa: S310
        pass
