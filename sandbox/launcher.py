"""Start moto servers for the price of one: import moto once, then fork a server per port.

Run by :func:`sandbox.servers.start_all` as
``python -m sandbox.launcher SOCKET NAME=PORT=LOGFILE ...``. Importing moto and
building its per-service applications cost seconds of CPU; done once before forking, every server
shares it. Each child is a server of its own, in its own session, with its own log, bound to
127.0.0.1 on its port: killing or stopping one leaves the others alone.

The launcher prints ``NAME PID PORT`` for each server and exits; a ``PORT`` of 0 asks for any free
port, and the launcher binds it before it answers, so two sandboxes, or a client's ephemeral
port, can never take a port between its choice and its server's start. The port stays reserved
for the zygote's lifetime (a bound, never listening ``SO_REUSEPORT`` socket): a killed region's
port refuses connections, as a dead region does, and is its own again when it restarts.

It leaves one more child behind, the *zygote*: it listens on the unix socket ``SOCKET`` and
forks a new server, moto imported, for each ``NAME`` line it receives (a server it started, on
that server's port and log), answering with the new pid. That is how a killed region is
restarted in a fraction of a second (``SOCKET`` ``-`` means no zygote).

Only its owner may use it: the zygote answers a connection only when its peer runs as the same
user (``SO_PEERCRED``), and only for a name it started, on that name's port and log; the sandbox's
controls (moto's reset, seed and config, the round-trip model, the snapshots) answer only a
request that carries the sandbox's secret, which ``up`` generates, keeps in its 0600 state file
and gives the launcher in its environment (never on its command line, which every local user can
read).

Besides importing moto, the launcher loads the botocore models the servers read and write requests
with, and builds the REST APIs' URL maps (:func:`warm`): moto would build them on first use, in
every server, and in every thread that asked before the first one finished. Not done, measured and
dropped: warming the zygote up by provisioning once in-process costs about 4 s of CPU and saves
about 1.3 s per restarted server.
"""

from __future__ import annotations

import gc
import hmac
import math
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from controller import clock
from sandbox.controls import CODE_PATH, PREFIX, SECRET_ENV, SECRET_HEADER
from sandbox.lambda_.bootstrap import peer_uid
from sandbox.owner import watch as end_with_owner

HOST = "127.0.0.1"
#: The zygote's log, beside the servers' logs.
ZYGOTE_LOG = "zygote.log"
#: The services the sandbox provisions and the controller calls: built before forking.
SERVICES = (
    "awslambda",
    "iam",
    "sts",
    "ssm",
    "sqs",
    "dynamodb",
    "dynamodbstreams",
    "s3",
    "kinesis",
    "kms",
    "events",
    "logs",
    "cloudwatch",
    "apigateway",
    "apigatewayv2",
    "acm",
    "sns",
    "route53",
    "moto_api._internal",
)
#: The botocore models of the APIs the sandbox and the controller call: each server reads a
#: request and writes its answer through them. moto loads a model, and builds a REST API's URL
#: map, on the first request that needs it, in every process and in every thread that asks
#: before the first has finished; loaded here, before forking, every server inherits them.
MODELS = (
    "lambda",
    "iam",
    "sts",
    "ssm",
    "sqs",
    "dynamodb",
    "dynamodbstreams",
    "s3",
    "kinesis",
    "kms",
    "events",
    "logs",
    "cloudwatch",
    "apigateway",
    "apigatewayv2",
    "acm",
    "sns",
    "route53",
)


#: ``POST`` here with ``?seconds=S`` to set a server's modelled round trip.
ROUND_TRIP_PATH = f"{PREFIX}round-trip"
#: ``POST`` here to keep a copy of everything the server holds (:mod:`sandbox.snapshot`) ...
SNAPSHOT_PATH = f"{PREFIX}snapshot"
#: ... and here to put it back (409 when this process has taken none).
RESTORE_PATH = f"{PREFIX}restore"
#: The longest round trip a server may be told to model: a real region answers well within it.
MAX_ROUND_TRIP = 2.0
_SECRET_KEY = "HTTP_" + SECRET_HEADER.upper().replace("-", "_")


