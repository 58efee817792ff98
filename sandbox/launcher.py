"""Start moto servers for the price of one: import moto once, then fork a server per port.

Run by :func:`sandbox.servers.start_all` as
``python -m sandbox.launcher SOCKET NAME=PORT=LOGFILE ...``. Importing moto and
building its per-service applications cost seconds of CPU; done once before forking, every server
shares it. Each child is a server of its own, in its own session, with its own log, bound to
127.0.0.1 on its port: killing or stopping one leaves the others alone.

The launcher prints ``NAME PID`` for each server and exits. It leaves one more child behind, the
*zygote*: it listens on the unix socket ``SOCKET`` and forks a new server, moto imported, for each
``NAME PORT LOGFILE`` line it receives, answering with the new pid. That is how a killed region is
restarted in a fraction of a second (``SOCKET`` ``-`` means no zygote).

Not done, measured and dropped: warming the zygote up by provisioning once in-process costs
about 4 s of CPU and saves about 1.3 s per restarted server.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

HOST = "127.0.0.1"
#: The services the sandbox provisions and the controller calls: built before forking.
SERVICES = (
    "awslambda", "iam", "sts", "ssm", "sqs", "dynamodb", "dynamodbstreams", "s3", "kinesis",
    "events", "logs", "cloudwatch", "apigateway", "route53", "moto_api._internal",
)


#: ``POST`` here with ``?seconds=S`` to set a server's modelled round trip.
ROUND_TRIP_PATH = "/_failover/round-trip"


class RoundTrip:
    """WSGI middleware: each request waits a set time before it is served.

    On loopback the emulator answers in a few milliseconds of CPU, where a real region's API
    answers in tens of milliseconds, mostly spent on the network and in AWS. To measure what
    running steps side by side saves, the sandbox can model that wait (0 by default). The
    wait sleeps, as a network does: it costs no CPU and overlaps between requests.
    """

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application
        self.seconds = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == ROUND_TRIP_PATH:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            self.seconds = max(0.0, float(query.get("seconds", ["0"])[0]))
            start_response("204 No Content", [])
            return [b""]
        if self.seconds:
            time.sleep(self.seconds)
        return self.application(environ, start_response)


def _application() -> Any:
    """moto's dispatching application, with the sandbox's services already built and the
    sandbox's changes to moto applied (:mod:`sandbox.moto_patches`)."""
    from moto.backend_index import backend_url_patterns
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from sandbox import moto_patches

    moto_patches.detach_event_sources()
    moto_patches.respect_rule_state()
    moto_patches.cache_module_list()
    moto_patches.light_transactions()
    application = DomainDispatcherApplication(create_backend_app)
    known = {name for name, _ in backend_url_patterns}
    for service in SERVICES:
        if service in known:
            application.app_instances[service] = create_backend_app(service)  # type: ignore[arg-type]
    return RoundTrip(application)


def _detach(log_file: str) -> None:
    """Become a session leader with stdin from /dev/null and output to ``log_file``."""
    os.setsid()
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), 0)
    with open(log_file, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)


def _serve(application: Any, port: int, log_file: str) -> None:
    """A server's life: its own session and log, then moto's server until a signal."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    _detach(log_file)
    os.environ["MOTO_PORT"] = str(port)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    class Handler(MotoRequestHandler):
        """moto's handler, logging only the requests that failed on the server's side: a line
        per request costs the server a tenth of its time and says nothing in a sandbox."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if str(code).startswith("5"):
                super().log_request(code, size)

    run_simple(HOST, port, application, threaded=True, use_reloader=False,
               request_handler=Handler)


def _serve_without(listener: socket.socket, application: Any, port: int, log_file: str) -> None:
    """:func:`_serve`, in a child of the zygote that must not keep its socket open."""
    listener.close()
    _serve(application, port, log_file)


def _fork(target: Any, *args: Any) -> int:
    """Run ``target(*args)`` in a child that never returns here; the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
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


def _zygote(application: Any, listener: socket.socket, log_file: str) -> None:
    """Fork a server, moto already imported, for every request on ``listener``, until stopped."""
    _detach(log_file)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the servers it forks are reaped at exit
    while True:
        connection, _ = listener.accept()
        with connection:
            line = connection.makefile("r").readline().split()
            if len(line) != 3:
                connection.sendall(b"error: expected NAME PORT LOGFILE\n")
                continue
            name, port, server_log = line
            pid = _fork(_serve_without, listener, application, int(port), server_log)
            print(f"forked {name} on port {port}: pid {pid}", flush=True)
            connection.sendall(f"{pid}\n".encode())


def main(argv: list[str]) -> int:
    """Fork a server for every ``NAME=PORT=LOGFILE``, and the zygote; print ``NAME PID``."""
    socket_path, *targets = argv
    application = _application()
    for name, port, log_file in (arg.split("=", 2) for arg in targets):
        sys.stdout.write(f"{name} {_fork(_serve, application, int(port), log_file)}\n")
    if socket_path != "-":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(socket_path)
        listener.listen(8)
        log_file = os.path.join(os.path.dirname(targets[0].split("=", 2)[2]), "zygote.log")
        sys.stdout.write(f"zygote {_fork(_zygote, application, listener, log_file)}\n")
        listener.close()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
