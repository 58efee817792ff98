"""The sandbox's Lambda runs each function as Lambda does: from its deployed bundle, alone.

A small application is deployed by the program; its functions are invoked through the one invoke
path (:mod:`sandbox.lambda_.invoke`), as the API, the pollers and the schedules invoke them:

- a handler whose bundle lacks a module it imports fails every invocation with
  ``Runtime.ImportModuleError`` (the module is installed here, for the tests; the bundle is all
  a function gets), counted as the function's error; the same code with the module in its
  ``requirements.txt`` runs; the API answers a failed function with ``500``;
- a function runs with its deployed environment, memory and timeout, and Lambda's context;
- an invocation that outlives the function's timeout is killed, and the next one starts cold;
- nothing outlives the invoker.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator

import pytest

from sandbox import Sandbox
from sandbox.endpoint import RegionalEndpoint, deployed_routes
from sandbox.lambda_.invoke import Invoker, Outcome
from sandbox.state import LOG_DIR
from tests.kit.emulator import pid_alive

pytestmark = pytest.mark.sandbox

REGION = "us-east-1"
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
    }
"""


@pytest.fixture(scope="module")
def box(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    tmp = tmp_path_factory.mktemp("lambda")
    (tmp / "topology.yaml").write_text(TOPOLOGY, encoding="utf-8")
    plain, bundled = tmp / "plain", tmp / "with_yaml"
    for folder in (plain, bundled):
        folder.mkdir()
        (folder / "needs_yaml.py").write_text(NEEDS_YAML, encoding="utf-8")
    (bundled / "requirements.txt").write_text("PyYAML\n", encoding="utf-8")
    (plain / "slow.py").write_text(SLOW, encoding="utf-8")
    (plain / "env.py").write_text(textwrap.dedent(ENV), encoding="utf-8")
    sandbox = Sandbox.up(tmp / "topology.yaml", tmp / ".failover")
    try:
        yield sandbox
    finally:
        sandbox.down()


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


@pytest.fixture
def invoker(box: Sandbox) -> Iterator[Invoker]:
    made = new_invoker(box)
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
