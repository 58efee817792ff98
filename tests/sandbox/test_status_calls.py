"""What one status read costs in AWS calls: the figure the status page and the watchers pay on
every read (issue #27). Counted as sent (a ``before-send`` hook), by operation and by server."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest

from controller import health
from controller.actions.registry import action_for
from controller.aws import Clients
from controller.health.reads import PARAMETERS_PER_CALL
from controller.interfaces.views import read_status
from sandbox import Sandbox
from tests.kit.emulator import SLACK, fault

pytestmark = pytest.mark.sandbox

PRIMARY = "us-east-1"
#: Every call of a status read of the example with every region up (113 when each component
#: asked for its own mode, 80 when each function's reserved concurrency was asked of
#: GetFunctionConcurrency beside GetFunction, 71 when a bucket was asked HeadBucket before its
#: versioning): a read that makes more has grown a call per component somewhere.
CALLS_PER_READ = 68


class Sent:
    """Clients on the sandbox that count what they send, by operation and by endpoint."""

    def __init__(self, box: Sandbox) -> None:
        self.operations: Counter[str] = Counter()
        self.endpoints: Counter[str] = Counter()
        #: Each item read (its key, as sent) and the endpoints it was asked of, in order.
        self.items: dict[str, list[str]] = {}
        self.clients: Clients = box.clients.derive(hook=("before-send", self._count))

    def _count(self, request: Any, **kwargs: Any) -> None:
        operation = str(kwargs.get("event_name", "")).removeprefix("before-send.")
        self.operations[operation] += 1
        self.endpoints[urlsplit(request.url).netloc] += 1
        if operation in ("dynamodb.GetItem", "dynamodb.BatchGetItem"):
            body = json.loads(request.body)
            keys = [body["Key"]] if "Key" in body else body["RequestItems"].popitem()[1]["Keys"]
            for key in keys:
                asked = self.items.setdefault(json.dumps(key, sort_keys=True), [])
                asked.append(urlsplit(request.url).netloc)

    @property
    def total(self) -> int:
        return sum(self.operations.values())


def mode_parameters(box: Sandbox, region: str) -> set[str]:
    """The mode parameters of ``region``: its own and each component's."""
    own = {
        action_for(box.topology, box.manifest, box.clients, name, region).mode_parameter
        for name in box.topology.components
    }
    return own | {box.manifest.regions[region].mode_parameter}


def test_a_status_read_asks_ssm_for_every_mode_in_calls_of_ten_not_once_per_component(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    sent = Sent(box)
    report = health.status(box.topology, box.manifest, sent.clients, deadline=SLACK)
    assert {r.health for r in report.regions.values()} == {health.Health.HEALTHY}
    wanted = sum(
        math.ceil(len(mode_parameters(box, r)) / PARAMETERS_PER_CALL)
        for r in box.topology.regions.all
    )
    assert wanted == 6  # 13 parameters a region: 2 calls, not 13
    assert sent.operations["ssm.GetParameters"] == wanted
    # A read per component for the modes would be 3 x 13 = 39 GetParameters.
    assert report.regions[PRIMARY].components["worker"].state == "active"


def test_the_whole_status_read_stays_within_its_call_budget(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox
    sent = Sent(box)
    view = read_status(box.topology, box.manifest, sent.clients, deadline=SLACK)
    assert view.report.active_region == PRIMARY and view.control["active"] == PRIMARY
    # two items, the lease and the run in progress, read in one request (one round trip to the
    # multi-Region table, not two one after the other): asked of a second control region only
    # when the first was slow to answer (the hedged read), never twice of one
    assert sent.operations["dynamodb.GetItem"] == 0, sent.operations.most_common()
    assert len(sent.items) == 2, sent.items
    for key, asked in sent.items.items():
        assert len(asked) == len(set(asked)) <= len(box.manifest.control.regions), (key, asked)
    # a function's reserved concurrency is in its GetFunction answer: one call, not two
    assert sent.operations["lambda.GetFunctionConcurrency"] == 0, sent.operations.most_common()
    assert sent.operations["lambda.GetFunction"] == 9  # 3 functions in 3 regions
    # a bucket's versioning answers whether it is there: one call, not two
    assert sent.operations["s3.HeadBucket"] == 0, sent.operations.most_common()
    assert sent.operations["s3.GetBucketVersioning"] == 3
    hedged = sent.operations["dynamodb.BatchGetItem"] - 1
    assert sent.total - hedged <= CALLS_PER_READ, sent.operations.most_common()


def test_a_hung_region_is_sent_its_probe_and_nothing_else(fresh_sandbox: Sandbox) -> None:
    """A region that does not answer its probe is not read further: one call, one timeout,
    instead of a thread and a connection held for each of its components."""
    box = fresh_sandbox
    hung = urlsplit(box.manifest.endpoints[PRIMARY]).netloc
    sent = Sent(box)
    box.fail(PRIMARY, "hang")
    try:
        report = health.status(box.topology, box.manifest, sent.clients, deadline=SLACK)
    finally:
        box.heal(PRIMARY)
    assert report.regions[PRIMARY].health == health.Health.UNREACHABLE
    assert sent.endpoints[hung] == 1  # the probe; a fail-fast probe is not sent again
    for region in ("us-west-2", "eu-west-1"):
        assert report.regions[region].health == health.Health.HEALTHY
        assert {c.state for c in report.regions[region].components.values()} == {"standby"}


def test_a_throttled_second_mode_call_is_made_again_and_no_component_loses_its_mode(
    fresh_sandbox: Sandbox,
) -> None:
    """The second of a region's two mode calls throttled once: it is made again (the probe's
    rule for an answer a retry may fix), and every component is read in the mode its region
    gave it (a passive component read without its mode would say active in a standby region)."""
    box = fresh_sandbox
    throttle, _ = fault(400, "ThrottlingException")
    throttled: list[list[str]] = []

    def throttle_once(request: Any, **kwargs: Any) -> Any:
        names = json.loads(request.body)["Names"]
        if throttled or len(names) == PARAMETERS_PER_CALL:
            return None
        throttled.append(names)
        return throttle(request, **kwargs)

    clients = box.clients.derive(hook=("before-send.ssm.GetParameters", throttle_once))
    report = health.status(box.topology, box.manifest, clients, deadline=SLACK)
    assert len(throttled) == 1
    for name, region in report.regions.items():
        want = "active" if name == PRIMARY else "standby"
        assert region.health == health.Health.HEALTHY, name
        assert {c.state for c in region.components.values()} == {want}, name
