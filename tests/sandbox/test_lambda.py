"""The sandbox's Lambda runs each function as Lambda does: from its deployed bundle, alone.

A small application is deployed by the program; its functions are invoked through the one invoke
path (:mod:`sandbox.lambda_.invoke`), as the API, the pollers and the schedules invoke them:

- a handler whose bundle lacks a module it imports fails every invocation with
  ``Runtime.ImportModuleError`` (the module is installed here, for the tests; the bundle is all
  a function gets), counted as the function's error; the same code with the module in its
  ``requirements.txt`` runs; the API answers a failed function with ``500``;
- a function runs with its deployed environment, memory and timeout, and Lambda's context;
- an invocation that outlives the function's timeout is killed, and the next one starts cold;
- a function fenced to reserved concurrency 0 is throttled, never run; its Throttles reach its
  region's CloudWatch, whose evaluator (in the region's server) puts its throttles alarm in ALARM
  within its evaluation periods and notifies its topic; a region that hangs and heals keeps
  its alarms until its metrics say otherwise;
- at reserved concurrency 1, an asynchronous event due while an invocation runs is throttled,
  then retried or dropped as its event age allows;
- nothing outlives the invoker.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller import clock
from sandbox import Sandbox
from sandbox.cloudwatch.evaluator import EVALUATION_INTERVAL
from sandbox.cloudwatch.metrics import LambdaMetrics, Metrics
from sandbox.endpoint import RegionalEndpoint, deployed_routes
from sandbox.lambda_.invoke import Invocation, Invoker, Outcome, Throttled
from sandbox.state import LOG_DIR
from sandbox.watchers import AsyncConfig, deliver
from tests.kit.emulator import new_invoker, pid_alive, plain

pytestmark = pytest.mark.sandbox

REGION = "us-east-1"
#: The scaled clock of the test that needs one (AWS seconds per wall second).
SCALED = 2.0
TOPOLOGY = """\
app: lam
regions: {primary: us-east-1, standby: [us-west-2]}
components:
  settings: {kind: parameter, value: "blue"}
  bare:   {kind: function, code: plain, handler: needs_yaml.handler}
  bundled: {kind: function, code: with_yaml, handler: needs_yaml.handler}
  slow:   {kind: function, code: plain, handler: slow.handler, timeout: 1}
  env:    {kind: function, code: plain, handler: env.handler, memory: 384, timeout: 7,
           depends_on: [settings]}
  api:
    kind: api
    routes:
      - {method: GET, path: /bare, function: bare, auth: jwt}
      - {method: GET, path: /env, function: env, auth: jwt}
"""
NEEDS_YAML = """\
import yaml  # installed where the tests run; a function gets only what its bundle carries

def handler(event, context):
    return {"statusCode": 200, "body": yaml.safe_dump({"ok": True})}
"""
SLOW = """\
import time

def handler(event, context):
    time.sleep(event.get("seconds", 5))
    return "done"
"""
ENV = """\
import os, sys, boto3

def handler(event, context):
    ssm = boto3.client("ssm")  # no endpoint: the region's own, as in Lambda
    value = ssm.get_parameter(Name=os.environ["PARAMETER_SETTINGS"])["Parameter"]["Value"]
    importable = []
    for name in ("yaml", "moto", "pulumi", "controller", "sandbox", "boto3", "botocore"):
        try:
            __import__(name)
            importable.append(name)
        except ImportError:
            pass
    return {
        "env": dict(os.environ),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "request": context.aws_request_id,
        "parameter": value,
        "importable": importable,
        "pid": os.getpid(),
        "writes_bytecode": not sys.dont_write_bytecode,
        "own_bytecode": os.path.isfile(__cached__),
    }
