"""The status page's routes: a request in, a response out, nothing about sockets.

Called by the HTTP server (:mod:`controller.serve.server`) and by tests directly. Read-only
unless built with a token: then ``POST /api/automation/pause|resume`` with
``Authorization: Bearer <token>`` flips the automation switch. A route that does not exist is
404; an action without credentials is 401, with wrong or malformed ones 403; none of them
changes anything. An action waits for the control table at most ``Sources.action_wait``
seconds and always answers JSON with its ``outcome`` (:class:`~controller.controltable.
WriteOutcome`): 200 done; 503 refused (no majority: not applied) or unknown (sent and not
answered, or still waiting: it may still land); 409 refused (another write came first, or an
action is still in flight).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from controller import views
from controller.controltable import WriteOutcome
from controller.errors import ConflictError, FailoverError, NoMajorityError, OutcomeUnknownError
from controller.serve.snapshot import Cached, NotReadYetError
from controller.serve.sources import Sources

log = logging.getLogger(__name__)

#: The page's own files, and nothing else of the package, by path.
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
#: Every answer: no caching, no sniffing, no framing, and nothing loaded from elsewhere.
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'none'; base-uri 'none'",
}
#: The API's read routes (besides the page's files).
READS = frozenset(
    {
        "/api/status",
        "/api/runs",
        "/api/run",
        "/api/watchers",
        "/api/graph",
        "/api/config",
        "/api/traffic",
    }
)
ACTIONS = {"/api/automation/pause": True, "/api/automation/resume": False}
MAX_BODY = 4096


@dataclass(frozen=True)
class Response:
    """What to send back: a status code, a body and its headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, data: Any, **headers: str) -> Response:
    body = json.dumps(data, default=str).encode("utf-8")
    return Response(status, body, "application/json", headers)


def _error(status: int, message: str, **headers: str) -> Response:
    return _json(status, {"error": message}, **headers)


