"""Inside an execution environment: the Lambda Python runtime's part, as the sandbox plays it.

Run by :mod:`sandbox.lambda_.environments` as ``python -I -S bootstrap.py zygote SOCKET LAYER``:
an isolated interpreter (no site-packages, no ``PYTHON*`` variables) whose ``sys.path`` is the
standard library and ``LAYER``, the runtime's own packages (boto3, botocore and what they need).
It imports them once, then listens on the abstract unix socket ``SOCKET`` (``@NAME``, see
:func:`address`), taking connections of its own user only; each connection is one new
environment, forked with boto3 already imported (a warm runtime: Lambda's cold start without the
seconds), which keeps the connection for its life:

1. it reads its init (the function's task root, handler and environment, its log file), takes
   that environment as its own, puts the task root first on ``sys.path`` and imports the handler
   module, writing no bytecode (Lambda's ``/var/task`` is read-only: a module the bundle has no
   ``.pyc`` for is compiled at every cold start, here as there); what fails there fails every
   invocation as Lambda fails it
   (``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``, ``Runtime.UserCodeSyntaxError``);
2. then it answers invocations one at a time, each with a Lambda context (request id, deadline),
   each answer the handler's JSON result or its error (``errorType``, ``errorMessage``,
   ``stackTrace``).

The function's own output goes to its log file, as Lambda sends it to its log group. The sandbox's
network is set here too, below the function's code: a client of region R reaches R's emulator
server (Route 53 and the other global services, the global one), and says in its User-Agent that
it calls from R (``failover-home/R``, what a partitioned region lets through).

Standard library only, until ``LAYER`` is on ``sys.path``: nothing of the sandbox is importable
in an environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

#: The sandbox's time scale, as :mod:`controller.clock` reads it (the same name).
TIME_SCALE_ENV = "FAILOVER_TIME_SCALE"

#: Global services: their calls go to the ``global`` server.
GLOBAL_SERVICES = frozenset({"route53", "iam", "sts", "route53-recovery-control-config"})
#: The environment variable that gives an environment the emulator's servers (region -> URL).
NETWORK_ENV = "FAILOVER_SANDBOX_NETWORK"
HOME_AGENT = "failover-home"
_HEADER = struct.Struct("!I")


def send(conn: socket.socket, message: Any) -> None:
    """One message: its length, then its JSON."""
    data = json.dumps(message).encode()
    conn.sendall(_HEADER.pack(len(data)) + data)


def receive(conn: socket.socket) -> Any:
    """The next message, or None when the other end closed."""
    head = _exactly(conn, _HEADER.size)
    if head is None:
        return None
    body = _exactly(conn, _HEADER.unpack(head)[0])
    return None if body is None else json.loads(body)


def _exactly(conn: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Context:
    """Lambda's context object, as a handler sees it."""

    def __init__(self, init: dict[str, Any], request: dict[str, Any]) -> None:
        env = init["env"]
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = request["arn"]
        self.aws_request_id = request["id"]
        # The timeout is AWS time: on the sandbox's scaled clock (``FAILOVER_TIME_SCALE``, k)
        # it passes k times faster than the wall (the runtime imports nothing of ours).
        self._scale = float(env.get(TIME_SCALE_ENV) or 1.0)
        self._deadline = time.monotonic() + request["remaining_ms"] / 1000.0 / self._scale

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds (AWS's) before the invocation's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * self._scale * 1000))


def _error(kind: str, message: str, trace: list[str] | None = None) -> dict[str, Any]:
    return {"errorType": kind, "errorMessage": message, "stackTrace": trace or []}


def load_handler(handler: str) -> tuple[Any, dict[str, Any] | None]:
    """The handler function, or Lambda's init error for it."""
    module_name, _, attribute = handler.rpartition(".")
    try:
        module = __import__(module_name, fromlist=["_"])
    except SyntaxError as exc:
        return None, _error(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}"
        )
    except ImportError as exc:
        return None, _error(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        )
    except Exception as exc:  # the module's own code failed at import
        return None, _error(type(exc).__name__, str(exc), traceback.format_tb(exc.__traceback__))
    found = getattr(module, attribute, None)
    if not callable(found):
        return None, _error(
            "Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'"
        )
    return found, None