"""


def deploy(tmp_path_factory: pytest.TempPathFactory, time_scale: float = 1.0) -> Sandbox:
    """The small application above, deployed on a sandbox at ``time_scale``."""
    tmp = tmp_path_factory.mktemp("lambda")
    (tmp / "topology.yaml").write_text(TOPOLOGY, encoding="utf-8")
    plain, bundled = tmp / "plain", tmp / "with_yaml"
    for folder in (plain, bundled):
        folder.mkdir()
        (folder / "needs_yaml.py").write_text(NEEDS_YAML, encoding="utf-8")
    (bundled / "requirements.txt").write_text("PyYAML\n", encoding="utf-8")
    (plain / "slow.py").write_text(SLOW, encoding="utf-8")
    (plain / "env.py").write_text(textwrap.dedent(ENV), encoding="utf-8")
    return Sandbox.up(tmp / "topology.yaml", tmp / ".failover", time_scale=time_scale)


@pytest.fixture(scope="module")
def box(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sandbox = deploy(tmp_path_factory)
    try:
        yield sandbox
    finally:
        sandbox.down()


@pytest.fixture
def scaled(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The same application on a scaled clock (k = SCALED): its periods are AWS seconds."""
    found = clock.current()
    sandbox = deploy(tmp_path_factory, SCALED)
    try:
        yield sandbox
    finally:
        try:
            sandbox.down()
        finally:
            clock.use(found)  # the module's sandbox's clock, for the tests after this one


@pytest.fixture
def invoker(box: Sandbox) -> Iterator[Invoker]:
    made = new_invoker(box)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def scaled_invoker(scaled: Sandbox) -> Iterator[Invoker]:
    made = new_invoker(scaled)
    try:
        yield made
    finally:
        made.close()


def arn(box: Sandbox, component: str) -> str:
    ref = box.manifest.ref(component, REGION)
    return f"{ref.arn}:{ref.alias}"


def test_a_bundle_missing_a_module_its_handler_imports_fails_as_lambda_fails_it(
    box: Sandbox, invoker: Invoker
) -> None:
    import yaml  # noqa: F401 - here it is installed: the function still cannot import it

    done = invoker.invoke(REGION, arn(box, "bare"), {}, source="test")
    assert done.outcome is Outcome.ERROR and not done.ok
    assert done.error_type == "Runtime.ImportModuleError"
    assert done.error is not None
    assert done.error["errorMessage"] == (
        "Unable to import module 'needs_yaml': No module named 'yaml'"
    )
    again = invoker.invoke(REGION, arn(box, "bare"), {}, source="test")
    assert again.error_type == "Runtime.ImportModuleError" and again.cold  # a new environment
    name = box.manifest.ref("bare", REGION).name
    assert invoker.counts[(REGION, name)][Outcome.ERROR] == 2  # counted for the function
    log = (box.state_dir / LOG_DIR / "functions" / f"{name}.log").read_text(encoding="utf-8")
    assert "Runtime.ImportModuleError" in log  # in its log group, as Lambda writes it
    # the same code, with the module in its requirements, runs
    ok = invoker.invoke(REGION, arn(box, "bundled"), {}, source="test")
    assert ok.ok and ok.result == {"statusCode": 200, "body": "ok: true\n"}


def test_the_api_answers_a_function_that_fails_with_a_server_error(
    box: Sandbox, invoker: Invoker
) -> None:
    api_id = box.manifest.ref("api", REGION).arn.rsplit("/", 1)[-1]
    routes = deployed_routes(box.clients, REGION, api_id)
    assert {(r.method, r.path) for r in routes} == {
        ("GET", "/bare"),
        ("GET", "/env"),
        ("GET", "/health"),
    }
    endpoint = RegionalEndpoint(REGION, routes, invoker, alive=lambda region: True)
    status, _, body = endpoint.handle("GET", "/bare", {}, b"")
    assert (status, body) == (500, b'{"message":"Internal Server Error"}')
    assert endpoint.handle("GET", "/nowhere", {}, b"")[0] == 404


