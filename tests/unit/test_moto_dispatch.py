"""moto's services answered without Flask's request machinery answer exactly as through Flask,
and an error inside moto answers as AWS's InternalFailure, which botocore retries.

Each check runs in a fresh interpreter: moto's backends are process-wide, and this test process
must keep botocore as it ships.
"""

from __future__ import annotations

from tests.unit.test_launcher_warm import run

#: Calls of several protocols: JSON (SSM), query (SQS, IAM), REST (Lambda, S3), a route no
#: service has (404), an error moto raises as a ClientError, a HEAD.
COMPARE = """
import json
from moto.moto_server import werkzeug_app
from werkzeug.test import Client
from sandbox import moto_dispatch, moto_patches

moto_patches.no_cors()  # as the launcher builds them: a Lean app runs no after-request hook
AUTH = ("AWS4-HMAC-SHA256 Credential=k/20261207/us-east-1/{}/aws4_request, "
        "SignedHeaders=host, Signature=0")
CALLS = [
    ("ssm", "POST", "/", {"X-Amz-Target": "AmazonSSM.GetParameters",
     "Content-Type": "application/x-amz-json-1.1"}, json.dumps({"Names": ["/a"]})),
    ("ssm", "POST", "/", {"X-Amz-Target": "AmazonSSM.GetParameter",
     "Content-Type": "application/x-amz-json-1.1"}, json.dumps({"Name": "/missing"})),
    ("sqs", "POST", "/", {"Content-Type": "application/x-www-form-urlencoded"},
     "Action=ListQueues&Version=2012-11-05"),
    ("iam", "POST", "/", {"Content-Type": "application/x-www-form-urlencoded"},
     "Action=GetRole&RoleName=nobody&Version=2010-05-08"),
    ("awslambda", "GET", "/2015-03-31/functions/nobody", {}, ""),
    ("awslambda", "GET", "/no/such/route", {}, ""),
    ("s3", "HEAD", "/no-such-bucket", {}, ""),
]
VARYING = {"x-amzn-requestid", "x-amz-request-id", "x-amz-id-2", "date", "x-amzn-trace-id"}

def answers(lean):
    out = []
    for service, method, path, headers, body in CALLS:
        app = werkzeug_app.create_backend_app(service)
        client = Client(moto_dispatch.Lean(app) if lean else app)
        signing = service.replace("awslambda", "lambda")
        got = client.open(path, method=method, data=body,
                          headers={**headers, "Authorization": AUTH.format(signing)})
        kept = sorted((k.lower(), v) for k, v in got.headers.items() if k.lower() not in VARYING)
        text = got.get_data(as_text=True)
        for word in ("RequestId", "requestId"):  # a fresh id in each answer's body
            text = text.split("<" + word + ">")[0] if "<" + word + ">" in text else text
        out.append([got.status_code, kept, text])
    return out

print(json.dumps({"flask": answers(False), "lean": answers(True)}))
"""


def test_lean_apps_answer_every_protocol_as_flasks_apps_do() -> None:
    seen = run(COMPARE)
    assert [status for status, _, _ in seen["flask"]] == [200, 400, 200, 404, 404, 404, 404], [
        row[:2] for row in seen["flask"]
    ]
    assert seen["lean"] == seen["flask"]


RAISING = """
import json, threading
import boto3, botocore.config, botocore.parsers
from moto.moto_server import werkzeug_app
from werkzeug.serving import make_server
from sandbox import launcher, moto_dispatch

def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

def outcome(role, wrap, lean):
    app = werkzeug_app.create_backend_app("iam")
    calls = [0]
    for view in app.view_functions.values():
        original = view.callback
        def flaky(*args, _original=original, **kwargs):
            calls[0] += 1
            if calls[0] == 1:
                raise RuntimeError("dictionary changed size during iteration")  # a moto bug
            return _original(*args, **kwargs)
        view.callback = flaky
    inner = moto_dispatch.Lean(app) if lean else app
    server = serve(launcher.AwsErrors(inner) if wrap else inner)
    iam = boto3.client(
        "iam", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{server.port}",
        aws_access_key_id="k", aws_secret_access_key="s",
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )
    try:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
        result = ["created", calls[0]]
    except Exception as exc:
        result = [type(exc).__name__, calls[0]]
    server.shutdown()
    return result

print(json.dumps({
    "bare": outcome("a", False, False),
    "wrapped": outcome("b", True, False),
    "wrapped_lean": outcome("c", True, True),
}))
"""


def test_an_error_raised_inside_moto_is_answered_as_internal_failure_and_retried() -> None:
    """moto's apps run in debug mode: Flask re-raises, and the error passed AwsErrors by."""
    seen = run(RAISING)
    assert seen["bare"][0] != "created", "unwrapped, the error reaches the caller"
    assert seen["wrapped"] == ["created", 2]  # answered InternalFailure, retried once
    assert seen["wrapped_lean"] == ["created", 2]