def guarded(environ: dict[str, Any]) -> bool:
    """True when the request is one of the sandbox's controls: the round-trip model, or a
    change through moto's own API (reset, seed, config); reading moto's index is not."""
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith(PREFIX):
        return True
    return path.startswith("/moto-api/") and environ.get("REQUEST_METHOD", "GET") != "GET"


def round_trip_seconds(query: str) -> float | None:
    """The round trip a ``?seconds=S`` query asks for, or None when it is not a number in
    ``[0, MAX_ROUND_TRIP]``.

    >>> round_trip_seconds("seconds=0.02"), round_trip_seconds("seconds=inf")
    (0.02, None)
    """
    try:
        seconds = float(parse_qs(query).get("seconds", ["0"])[0])
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and 0.0 <= seconds <= MAX_ROUND_TRIP else None


INTERNAL_FAILURE = (
    b"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
    b"<Message>The request processing has failed because of an unknown error."
    b"</Message></Error><RequestId>sandbox</RequestId></ErrorResponse>"
)


class AwsErrors:
    """WSGI middleware: an error inside moto answers as AWS answers its own, ``500
    InternalFailure`` in a body every botocore protocol parses, instead of Flask's HTML page.

    botocore's query-protocol parser raises on an HTML body before its retry handler sees the
    status, so one emulator bug under load failed a whole call that AWS's answer would have
    let botocore retry. moto runs its apps in debug mode, where Flask re-raises an error
    instead of answering its page: that error is answered the same way (it used to reach the
    HTTP front, whose plain-text 500 botocore's query parser failed on just the same). The
    traceback stays in the server's log. A caller's dropped connection is not moto's error: it
    goes up as it came.
    """

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        answer: list[Any] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers, exc_info]
            return lambda data: None  # the legacy write(); moto's Flask apps never call it

        try:
            body = self.application(environ, hold)
        except (ConnectionError, TimeoutError):  # the caller went away (keepalive.DROPPED)
            raise
        except Exception:  # any error inside moto is AWS's InternalFailure
            traceback.print_exc()
            return internal_failure(start_response)
        status, headers, exc_info = answer
        html = any(k.lower() == "content-type" and v.startswith("text/html") for k, v in headers)
        if not (status.startswith("500") and html):
            start_response(status, headers, exc_info)
            return body
        if hasattr(body, "close"):
            body.close()
        return internal_failure(start_response)


def internal_failure(start_response: Callable[..., Any]) -> list[bytes]:
    """Answer AWS's ``500 InternalFailure``, in a body every botocore protocol parses."""
    start_response(
        "500 Internal Server Error",
        [
            ("Content-Type", "text/xml"),
            ("Content-Length", str(len(INTERNAL_FAILURE))),
            ("x-amzn-ErrorType", "InternalFailure"),
        ],
    )
    return [INTERNAL_FAILURE]


class RoundTrip:
    """WSGI middleware: each request waits a set time before it is served; the sandbox's
    controls answer only its owner.

    On loopback the emulator answers in a few milliseconds of CPU, where a real region's API
    answers in tens of milliseconds, mostly spent on the network and in AWS. To measure what
    running steps side by side saves, the sandbox can model that wait (0 by default). The
    wait sleeps, as a network does: it costs no CPU and overlaps between requests.

    ``secret``: what a control request (:func:`guarded`) must carry in ``SECRET_HEADER``; every
    control is refused (403) when it is empty.
    """

    def __init__(self, application: Callable[..., Iterable[bytes]], secret: str = "") -> None:
        self.application = application
        self.secret = secret
        self.seconds = 0.0

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if guarded(environ):
            given = str(environ.get(_SECRET_KEY, ""))
            if not self.secret or not hmac.compare_digest(given.encode(), self.secret.encode()):
                start_response("403 Forbidden", [("Content-Type", "text/plain")])
                return [b"the sandbox's controls need its secret\n"]
        if environ.get("PATH_INFO") == ROUND_TRIP_PATH:
            seconds = round_trip_seconds(str(environ.get("QUERY_STRING", "")))
            if seconds is None:
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [f"seconds: a number from 0 to {MAX_ROUND_TRIP}\n".encode()]
            self.seconds = seconds
            start_response("204 No Content", [])
            return [b""]
        if self.seconds:  # AWS's latency, in AWS seconds: the sandbox's clock scales it
            clock.sleep(self.seconds)
        return self.application(environ, start_response)