def test_a_function_runs_with_its_deployed_configuration_and_only_its_bundle(
    box: Sandbox, invoker: Invoker
) -> None:
    lam = box.clients.client("lambda", REGION)
    name = box.manifest.ref("env", REGION).name
    deployed = lam.get_function(FunctionName=name)["Configuration"]
    done = invoker.invoke(REGION, arn(box, "env"), {}, source="test")
    assert done.ok, done.error
    got = done.result
    env = got["env"]
    for key, value in deployed["Environment"]["Variables"].items():
        assert env[key] == value, key
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name and env["AWS_REGION"] == REGION
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "384" == str(deployed["MemorySize"])
    assert got["memory"] == 384
    assert 0 < got["remaining_ms"] <= 7000 == deployed["Timeout"] * 1000
    assert got["arn"] == arn(box, "env")
    assert got["parameter"] == "blue"  # its own region's SSM, reached without an endpoint
    # the runtime's packages and nothing of this environment besides
    assert sorted(got["importable"]) == ["boto3", "botocore"]
    # /var/task is read-only: the handler's module ran from the bytecode its bundle shipped
    assert not got["writes_bytecode"] and got["own_bytecode"]


def test_an_invocation_past_its_timeout_is_killed_and_the_next_starts_cold(
    box: Sandbox, invoker: Invoker
) -> None:
    env = invoker.invoke(REGION, arn(box, "env"), {}, source="test")
    slow = invoker.invoke(REGION, arn(box, "slow"), {"seconds": 30}, source="test")
    assert slow.outcome is Outcome.TIMEOUT
    assert slow.error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 1.00 seconds",
    }
    assert slow.duration < 10  # killed at its timeout, not after its 30 s
    quick = invoker.invoke(REGION, arn(box, "slow"), {"seconds": 0}, source="test")
    assert quick.ok and quick.result == "done" and quick.cold
    again = invoker.invoke(REGION, arn(box, "env"), {}, source="test")
    assert again.result["pid"] == env.result["pid"] and not again.cold  # a warm one is reused


def test_nothing_outlives_the_invoker(box: Sandbox) -> None:
    made = new_invoker(box)
    pid = made.invoke(REGION, arn(box, "env"), {}, source="test").result["pid"]
    runtime = made.runtime._proc
    assert runtime is not None
    made.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (pid_alive(pid) or pid_alive(runtime.pid)):
        time.sleep(0.05)
    assert not pid_alive(pid) and not pid_alive(runtime.pid)


#: A process holding a warm runtime, as a region's watcher or the data plane does; it prints the
#: runtime's pid and socket address, then waits to be killed.
HOLDER = """
import sys, time
from pathlib import Path
from sandbox.lambda_ import code
from sandbox.lambda_.environments import Runtime
work = Path(sys.argv[1])
runtime = Runtime(layer=code.runtime_layer(work), log=work / "runtime.log")
address = runtime._ready()
print(runtime._proc.pid, address, flush=True)
time.sleep(600)
"""


def unix_sockets() -> set[str]:
    """The addresses of the machine's listening unix sockets (an abstract one as ``@NAME``)."""
    rows = Path("/proc/net/unix").read_text().splitlines()[1:]
    return {row.split()[7] for row in rows if len(row.split()) > 7}


def test_a_runtime_killed_with_its_region_leaves_no_socket_behind(tmp_path: Path) -> None:
    # A killed region's watcher is killed with its process group (sandbox.watchers.kill), the
    # runtime in it: nothing runs its cleanup. Its socket is no file, so nothing is left.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None
        pid, address = holder.stdout.readline().split()
        assert pid_alive(int(pid)) and address in unix_sockets()
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pid_alive(int(pid)):
        time.sleep(0.05)
    assert not pid_alive(int(pid))
    assert address.startswith("@") and not Path(address).exists()
    assert address not in unix_sockets()


# -- throttles, Lambda's metrics and the alarms CloudWatch evaluates from them (#25) -----------


def period_end(at: float, period: int) -> float:
    """The end of the ``period``-long period ``at`` falls in."""
    return (math.floor(at / period) + 1) * period