class Api:
    """Routes requests to ``sources``.

    Parameters
    ----------
    sources:
        What to serve (:func:`~controller.serve.sources.deployment_sources`).
    token:
        The bearer token the actions require; None: the page is read-only (no action routes).
    allowed_hosts:
        The ``Host`` headers accepted (the address the server listens on); a page bound to the
        loopback refuses any other, so that a web page elsewhere cannot reach it through a
        DNS name rebound to 127.0.0.1. Empty: any host.
    """

    def __init__(
        self, sources: Sources, *, token: str | None = None, allowed_hosts: Collection[str] = ()
    ) -> None:
        self.sources = sources
        self.token = token
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self._acting = threading.Lock()  # one action in flight at a time

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Response:
        """Answer one request."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        headers = {name.lower(): value for name, value in headers.items()}
        host = (headers.get("host") or "").lower()
        if self.allowed_hosts and host not in self.allowed_hosts:
            return _error(403, f"unexpected Host header {host!r}")
        if method in ("GET", "HEAD"):
            return self._get(path)
        if method == "POST" and self.token is not None and path in ACTIONS:
            return self._act(path, headers, body)
        if path in STATIC or path in READS:
            return _error(
                405,
                f"{method} is not allowed here (the page is read-only"
                + (
                    ""
                    if self.token is not None
                    else "; actions need failover serve --allow-actions"
                )
                + ")",
                Allow="GET, HEAD",
            )
        return _error(404, f"no such path: {path}")

    # -- reads -----------------------------------------------------------------------------

    def _get(self, path: str) -> Response:
        if path in STATIC:
            name, kind = STATIC[path]
            data = resources.files("controller.serve").joinpath("static", name).read_bytes()
            return Response(200, data, kind)
        cached: dict[str, Cached[Any]] = {
            "/api/status": self.sources.status,
            "/api/runs": self.sources.runs,
            "/api/run": self.sources.run,
            "/api/watchers": self.sources.watchers,
        }
        if path in cached:
            return self._snapshot(cached[path])
        if path == "/api/graph":  # the levels, and what the last snapshots say is degraded
            status, run = self.sources.status.peek(), self.sources.run.peek()
            return _json(
                200,
                {
                    **self.sources.graph,
                    "degraded": views.degraded_components(
                        status.value if status else None, run.value if run else None
                    ),
                },
            )
        if path == "/api/config":
            return _json(
                200,
                {
                    **self.sources.config,
                    "actions": self.token is not None,
                    "traffic": self.sources.traffic is not None,
                },
            )
        if path == "/api/traffic":
            if self.sources.traffic is None:
                return _json(200, {"series": []})
            return _json(200, self.sources.traffic())
        return _error(404, f"no such path: {path}")

    @staticmethod
    def _snapshot(cached: Cached[Any]) -> Response:
        try:
            snap = cached.get()
        except NotReadYetError as exc:
            return _error(503, str(exc), **{"Retry-After": "1"})
        headers = {"X-Snapshot-Age": f"{snap.age:.2f}"}
        if snap.error:
            headers["X-Snapshot-Error"] = snap.error.encode("ascii", "replace").decode()[:300]
            if snap.value is None:
                return _error(503, snap.error, **headers)
        return _json(200, snap.value, **headers)

    # -- actions ---------------------------------------------------------------------------

    def _act(self, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        assert self.token is not None
        given = headers.get("authorization")
        if not given:
            return _error(
                401,
                "this action needs 'Authorization: Bearer <token>' (the token "
                "failover serve printed at start)",
                **{"WWW-Authenticate": "Bearer"},
            )
        scheme, _, credential = given.strip().partition(" ")
        wanted = self.token.encode("utf-8")
        offered = credential.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() != "bearer" or not hmac.compare_digest(offered, wanted):
            return _error(403, "wrong or malformed token")
        if len(body) > MAX_BODY:
            return _error(413, "request body too large")
        paused = ACTIONS[path]
        return self._flip(paused, _reason(body))

    def _flip(self, paused: bool, reason: str) -> Response:
        """Write the switch in a thread of its own and wait for it at most ``action_wait``."""
        what = "automation " + ("pause" if paused else "resume")
        if not self._acting.acquire(blocking=False):
            return _outcome(
                409,
                WriteOutcome.REFUSED,
                f"{what} not sent: an earlier action is still waiting for the control table; "
                "watch the automation state",
            )
        done = threading.Event()
        result: dict[str, Any] = {}

        def write() -> None:
            try:
                result["state"] = self.sources.set_paused(paused, reason)
                log.warning("%s from the status page: %s", what, reason or "-")
            except Exception as exc:  # answered below, or logged when nobody waits any more
                result["error"] = exc
                log.warning("%s from the status page: %s", what, exc)
            finally:
                self._acting.release()
                self.sources.invalidate()
                done.set()

        threading.Thread(target=write, daemon=True, name="serve-action").start()
        wait = self.sources.action_wait
        if not done.wait(wait):
            return _outcome(
                503,
                WriteOutcome.UNKNOWN,
                f"{what}: the control table did not answer within {wait:.1f}s; it may still be "
                "applied: watch the automation state",
                **{"Retry-After": "1"},
            )
        error = result.get("error")
        if error is None:
            return _json(200, {**result["state"], "outcome": WriteOutcome.DONE.value})
        text = " ".join(str(error).split())
        if isinstance(error, OutcomeUnknownError):
            return _outcome(503, WriteOutcome.UNKNOWN, text)
        if isinstance(error, ConflictError):
            return _outcome(409, WriteOutcome.REFUSED, text)
        if isinstance(error, NoMajorityError):
            return _outcome(503, WriteOutcome.REFUSED, text, **{"Retry-After": "1"})
        if isinstance(error, FailoverError):  # refused by AWS (a wrong table, credentials)
            return _outcome(502, WriteOutcome.REFUSED, f"{what}: {text}")
        return _outcome(500, WriteOutcome.UNKNOWN, f"{what}: {type(error).__name__}: {text}")


def _outcome(status: int, outcome: WriteOutcome, message: str, **headers: str) -> Response:
    """An action's answer: what happened to its write, and why, as JSON."""
    return _json(status, {"error": message, "outcome": outcome.value}, **headers)


def _reason(body: bytes) -> str:
    """The ``reason`` of a JSON body, if any (a body is optional)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {}
    reason = data.get("reason", "") if isinstance(data, dict) else ""
    return str(reason)[:200] if reason else "from the status page"