class Snapshots:
    """WSGI middleware: keep a copy of the server's state and put it back on request
    (:mod:`sandbox.snapshot`); behind :class:`RoundTrip`, which checks the sandbox's secret.

    ``?file=PATH`` on a snapshot also writes the copy there (0600); on a restore, reads the copy
    from there instead (a restarted server has none in memory), and with ``&keep=1`` keeps it
    as its own from then on.
    """

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application
        self.kept: Any = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path not in (SNAPSHOT_PATH, RESTORE_PATH):
            return self.application(environ, start_response)
        from sandbox import snapshot

        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        file = query.get("file", [""])[0]
        if path == SNAPSHOT_PATH:
            self.kept = snapshot.take()
            if file:
                snapshot.write(snapshot.take(whole=True), file)
        elif file:
            try:
                copy = snapshot.read(file)
            except OSError as exc:
                start_response("409 Conflict", [("Content-Type", "text/plain")])
                return [f"no snapshot in {file}: {exc.strerror}\n".encode()]
            snapshot.restore(copy)
            if query.get("keep", [""])[0] == "1":
                self.kept = copy
        elif self.kept is None:
            start_response("409 Conflict", [("Content-Type", "text/plain")])
            return [b"no snapshot taken in this server\n"]
        else:
            snapshot.restore(self.kept)
        start_response("204 No Content", [])
        return [b""]


class FunctionCode:
    """WSGI middleware: a function's deployed zip, as the URL ``GetFunction`` names answers it
    on AWS (moto names one it does not serve); behind :class:`RoundTrip`, which checks the
    sandbox's secret. The sandbox's Lambda runtime runs each function from it."""

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if not path.startswith(CODE_PATH):
            return self.application(environ, start_response)
        from moto.awslambda.utils import get_backend
        from moto.core.models import DEFAULT_ACCOUNT_ID

        region, _, name = path.removeprefix(CODE_PATH).partition("/")
        qualifier = parse_qs(str(environ.get("QUERY_STRING", ""))).get("qualifier", [None])[0]
        try:
            code = get_backend(DEFAULT_ACCOUNT_ID, region).get_function(name, qualifier)
            data = bytes(code.code_bytes)
        except Exception as exc:  # not found, or not a zip function
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [f"no code for {name} ({qualifier}) in {region}: {exc}\n".encode()]
        start_response(
            "200 OK",
            [("Content-Type", "application/zip"), ("Content-Length", str(len(data)))],
        )
        return [data]


def _application() -> Any:
    """moto's dispatching application, with the sandbox's services already built and the
    sandbox's changes to moto applied (:mod:`sandbox.moto_patches`), behind the sandbox's
    layers (:func:`sandbox_layers`)."""
    return sandbox_layers(moto_application())


