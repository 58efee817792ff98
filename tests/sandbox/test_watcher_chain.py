"""The watchers' chain in the sandbox, on a scaled clock (k = 5): SQS holds a delayed message
for its AWS seconds (moto holds it for wall seconds), and the sentinel evaluates once an
invocation, each link invoked from its chain queue by the mapping ``pulumi up`` deployed."""

from __future__ import annotations

import collections
import itertools
import uuid
from collections.abc import Iterator

import pytest

from controller import clock
from sandbox import Sandbox
from sandbox import watchers as watcher_procs
from tests.kit.emulator import watched_sandbox
from tests.kit.paths import EXAMPLE
from tests.kit.polling import until

SCALE = 5.0
STANDBY = "us-west-2"


@pytest.fixture(scope="module")
def scaled(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The example on the scaled clock, the deployed policy (a 10 s interval), no watchers yet."""
    state_dir = tmp_path_factory.mktemp("chain") / ".failover"
    with watched_sandbox(EXAMPLE, state_dir, time_scale=SCALE) as box:
        yield box


def test_a_delayed_message_is_held_for_its_aws_seconds_on_the_scaled_clock(
    scaled: Sandbox,
) -> None:
    """10 s of DelaySeconds are 10 AWS seconds (2 on the wall at k = 5), not 50."""
    sqs = scaled.clients.client("sqs", STANDBY)
    url = sqs.create_queue(QueueName=f"delay-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sent = clock.now()
    sqs.send_message(QueueUrl=url, MessageBody="link", DelaySeconds=10)
    got = until(
        lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages"),
        30,
        "the delayed message arrives",
    )
    arrived = clock.now() - sent
    assert got[0]["Body"] == "link"
    assert 10.0 <= arrived < 30.0, arrived  # moto alone: 50 AWS seconds


def test_the_sentinel_evaluates_once_an_invocation_each_link_an_interval_after_the_last(
    scaled: Sandbox,
) -> None:
    """No invocation sleeps: the sentinel's evaluations come from one invocation each (its
    chain's links, invoked from its queue), an interval apart at least (the link's delay)."""
    scaled.reset()
    scaled.start_watchers()
    try:
        interval = scaled.topology.policy.watch_interval_seconds

        def links() -> list[dict[str, object]] | None:
            mine = [
                d
                for d in watcher_procs.decisions(scaled.state_dir, [STANDBY])
                if d.get("cadence") == "sentinel"
            ]
            return mine if len(mine) >= 5 else None

        evaluations = until(links, 120, "the sentinel evaluates five times")
        per_invocation = collections.Counter(str(d["owner"]) for d in evaluations)
        assert set(per_invocation.values()) == {1}, per_invocation
        times = sorted(float(str(d["ts"])) for d in evaluations)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # a link comes after its delay (the interval less its evaluation); the schedule's
        # invocation, every minute, leaves a running chain alone
        assert sum(g >= interval - 2.0 for g in gaps) >= 3, gaps
        # ... and comes: the sentinel evaluates every interval, not once a scheduled minute
        assert sum(g < 2 * interval for g in gaps) >= 3, gaps
    finally:
        scaled.stop_watchers()


def test_the_watchers_chain_mapping_is_listed_under_the_functions_name(scaled: Sandbox) -> None:
    """``pulumi up`` creates the chain's mapping on the function's ARN; Lambda lists it under
    the function's name, its ARN or a partial ARN alike (moto only under the string it was
    created with), and not under an alias of the function."""
    lam = scaled.clients.client("lambda", STANDBY)
    watcher = scaled.manifest.regions[STANDBY].watcher
    assert watcher is not None
    name = watcher.function
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    partial = ":".join(arn.split(":")[4:])
    found = {
        form: {
            m["UUID"]
            for m in lam.list_event_source_mappings(FunctionName=form)["EventSourceMappings"]
        }
        for form in (name, arn, partial, f"{arn}:live")
    }
    assert found[name] and found[name] == found[arn] == found[partial], found
    assert set(watcher_procs.chain_mappings(lam, name)) == found[name]  # what the sandbox polls
    assert not found[f"{arn}:live"] & found[name]
