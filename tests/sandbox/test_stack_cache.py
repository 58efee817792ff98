"""A stack kept from an earlier ``sandbox up`` of the same inputs is the stack the program deploys.

Three sandboxes of the example, one after another, on a cache of their own that has seen the
example deployed once: the first runs the program and keeps its stack, the second is put back
from it, the third finds it kept on addresses of another length and runs the program again.
All three hold the same resources, read with plain boto3 clients, their own servers' addresses
in every place one is written.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox
from sandbox.deploy import cache as stack_cache
from sandbox.state import private_dir
from tests.kit.emulator import plain, stopped
from tests.kit.paths import EXAMPLE

pytestmark = pytest.mark.sandbox

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
PUT_BACK = "put back from the cache"


@pytest.fixture(scope="module")
def cache(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A stack cache of this module's own, empty at first."""
    folder = tmp_path_factory.mktemp("stacks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAILOVER_CACHE_DIR", str(folder))
        yield folder


def started(tmp: Path, caplog: pytest.LogCaptureFixture) -> tuple[dict[str, Any], bool]:
    """Start a sandbox of the example, read what it holds, stop it: (what it held, whether its
    stack was put back from the cache)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sandbox.lifecycle"):
        box = Sandbox.up(EXAMPLE, tmp / ".failover")
    try:
        return inventory(box), any(PUT_BACK in r.getMessage() for r in caplog.records)
    finally:
        stopped(box)


def inventory(box: Sandbox) -> dict[str, Any]:
    """Every region's functions (with their environment), mappings, queues, alarms, rules,
    parameters and tables, Route 53's records, and the stack file; each server's address
    written as its name, so that another sandbox's (a stale one) stands out."""
    held: dict[str, Any] = {}
    for region in REGIONS:
        functions = plain(box, "lambda", region).list_functions()["Functions"]
        held[region] = {
            "functions": sorted(
                (f["FunctionName"], json.dumps(f.get("Environment", {}), sort_keys=True))
                for f in functions
            ),
            "mappings": sorted(
                (m["FunctionArn"], m["EventSourceArn"], m["State"])
                for m in plain(box, "lambda", region).list_event_source_mappings()[
                    "EventSourceMappings"
                ]
            ),
            "queues": sorted(plain(box, "sqs", region).list_queues().get("QueueUrls", [])),
            "alarms": sorted(
                a["AlarmName"]
                for a in plain(box, "cloudwatch", region).describe_alarms()["MetricAlarms"]
            ),
            "rules": sorted(
                (r["Name"], r["State"]) for r in plain(box, "events", region).list_rules()["Rules"]
            ),
            "parameters": parameters(plain(box, "ssm", region)),
            "tables": sorted(plain(box, "dynamodb", region).list_tables()["TableNames"]),
        }
    route53 = plain(box, "route53", "global")
    held["records"] = sorted(
        (
            r["Name"],
            r["Type"],
            r.get("SetIdentifier", ""),
            json.dumps(r, sort_keys=True, default=str),
        )
        for zone in route53.list_hosted_zones()["HostedZones"]
        for r in route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    )
    held["stack"] = (box.state_dir / "stack.json").read_text(encoding="utf-8")
    text = json.dumps(held, sort_keys=True)
    for name, server in box.state.servers.items():
        text = text.replace(server.url.split("://")[1], f"<{name}>")
    return {
        "held": json.loads(text),
        "addresses": sorted(set(re.findall(r"127\.0\.0\.1:\d+", text))),
    }


def parameters(ssm: Any) -> list[tuple[str, str]]:
    """Every parameter's name and value (``DescribeParameters`` page by page, ``GetParameters``
    by ten)."""
    named: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = ssm.describe_parameters(**token)
        named.extend(p["Name"] for p in page["Parameters"])
        if not page.get("NextToken"):
            break
        token = {"NextToken": page["NextToken"]}
    return sorted(
        (p["Name"], p["Value"])
        for at in range(0, len(named), 10)
        for p in ssm.get_parameters(Names=named[at : at + 10])["Parameters"]
    )


def test_a_kept_stack_is_put_back_as_the_program_deployed_it(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    digest = stack_cache.key(EXAMPLE)
    assert digest is not None
    private_dir(stack_cache.folder())
    (stack_cache.folder() / f".seen-{digest}").touch()  # deployed once before: kept this time
    deployed, first = started(tmp_path / "one", caplog)
    put_back, second = started(tmp_path / "two", caplog)
    assert (first, second) == (False, True)
    assert deployed["addresses"] == put_back["addresses"] == []  # only its own servers named
    assert put_back["held"] == deployed["held"]  # ids, timestamps and all
    assert sum(len(deployed["held"][r]["functions"]) for r in REGIONS) >= 9
    assert sum(len(deployed["held"][r]["parameters"]) for r in REGIONS) >= 30
    # Kept on addresses of another length (a pickle's strings carry their length): deployed again,
    # to a stack of the same resources (a deployment's ids and timestamps are its own).
    (kept,) = [p for p in (cache / "stacks").iterdir() if not p.name.startswith(".")]
    urls = json.loads((kept / stack_cache.SERVERS).read_text(encoding="utf-8"))
    shorter = {name: f"http://127.0.0.1:{1000 + i}" for i, name in enumerate(urls)}
    (kept / stack_cache.SERVERS).write_text(json.dumps(shorter), encoding="utf-8")
    again, third = started(tmp_path / "three", caplog)
    assert third is False
    assert again["addresses"] == []
    assert names(again["held"]) == names(deployed["held"])


def names(held: dict[str, Any]) -> dict[str, Any]:
    """What two deployments of one program name alike: every region's functions, queues,
    alarms, rules, parameters (with their values) and tables."""
    same = ("queues", "alarms", "rules", "parameters", "tables")
    return {
        region: {"functions": [f for f, _ in held[region]["functions"]]}
        | {k: held[region][k] for k in same}
        for region in REGIONS
    }