def moto_application() -> Any:
    """moto's dispatching application, its services built and moto changed as the sandbox
    needs: the part of a launcher's start that is the same for every sandbox (the forkserver
    keeps one built, :mod:`sandbox.forkserver`)."""
    from sandbox import moto_iteration, moto_patches, route53

    moto_patches.share_data_loader()  # before moto's backends are imported: they read at import
    moto_patches.ssm_without_ec2()
    moto_iteration.backends_walk_copies()  # before the first backend is made
    from moto.backend_index import backend_url_patterns
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from sandbox import moto_dispatch  # imports moto's: after the changes above

    moto_patches.detach_event_sources()
    moto_patches.respect_rule_state()
    moto_patches.cache_module_list()
    moto_patches.light_transactions()
    moto_patches.regional_domain_names()
    moto_patches.one_copy_of_code()
    moto_patches.mappings_keep_their_alias()
    moto_patches.reserved_zero_answered()
    moto_patches.delays_on_the_clock()
    moto_patches.mappings_listed_by_function()
    moto_patches.dispatch_lookups_once()
    moto_patches.private_keys_when_used()
    moto_patches.url_builders_when_used()
    moto_patches.no_cors()  # before the first app is built
    route53.patch_status()
    application = DomainDispatcherApplication(create_backend_app)
    known = {name for name, _ in backend_url_patterns}
    for service in SERVICES:
        if service in known:
            built = create_backend_app(service)  # type: ignore[arg-type]
            application.app_instances[service] = moto_dispatch.Lean(built)  # type: ignore[assignment]
    try:
        warm(MODELS)
    except (ImportError, AttributeError) as exc:  # moto's internals moved: start cold, as moto does
        print(f"warm-up skipped: {exc!r}", file=sys.stderr)
    return application


def sandbox_layers(application: Any) -> Any:
    """``application`` behind the sandbox's own layers (its controls, the snapshots, the
    functions' code, Route 53's configuration, the control table's gate, AWS's errors), which
    take this sandbox's secret from the environment."""
    from sandbox import mrsc, route53
    from sandbox.cloudwatch.evaluator import AlarmControl

    return RoundTrip(
        AlarmControl(
            Snapshots(FunctionCode(route53.Configure(mrsc.ControlGate(AwsErrors(application)))))
        ),
        os.environ.pop(SECRET_ENV, ""),
    )


def warm(models: Iterable[str]) -> list[str]:
    """Load the botocore model of each of ``models`` into moto's caches, with the URL map of a
    REST API's router; the names of the REST APIs whose map was built.

    moto caches both for the life of the process (``functools.cache``); a forked server inherits
    them instead of building its own on its first requests (about 0.65 s of CPU for the
    sandbox's APIs, paid again by each thread that asked while the first was still building).
    """
    from moto.core.routing import get_service_router
    from moto.core.utils import get_service_model

    built = []
    for name in models:
        protocol = str(get_service_model(name).protocol)
        # moto builds a REST API's URL map on its router's first match; the map is per protocol,
        # and a REST API speaks only its own. A private method: if a later moto drops it, the
        # servers build their maps themselves, as moto does, and the warm-up's test says so.
        build = getattr(get_service_router(name), "_get_router", None)
        if protocol.startswith("rest-") and build is not None:
            build(protocol)
            built.append(name)
    return built