def wait_for_state(box: Sandbox, alarm: str, state: str, deadline: float = 60.0) -> dict[str, Any]:
    """The alarm once the region's evaluator has put it in ``state`` (polled, with a deadline)."""
    cloudwatch = plain(box, "cloudwatch", REGION)
    until = time.monotonic() + deadline
    while True:
        found = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
        if found["StateValue"] == state or time.monotonic() > until:
            return dict(found)
        time.sleep(0.2)


def alarm_of(box: Sandbox, component: str, suffix: str) -> str:
    return next(a for a in box.manifest.ref(component, REGION).alarms if a.endswith(suffix))


@pytest.fixture
def metered(box: Sandbox, invoker: Invoker) -> Iterator[Metrics]:
    """The invoker's Lambda metrics, sent to each region's CloudWatch when flushed; the regions'
    evaluators and every reservation put back afterwards."""
    made = Metrics(lambda region: plain(box, "cloudwatch", region))
    invoker.observers.append(LambdaMetrics(made))
    try:
        yield made
    finally:
        box.evaluate_alarms(False)
        lam = plain(box, "lambda", REGION)
        for component in ("slow", "env"):
            lam.delete_function_concurrency(FunctionName=box.manifest.ref(component, REGION).name)


def subscribe(box: Sandbox, alarm: str) -> tuple[Any, str]:
    """A queue subscribed to the topic ``alarm`` notifies: what CloudWatch publishes."""
    cloudwatch, sqs = plain(box, "cloudwatch", REGION), plain(box, "sqs", REGION)
    topic = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["AlarmActions"][0]
    url = sqs.create_queue(QueueName=f"on-call-{time.monotonic_ns()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    plain(box, "sns", REGION).subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    return sqs, url


def notified(sqs: Any, url: str, alarm: str) -> list[dict[str, Any]]:
    """The notifications of ``alarm`` the queue holds."""
    out = []
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        body = json.loads(message["Body"])
        if body.get("AlarmName") == alarm:
            out.append(body)
    return out


def test_a_function_fenced_to_0_shows_throttles_and_its_alarm_fires_within_its_periods(
    box: Sandbox, invoker: Invoker, metered: Metrics
) -> None:
    name = box.manifest.ref("env", REGION).name
    plain(box, "lambda", REGION).put_function_concurrency(
        FunctionName=name, ReservedConcurrentExecutions=0
    )
    alarm = alarm_of(box, "env", "throttles-high")
    sqs, url = subscribe(box, alarm)
    first = time.time()
    for _ in range(3):
        with pytest.raises(Throttled):
            invoker.invoke(REGION, arn(box, "env"), {}, source="api")
    assert invoker.counts[(REGION, name)][Outcome.THROTTLED] == 3
    assert Outcome.OK not in invoker.counts[(REGION, name)]  # never ran
    assert metered.flush() > 0
    alias = box.manifest.ref("env", REGION).alias
    stats = plain(box, "cloudwatch", REGION).get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Throttles",
        # (moto matches any metric that has these dimensions: the alias's, not the function's)
        Dimensions=[
            {"Name": "FunctionName", "Value": name},
            {"Name": "Resource", "Value": f"{name}:{alias}"},
        ],
        StartTime=first - 60,
        EndTime=first + 60,
        Period=60,
        Statistics=["Sum"],
    )
    assert sum(p["Sum"] for p in stats["Datapoints"]) == 3.0

    deployed = plain(box, "cloudwatch", REGION).describe_alarms(AlarmNames=[alarm])
    period = deployed["MetricAlarms"][0]["Period"]
    periods = deployed["MetricAlarms"][0]["EvaluationPeriods"]
    # the evaluator's clock at the end of the throttles' period: the first evaluation after it
    box.evaluate_alarms(True, ahead=period_end(first, period) - time.time() + 1.0)
    found = wait_for_state(box, alarm, "ALARM")
    assert found["StateValue"] == "ALARM", found["StateReason"]
    assert "Threshold Crossed" in found["StateReason"] and "[3.0 (" in found["StateReason"]
    evaluated_at = json.loads(found["StateReasonData"])["queryDate"]
    at = time.mktime(time.strptime(evaluated_at[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert at <= first + periods * period + EVALUATION_INTERVAL  # within its evaluation periods
    deadline = time.monotonic() + 30
    got: list[dict[str, Any]] = []
    while not got and time.monotonic() < deadline:
        got = notified(sqs, url, alarm)
    assert [(m["OldStateValue"], m["NewStateValue"]) for m in got] == [("OK", "ALARM")]


def test_a_region_that_recovers_returns_its_alarms_to_ok_only_through_its_metrics(
    box: Sandbox, invoker: Invoker, metered: Metrics
) -> None:
    """Throttles put the alarm in ALARM; the region hangs and heals: the alarm is still ALARM
    (nothing sets it OK by fiat), and goes OK only once its evaluator, running again, finds
    the throttles' datapoint out of its evaluation range."""
    name = box.manifest.ref("env", REGION).name
    lam = plain(box, "lambda", REGION)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    alarm = alarm_of(box, "env", "throttles-high")
    first = time.time()
    with pytest.raises(Throttled):
        invoker.invoke(REGION, arn(box, "env"), {}, source="api")
    metered.flush()
    period = 300
    ahead = period_end(first, period) - time.time() + 1.0
    box.evaluate_alarms(True, ahead=ahead)
    assert wait_for_state(box, alarm, "ALARM")["StateValue"] == "ALARM"
    box.fail(REGION, "hang")
    try:
        assert box.describe()["servers"][REGION]["condition"] == "hung"
    finally:
        box.heal(REGION)
    found = plain(box, "cloudwatch", REGION).describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
    assert found["StateValue"] == "ALARM"  # healed, not reset: its metrics have not changed yet
    plain(box, "lambda", REGION).delete_function_concurrency(FunctionName=name)
    # the lone datapoint leaves the evaluation range (N + 2 periods) and missing data counts
    box.evaluate_alarms(True, ahead=ahead + 3 * period)
    found = wait_for_state(box, alarm, "OK")
    assert found["StateValue"] == "OK"
    assert json.loads(found["StateReasonData"])["recentDatapoints"] == []


def test_an_invocation_due_while_one_runs_is_throttled_and_retried_or_dropped_as_configured(
    scaled: Sandbox, scaled_invoker: Invoker
) -> None:
    """Reserved concurrency 1 and one invocation running: an asynchronous event due meanwhile
    is throttled; with a maximum event age that outlasts the running one it is retried and
    runs, with one shorter than a backoff it is dropped, never run. On the scaled clock: the
    event's age and Lambda's backoff are AWS seconds."""
    box, invoker = scaled, scaled_invoker
    assert clock.current().scale == SCALED
    name = box.manifest.ref("slow", REGION).name
    plain(box, "lambda", REGION).put_function_concurrency(
        FunctionName=name, ReservedConcurrentExecutions=1
    )
    target = arn(box, "slow")
    invoker.warm(REGION, target)

    def while_one_runs(config: AsyncConfig) -> list[Invocation]:
        running = threading.Thread(
            target=invoker.invoke, args=(REGION, target, {"seconds": 0.6}), daemon=True
        )
        running.start()
        deadline = time.monotonic() + 30
        while invoker.running(REGION, name) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert invoker.running(REGION, name) == 1
        done = deliver(invoker, REGION, target, {"seconds": 0}, config=config)
        running.join(timeout=30)
        return done

    dropped = while_one_runs(AsyncConfig(max_event_age=0.5, retries=2))
    assert dropped == []
    assert invoker.counts[(REGION, name)][Outcome.THROTTLED] == 1
    retried = while_one_runs(AsyncConfig(max_event_age=60, retries=0))
    assert [d.outcome for d in retried] == [Outcome.OK]
    assert invoker.counts[(REGION, name)][Outcome.THROTTLED] >= 2
    assert invoker.counts[(REGION, name)][Outcome.OK] == 3  # the two running ones, the retried
