"""The sandbox's control table, served as multi-Region strong consistency (MRSC) serves it.

Runs inside every moto server process (:mod:`sandbox.launcher` wraps moto in a
:class:`ControlGate`) and is configured by :mod:`sandbox.lifecycle` (:func:`configure`). Standard
library only: the launcher imports it before forking.

- One linearizable store: the control table lives in one process of its own (``control-store``),
  which no fault reaches; that is what MRSC's synchronous replication guarantees (every read sees
  the last acknowledged write), not something the sandbox could fail. moto serves each request on
  a thread of its own and checks a write's condition apart from applying it, so two racing
  conditional writes could both pass (two takers both won the lease): the store serves the
  control table's requests one at a time, reads included (a read never sees half an update).
  Nothing else waits: the regions' servers, and the store's other requests, run as moto runs them.
- Every control region is a failure domain: a request to the control table goes to a *replica*
  region's server, which forwards it to the store only while that region can reach a majority of
  the control regions (replicas and witness, itself included). A region that cannot answers
  ``500 InternalServerError`` naming the regions it cannot reach (a 5xx, as DynamoDB answers when
  it cannot serve; the exact MRSC error for a lost quorum is not documented where we looked). A
  killed region refuses connections and a stopped one never answers, as before. Reaching a
  majority is the network's part, which the sandbox plays: a region it hung, killed or cut off
  is not reached, and a running one is, even when its answer to a ping comes late (on a busy
  machine that lateness is CPU, not distance: :meth:`ControlGate.unreachable`).
- What MRSC refuses on the control table, the sandbox refuses (``ValidationException``): time to
  live and transactions (``TransactWriteItems``, ``TransactGetItems``, ``ExecuteTransaction``).
- A partitioned region serves its own callers, reaches no other region and is reached by none:
  a caller's region is the ``failover-home/R`` part of its User-Agent
  (:data:`controller.contract.HOME_AGENT`); a call that crosses the cut is dropped (the
  connection closes without an answer). Callers with no home region are outside every region.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import re
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sandbox.controls import PREFIX, SECRET_HEADER

#: ``POST`` a JSON :class:`Config` here (with the sandbox's secret) to configure a server's gate.
CONFIG_PATH = f"{PREFIX}mrsc"
#: Where one control region asks another whether it can reach it.
PING_PATH = f"{CONFIG_PATH}/ping"
#: The header a ping names its sender's region in.
FROM_HEADER = "X-Failover-From"
#: The server that holds the control table: no region, never failed.
STORE = "control-store"
#: How long a region waits for another's answer before counting it unreachable.
PING_TIMEOUT = 0.5
#: How long a region trusts that another answered (saves a ping per request).
PING_TRUST = 0.5
#: What MRSC does not support, as the DynamoDB operations that would use it.
REFUSED = {
    "UpdateTimeToLive": "time to live",
    "TransactWriteItems": "transactions",
    "TransactGetItems": "transactions",
    "ExecuteTransaction": "transactions",
}
_AGENT = re.compile(r"failover-home/([a-z0-9-]+)")
_SCOPE = re.compile(r"(Credential=[^/,]+/\d{8}/)[a-z0-9-]+(/dynamodb/)")


@dataclass(frozen=True)
class Config:
    """What one server's gate knows: who it is, the control regions and who is cut off."""

    #: This server's name (a region, ``global`` or :data:`STORE`).
    name: str = ""
    #: The control table's name.
    table: str = ""
    #: The regions that hold a replica (a request there may reach the store).
    replicas: tuple[str, ...] = ()
    #: The replicas and the witness: the regions a majority is counted over.
    members: tuple[str, ...] = ()
    #: Every server's URL by name (the members' and the store's at least).
    urls: Mapping[str, str] = field(default_factory=dict)
    #: The region the store's table is kept under (requests are re-signed for it).
    store_region: str = ""
    #: The regions cut off by a partition.
    partitioned: frozenset[str] = frozenset()
    #: The servers the sandbox stopped or killed (a region that hangs or is down).
    stopped: frozenset[str] = frozenset()
    #: The sandbox's secret, which a ping carries.
    secret: str = ""

    def to_json(self) -> bytes:
        """The configuration as :data:`CONFIG_PATH` takes it."""
        return json.dumps(
            {
                "name": self.name,
                "table": self.table,
                "replicas": list(self.replicas),
                "members": list(self.members),
                "urls": dict(self.urls),
                "store_region": self.store_region,
                "partitioned": sorted(self.partitioned),
                "stopped": sorted(self.stopped),
                "secret": self.secret,
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Config:
        """The configuration a :data:`CONFIG_PATH` request carries."""
        data = json.loads(raw)
        return cls(
            name=data["name"],
            table=data["table"],
            replicas=tuple(data["replicas"]),
            members=tuple(data["members"]),
            urls=dict(data["urls"]),
            store_region=data["store_region"],
            partitioned=frozenset(data["partitioned"]),
            stopped=frozenset(data.get("stopped", ())),
            secret=data["secret"],
        )

    def cut(self, caller: str | None) -> bool:
        """True when a call from ``caller`` (a region, or None: outside every region) to this
        server crosses a partition.

        >>> c = Config(name="us-east-1", partitioned=frozenset({"us-east-1"}))
        >>> c.cut("us-east-1"), c.cut("us-west-2"), c.cut(None)
        (False, True, True)
        >>> Config(name="us-west-2", partitioned=frozenset({"us-east-1"})).cut("us-east-1")
        True
        """
        if caller == self.name:
            return False
        return self.name in self.partitioned or (caller is not None and caller in self.partitioned)


def majority(members: Sequence[str]) -> int:
    """How many of ``members`` make a majority.

    >>> majority(["a", "b", "c"]), majority(["a"])
    (2, 1)
    """
    return len(members) // 2 + 1


class ControlGate:
    """WSGI middleware: the control table through this region, a partition's cut, MRSC's refusals;
    in the store, the control table's requests one at a time.

    Everything else goes to moto unchanged.
    """

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application
        self.config = Config()
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="mrsc-ping")
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        #: Held while the store serves a request on the control table (:meth:`_one_at_a_time`).
        self._store = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path == CONFIG_PATH:  # the launcher's RoundTrip already checked the secret
            self.config = Config.from_json(_body(environ))
            with self._lock:
                self._seen.clear()
            start_response("204 No Content", [])
            return [b""]
        config = self.config
        if path == PING_PATH:
            if config.cut(environ.get("HTTP_" + FROM_HEADER.upper().replace("-", "_"))):
                return drop(environ, start_response)
            start_response("204 No Content", [])
            return [b""]
        if path.startswith((PREFIX, "/moto-api/")):  # the sandbox's own controls
            return self.application(environ, start_response)
        if config.cut(caller(environ)):
            return drop(environ, start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith("DynamoDB_") or not config.table:
            return self.application(environ, start_response)
        body = _body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        if config.table.encode() not in body:
            return self.application(environ, start_response)
        operation = target.rsplit(".", 1)[-1]
        if operation in REFUSED:
            return _error(
                start_response,
                "400 Bad Request",
                "com.amazon.coral.validate#ValidationException",
                f"{operation}: a multi-Region strongly consistent global table does "
                f"not support {REFUSED[operation]}",
            )
        if config.name == STORE:
            return self._one_at_a_time(environ, start_response)
        if config.name not in config.replicas:  # no replica here (a witness, or no member)
            return self.application(environ, start_response)
        lost = self.unreachable(config)
        if lost is not None:
            return _error(
                start_response,
                "500 Internal Server Error",
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
                f"no majority of the control regions is reachable from {config.name} "
                f"({', '.join(lost)} unreachable)",
            )
        return _forward(config, environ, body, start_response)

    def _one_at_a_time(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        """moto's whole answer to a request on the control table, while no other such request is
        served: each takes effect at one point between its arrival and its answer.

        The request's body was read before, and its answer is sent after: a slow client never
        holds the others.
        """
        with self._store:
            answer = self.application(environ, start_response)
            try:
                return [b"".join(answer)]
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()

    def unreachable(self, config: Config) -> list[str] | None:
        """None when this region reaches a majority of the control regions (itself included);
        else the regions it cannot reach.

        A region the sandbox stopped or cut off is not reached, whatever a ping would say: a
        ping it would not answer waits its whole timeout, and one that a running region
        answers late is this machine's CPU, not the network (under load a live region's server
        missed the 0.5 s and a write through another failed with no majority).
        """
        others = [m for m in config.members if m != config.name]
        if config.name in config.partitioned:
            return others
        need = majority(config.members) - 1
        failed = [m for m in others if m in config.stopped or m in config.partitioned]
        others = [m for m in others if m not in failed]
        now = time.monotonic()
        with self._lock:
            trusted = [m for m in others if now - self._seen.get(m, -1e9) < PING_TRUST]
        if len(trusted) >= need:
            return None
        reached = len(trusted)
        pending: set[Future[bool]] = set()
        names: dict[Future[bool], str] = {}
        for member in others:
            if member not in trusted:
                future = self._pool.submit(self._ping, config, member)
                pending.add(future)
                names[future] = member
        lost = list(failed)
        while pending and reached < need:
            done, pending = wait(pending, timeout=PING_TIMEOUT * 2, return_when=FIRST_COMPLETED)
            if not done:
                break
            for future in done:
                if future.result():
                    reached += 1
                else:
                    lost.append(names[future])
        if reached >= need:
            return None
        return sorted({*lost, *(names[f] for f in pending)})

    def _ping(self, config: Config, member: str) -> bool:
        url = config.urls.get(member)
        if url is None:
            return False
        request = urllib.request.Request(  # noqa: S310 - a loopback URL of the sandbox
            f"{url}{PING_PATH}", headers={SECRET_HEADER: config.secret, FROM_HEADER: config.name}
        )
        try:
            with urllib.request.urlopen(request, timeout=PING_TIMEOUT):  # noqa: S310
                pass
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # refused: a server that died on its own; late: a running one on a busy machine
            return _timed_out(exc)
        with self._lock:
            self._seen[member] = time.monotonic()
        return True


def _timed_out(exc: BaseException) -> bool:
    """True when a ping failed only by waiting too long (its server runs: the sandbox did not
    stop it, :meth:`ControlGate.unreachable`).

    >>> _timed_out(TimeoutError()), _timed_out(urllib.error.URLError(TimeoutError()))
    (True, True)
    >>> _timed_out(ConnectionRefusedError()), _timed_out(urllib.error.URLError("refused"))
    (False, False)
    """
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, TimeoutError)


def caller(environ: Mapping[str, Any]) -> str | None:
    """The region a request comes from, as its User-Agent says (None: outside every region).

    >>> caller({"HTTP_USER_AGENT": "Boto3/1.40 md/x failover-home/us-west-2"})
    'us-west-2'
    """
    found = _AGENT.search(str(environ.get("HTTP_USER_AGENT", "")))
    return found.group(1) if found else None


def _body(environ: Mapping[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return bytes(environ["wsgi.input"].read(length)) if length > 0 else b""


def _error(start_response: Callable[..., Any], status: str, kind: str, message: str) -> list[bytes]:
    body = json.dumps({"__type": kind, "message": message}).encode()
    start_response(
        status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))]
    )
    return [body]


def drop(environ: Mapping[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Close the connection without an answer: the caller sees it cut, as across a partition
    (or as a request from before a reset: :mod:`sandbox.ghosts`)."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    start_response("503 Service Unavailable", [("Content-Length", "0")])
    return [b""]


#: Headers of the store's answer that are not passed on (the server adds its own).
_HOP = frozenset({"connection", "transfer-encoding", "server", "date", "keep-alive"})


def _forward(
    config: Config, environ: Mapping[str, Any], body: bytes, start_response: Callable[..., Any]
) -> list[bytes]:
    """Send the request to the store, signed for the store's region, and pass its answer on."""
    url = urlsplit(config.urls[STORE])
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in ("HTTP_HOST", "HTTP_CONTENT_LENGTH"):
            headers[key[5:].replace("_", "-").title()] = str(value)
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = str(environ["CONTENT_TYPE"])
    if "Authorization" in headers:
        headers["Authorization"] = _SCOPE.sub(
            rf"\g<1>{config.store_region}\g<2>", headers["Authorization"]
        )
    connection = _store_connection(url.hostname or "127.0.0.1", url.port)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        _kept.connection = None
        return _error(
            start_response,
            "500 Internal Server Error",
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            f"the sandbox's control store did not answer: {exc}",
        )
    if answer.will_close:
        connection.close()
        _kept.connection = None
    kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP]
    start_response(f"{answer.status} {answer.reason}", kept)
    return [data]


#: Each serving thread's connection to the store, kept across the requests it forwards: a new
#: one per request cost both servers a TCP connection and the store a thread.
_kept = threading.local()


def _store_connection(host: str, port: int | None) -> http.client.HTTPConnection:
    """This thread's connection to the store at ``host:port``: the one it kept, unless the store
    closed it (a restarted store), else a new one."""
    connection: http.client.HTTPConnection | None = getattr(_kept, "connection", None)
    if connection is not None and (
        (connection.host, connection.port) != (host, port) or _closed(connection)
    ):
        connection.close()
        connection = None
    if connection is None:
        connection = _kept.connection = http.client.HTTPConnection(host, port, timeout=30)
    return connection


def _closed(connection: http.client.HTTPConnection) -> bool:
    """True when an idle kept connection has been closed by its server (it reads as ready: at
    its end, or with bytes no request asked for)."""
    sock = connection.sock
    if sock is None:
        return False
    poll = select.poll()  # not select.select: a busy server's descriptors pass 1024
    poll.register(sock, select.POLLIN)
    return bool(poll.poll(0))


def configure(urls: Mapping[str, str], config: Config, timeout: float = 2.0) -> None:
    """Give every server in ``urls`` (name to URL) its gate's configuration.

    Only servers that answer may be given it: a stopped one would hold the caller.
    """

    def post(name: str, url: str) -> None:
        named = Config(**{**config.__dict__, "name": name})
        request = urllib.request.Request(  # noqa: S310 - a loopback URL of the sandbox
            f"{url}{CONFIG_PATH}",
            data=named.to_json(),
            method="POST",
            headers={SECRET_HEADER: config.secret},
        )
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310
            pass

    with ThreadPoolExecutor(max(1, len(urls))) as pool:
        for future in [pool.submit(post, name, url) for name, url in urls.items()]:
            future.result()