def _detach(log_file: str) -> None:
    """Become a session leader with stdin from /dev/null and output to ``log_file`` (0600)."""
    os.setsid()
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), 0)
    log = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(log, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
    finally:
        os.close(log)


def reserve(port: int) -> socket.socket:
    """A socket bound to ``port`` on 127.0.0.1 (0: any free port) that other sockets of this
    user may bind too (``SO_REUSEPORT``); it never listens, so it takes no connection."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def _serve(listener: socket.socket, application: Any, port: int, log_file: str) -> None:
    """A server's life: its own session and log, then moto's server on ``listener`` until a
    signal."""
    from sandbox.ghosts import DropGhosts
    from sandbox.keepalive import make_server

    _detach(log_file)
    os.environ["MOTO_PORT"] = str(port)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    end_with_owner()  # a test's sandbox: ends with the test process, however that ends

    # Outside everything: a request from before the last reset never reaches a backend.
    application = DropGhosts(application, os.path.dirname(log_file))
    server = make_server(HOST, port, application, fd=listener.fileno())
    from sandbox.cloudwatch.evaluator import start_here

    start_here()  # the region's alarms are evaluated in the region's process, off until asked
    server.serve_forever()


def _serve_without(
    sockets: Iterable[socket.socket], application: Any, port: int, log_file: str
) -> None:
    """:func:`_serve`, in a child that must not keep the launcher's sockets open: it listens
    on a socket of its own, beside the launcher's reservation of the same port."""
    listener = reserve(port)
    listener.listen(128)
    for sock in sockets:
        sock.close()
    _serve(listener, application, port, log_file)


#: Sockets of the process that forked this launcher (:mod:`sandbox.forkserver`), which no
#: server or zygote forked here may keep open.
NOT_INHERITED: list[socket.socket] = []


def _fork(target: Any, *args: Any) -> int:
    """Run ``target(*args)`` in a child that never returns here; the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    for sock in NOT_INHERITED:
        sock.close()
    gc.enable()  # paused in the launcher while it built moto (main)
    code = 0
    try:
        target(*args)
    except SystemExit:
        pass
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _zygote(
    application: Any,
    listener: socket.socket,
    log_file: str,
    chosen: dict[str, tuple[int, str]],
    reserved: list[socket.socket],
) -> None:
    """Fork a server, moto already imported, for every request on ``listener``, until stopped.

    A request is one line, ``NAME``: a server the launcher started, restarted on its own port
    with its own log (``chosen``). A peer of another user, or another name, is refused.
    """
    _detach(log_file)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the servers it forks are reaped at exit
    end_with_owner()
    owner = os.getuid()
    while True:
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(5.0)
            uid = peer_uid(connection)
            if uid != owner:
                print(f"refused a request from uid {uid}", flush=True)
                connection.sendall(b"error: not the sandbox's owner\n")
                continue
            try:
                name = connection.makefile("r").readline(256).strip()
            except OSError:
                continue
            if name not in chosen:
                connection.sendall(b"error: not a server of this sandbox\n")
                continue
            port, server_log = chosen[name]
            pid = _fork(_serve_without, [listener, *reserved], application, port, server_log)
            print(f"forked {name} on port {port}: pid {pid}", flush=True)
            connection.sendall(f"{pid}\n".encode())


def main(argv: list[str], built: Any = None) -> int:
    """Fork a server for every ``NAME=PORT=LOGFILE``, and the zygote; print ``NAME PID PORT``.

    ``built``: moto's application already built (:func:`moto_application`), else built here.
    """
    socket_path, *targets = argv
    # moto's modules and the applications built from them live as long as every server forked
    # from here: the collector is paused while they are built, and they are frozen before the
    # first fork, so that no server's collections walk them again (about an eighth of a
    # server's CPU) or copy the pages they share with the launcher (the ``gc.freeze`` docs).
    gc.disable()
    os.umask(0o077)  # whatever the caller's umask: its logs and its socket are its owner's
    chosen: dict[str, tuple[int, str]] = {}
    reserved: list[socket.socket] = []
    for name, asked, log_file in (arg.split("=", 2) for arg in targets):
        reserved.append(reserve(int(asked)))
        chosen[name] = (int(reserved[-1].getsockname()[1]), log_file)
    application = sandbox_layers(built) if built is not None else _application()
    gc.freeze()
    for name, (port, log_file) in chosen.items():
        pid = _fork(_serve_without, reserved, application, port, log_file)
        sys.stdout.write(f"{name} {pid} {port}\n")
    if socket_path != "-":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(socket_path)
        os.chmod(socket_path, 0o600)
        listener.listen(8)
        log_file = os.path.join(os.path.dirname(targets[0].split("=", 2)[2]), ZYGOTE_LOG)
        pid = _fork(_zygote, application, listener, log_file, chosen, reserved)
        sys.stdout.write(f"zygote {pid} 0\n")
        listener.close()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