def environment(conn: socket.socket) -> None:
    """One execution environment's life, on ``conn`` (see the module's docstring)."""
    init = receive(conn)
    if init is None:
        return
    log = os.open(init["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.clear()
    os.environ.update(init["env"])
    os.chdir(init["task_root"])
    sys.path.insert(0, init["task_root"])
    send(conn, {"pid": os.getpid()})
    handler, failed = load_handler(init["handler"])
    if failed is not None:
        print(f"[ERROR] {failed['errorType']}: {failed['errorMessage']}", flush=True)
    send(conn, {"init": failed})
    if failed is not None:
        return
    while (request := receive(conn)) is not None:
        os.environ["_X_AMZN_TRACE_ID"] = request["trace"]
        context = Context(init, request)
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            trace = traceback.format_tb(exc.__traceback__)
            print(f"[ERROR] {type(exc).__name__}: {exc}", "".join(trace), sep="\n", flush=True)
            answer: dict[str, Any] = {"error": _error(type(exc).__name__, str(exc), trace)}
        else:
            try:
                json.dumps(result)
                answer = {"ok": result}
            except (TypeError, ValueError) as exc:
                answer = {"error": _error("Runtime.MarshalError", f"Unable to marshal: {exc}")}
        sys.stdout.flush()
        send(conn, answer)


def network() -> None:
    """Route each botocore client to its region's server and mark its calls with its home
    region (see the module's docstring); read from the environment at each client's making."""
    import botocore.config
    import botocore.session

    make = botocore.session.Session.create_client

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        servers = json.loads(os.environ.get(NETWORK_ENV) or "{}")
        region = kwargs.get("region_name") or (args[0] if args else None)
        region = region or self.get_config_variable("region") or os.environ.get("AWS_REGION")
        where = "global" if service_name in GLOBAL_SERVICES else region
        if not kwargs.get("endpoint_url") and where in servers:
            kwargs["endpoint_url"] = servers[where]
        home = os.environ.get("AWS_REGION")
        if home:
            mark = botocore.config.Config(user_agent_extra=f"{HOME_AGENT}/{home}")
            given = kwargs.get("config")
            kwargs["config"] = given.merge(mark) if given is not None else mark
        return make(self, service_name, *args, **kwargs)

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def die_with_parent() -> None:
    """Be killed when the process that started this one ends (Linux), so that nothing of the
    sandbox's Lambda outlives the process that uses it."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent ended before the call
            os._exit(0)


#: The services whose models an environment's clients most likely need: read once, before the
#: forks, so that a function's first clients are made from parsed models.
WARM_SERVICES = (
    "dynamodb",
    "dynamodbstreams",
    "sqs",
    "s3",
    "ssm",
    "events",
    "sts",
    "lambda",
    "cloudwatch",
    "logs",
    "kinesis",
    "route53",
    "apigatewayv2",
)


def shared_models(services: tuple[str, ...] = WARM_SERVICES) -> None:
    """One botocore data loader for every session of the process (boto3 makes a session per
    ``boto3.session.Session``, each with a loader that would parse every model again), with
    the models of ``services`` read into it before the forks (the client made for each is
    dropped: it never connected)."""
    import botocore.loaders
    import botocore.session

    loaders: dict[tuple[Any, ...], Any] = {}
    make = botocore.session.create_loader

    def create_loader(*args: Any) -> Any:
        if args not in loaders:
            loaders[args] = make(*args)
        return loaders[args]

    botocore.session.create_loader = create_loader  # type: ignore[assignment]
    session = botocore.session.get_session()
    for service in services:
        with contextlib.suppress(Exception):  # a model this botocore lacks: read when asked
            session.create_client(
                service,
                region_name="us-east-1",
                aws_access_key_id="warm",
                aws_secret_access_key="warm",  # noqa: S106 - no key: a model is read
            )


def address(name: str) -> str:
    """The socket address of ``@NAME`` (as ``/proc/net/unix`` shows it): NAME in Linux's abstract
    namespace, which has no file (a runtime killed with its region's processes leaves nothing
    behind in the temporary directory).

    >>> address("@failover-lambda-1a2b")
    '\\x00failover-lambda-1a2b'
    """
    return "\0" + name.removeprefix("@")


def peer_uid(conn: socket.socket) -> int | None:
    """The user id of the process at the other end of the unix socket ``conn`` (None where the
    system does not say): the runtime's and the servers' launcher's one check of who calls."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (AttributeError, OSError):
        return None
    return int(struct.unpack("3i", creds)[1])


def zygote(path: str, layer: str) -> None:
    """Import the runtime's packages once, then fork an environment per connection of this
    user's (the socket is ``address(path)``)."""
    die_with_parent()
    sys.dont_write_bytecode = True  # /var/task is read-only on Lambda (the module's docstring)
    sys.path.insert(0, layer)
    import boto3  # noqa: F401 - imported here so that every environment starts warm

    shared_models()
    network()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the environments are reaped as they end
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address(path))
    listener.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        if peer_uid(conn) != os.getuid():  # an abstract socket has no file mode to refuse them
            conn.close()
            continue
        if os.fork() == 0:
            die_with_parent()
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 0
            try:
                environment(conn)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] != ["zygote"] or len(sys.argv) != 4:
        sys.exit("usage: bootstrap.py zygote SOCKET LAYER")
    zygote(sys.argv[2], sys.argv[3])
