"""What the moto servers' launcher builds once before forking, so that no server builds it again.

Each check runs in a fresh interpreter: the patches and caches it looks at are process-wide, and
this test process must keep botocore as it ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from sandbox import launcher


def run(script: str) -> Any:
    """The JSON that ``script`` prints, run by a fresh interpreter of this venv."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_botocore_session_and_moto_model_read_shares_one_loader() -> None:
    seen = run(
        """
        import json
        import botocore.session, moto.core.utils
        from sandbox import moto_patches

        def loaders():
            a, b = botocore.session.Session(), botocore.session.Session()
            return [
                a.get_component("data_loader") is b.get_component("data_loader"),
                moto.core.utils.create_loader() is moto.core.utils.create_loader(),
            ]

        before = loaders()
        moto_patches.share_data_loader()
        moto_patches.share_data_loader()  # twice: wrapped once
        after = loaders()
        regions = botocore.session.Session().get_available_regions("ec2")
        print(json.dumps({
            "before": before, "after": after,
            "wrapped_once": not hasattr(botocore.session.create_loader.__wrapped__, "__wrapped__"),
            "regions": len(regions),
        }))
        """
    )
    assert seen["before"] == [False, False], "without the patch each session has its own loader"
    assert seen["after"] == [True, True]
    assert seen["wrapped_once"]
    assert seen["regions"] > 10, "a shared loader still answers what botocore knows"


def test_warm_loads_every_model_and_builds_the_rest_apis_url_maps() -> None:
    seen = run(
        """
        import json
        from moto.core.routing import get_service_router
        from moto.core.utils import get_service_model
        from sandbox.launcher import MODELS, warm

        rest = warm(MODELS)
        print(json.dumps({
            "rest": rest,
            "models": get_service_model.cache_info().currsize,
            "maps": {name: sorted(get_service_router(name)._routers) for name in MODELS},
        }))
        """
    )
    assert seen["rest"] == ["lambda", "s3", "apigateway", "apigatewayv2", "route53"]
    assert seen["models"] == len(launcher.MODELS)
    assert seen["maps"]["route53"] == ["rest-xml"]
    assert seen["maps"]["lambda"] == ["rest-json"]
    assert seen["maps"]["dynamodb"] == [], "an RPC API has no URL map to build"


def test_a_moto_without_the_private_router_method_still_starts_cold() -> None:
    """The warm-up leans on a private moto method: a release without it must not stop a server
    from starting; the servers then build their maps on first use, as moto does."""
    seen = run(
        """
        import json
        import botocore.session
        import moto.core.routing as routing
        import moto.core.utils
        from sandbox import moto_patches
        from sandbox.launcher import warm

        del routing.ServiceOperationRouter._get_router
        rest = warm(["lambda", "sqs"])
        moved = moto.core.utils.create_loader
        del moto.core.utils.create_loader
        moto_patches.share_data_loader()
        moto.core.utils.create_loader = moved
        print(json.dumps({
            "rest": rest,
            "botocore_shared": hasattr(botocore.session.create_loader, "_failover_shared"),
        }))
        """
    )
    assert seen == {"rest": [], "botocore_shared": True}


def test_the_launcher_imports_neither_boto3_nor_the_sandbox_life_cycle() -> None:
    seen = run(
        """
        import json, sys
        import sandbox.launcher
        loaded = sorted(m for m in ("boto3", "sandbox.lifecycle", "controller.engine.executor")
                        if m in sys.modules)
        import sandbox
        lazy = sandbox.Sandbox.__module__
        try:
            sandbox.Nothing
            missing = "no error"
        except AttributeError as exc:
            missing = str(exc)
        print(json.dumps({"loaded": loaded, "lazy": lazy, "missing": missing}))
        """
    )
    assert seen["loaded"] == []
    assert seen["lazy"] == "sandbox.lifecycle"
    assert seen["missing"] == "module 'sandbox' has no attribute 'Nothing'"


def test_moto_dispatches_as_before_with_its_lookups_made_once() -> None:
    seen = run(
        """
        import json
        import moto.core.responses
        from moto.awslambda.responses import LambdaResponse
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from sandbox import moto_patches

        app = DomainDispatcherApplication(create_backend_app)
        hosts = ["lambda.us-east-1.amazonaws.com", "dynamodb.us-west-2.amazonaws.com",
                 "monitoring.eu-west-1.amazonaws.com", "example.org"]
        def answers():
            names = moto.core.responses.method_names_from_class(LambdaResponse)
            return [sorted(names), [app.get_backend_for_host(h) for h in hosts * 2]]

        before = answers()
        moto_patches.dispatch_lookups_once()
        moto_patches.dispatch_lookups_once()  # applied once, whatever the calls
        after, again = answers(), answers()
        print(json.dumps({"same": before == after == again, "backends": after[1][:4]}))
        """
    )
    assert seen == {"same": True, "backends": ["awslambda", "dynamodb", "cloudwatch", None]}


def test_url_builders_are_compiled_only_when_a_url_is_built_and_build_as_werkzeugs() -> None:
    seen = run(
        """
        import json
        from werkzeug.routing import Map, Rule
        from werkzeug.routing import rules as werkzeug_rules

        ROUTES = ["/2015-03-31/functions/<name>/invocations", "/v2/apis/<api>/stages/<path:s>"]

        def urls():
            routes = Map([Rule(r, endpoint=str(i)) for i, r in enumerate(ROUTES)])
            adapter = routes.bind("127.0.0.1")
            matched = adapter.match("/2015-03-31/functions/fn/invocations")
            built = [
                adapter.build("0", {"name": "f n"}),
                adapter.build("1", {"api": "a", "s": "x/y", "extra": "1"}),
            ]
            return matched, built

        compiled = []
        original = werkzeug_rules.Rule._get_func_code
        werkzeug_rules.Rule._get_func_code = staticmethod(
            lambda code, name: compiled.append(name) or original(code, name)
        )
        plain = urls()
        by_werkzeug = len(compiled)

        from sandbox import moto_patches
        moto_patches.url_builders_when_used()
        moto_patches.url_builders_when_used()  # twice: still one layer
        compiled.clear()
        routes = Map([Rule(r, endpoint=str(i)) for i, r in enumerate(ROUTES)])
        routes.bind("127.0.0.1").match("/v2/apis/a/stages/x/y")
        on_match = len(compiled)
        lazy = urls()
        print(json.dumps([by_werkzeug, on_match, plain == lazy, plain[1]]))
        """
    )
    by_werkzeug, on_match, same, built = seen
    assert by_werkzeug == 4  # werkzeug: two builders per route, compiled as each is added
    assert on_match == 0  # patched: matching compiles none
    assert same and built == [
        "/2015-03-31/functions/f%20n/invocations",
        "/v2/apis/a/stages/x/y?extra=1",
    ]


def test_the_launcher_builds_ssm_without_ec2_which_comes_when_ssm_first_uses_it() -> None:
    seen = run(
        """
        import json, sys
        from sandbox import launcher
        launcher._application()
        import moto.ssm.models as ssm
        before = "moto.ec2" in sys.modules
        backend = ssm.ec2_backends["123456789012"]["us-east-1"]  # SendCommand's one use
        import moto.ec2
        print(json.dumps([
            before,
            type(backend).__name__,
            hasattr(moto.ec2, "__path__"),  # moto's own package, not the stand-in
            moto.ec2.ec2_backends["123456789012"]["us-east-1"] is backend,
        ]))
        """
    )
    assert seen == [False, "EC2Backend", True, True]


def test_the_services_answer_without_cors_headers_once_patched_as_aws_does() -> None:
    seen = run(
        """
        import json
        from moto.moto_server import werkzeug_app
        from werkzeug.test import Client
        from sandbox import moto_patches

        def allows_origin():
            app = Client(werkzeug_app.create_backend_app("ssm"))
            answer = app.post(
                "/",
                headers={
                    "X-Amz-Target": "AmazonSSM.GetParameters",
                    "Content-Type": "application/x-amz-json-1.1",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=k/20261207/us-east-1/ssm/"
                    "aws4_request, SignedHeaders=host, Signature=0",
                },
                data=json.dumps({"Names": ["/a"]}),
            )
            assert answer.status_code == 200, answer.data
            return "Access-Control-Allow-Origin" in answer.headers

        before = allows_origin()
        moto_patches.no_cors()
        print(json.dumps([before, allows_origin()]))
        """
    )
    assert seen == [True, False]  # moto's default, then the patch's
