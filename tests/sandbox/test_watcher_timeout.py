"""Lambda kills a watcher's invocation at its timeout, on the scaled clock (issue 25, item 4).

Its own sandbox, at k = K: the timeout, the lease, the schedule and the metrics are AWS seconds,
and only the sandbox's clock turns them into wall seconds. (On a loaded machine a kill sooner
than the sandbox's wall floor for an invocation, ``sandbox.lambda_.invoke.RUN_WALL_FLOOR``,
would cut the cold start, which is this machine's CPU and not AWS's time: the timeout here is
above that floor.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from controller import clock
from controller.controltable.journal import RunStatus
from sandbox import Sandbox
from sandbox.lambda_.invoke import RUN_WALL_FLOOR
from tests.kit.emulator import primary_record, region_host, watched_sandbox
from tests.kit.paths import EXAMPLE
from tests.kit.polling import until
from tests.kit.topologies import short_policy
from tests.sandbox.test_watchers import (
    OTHER,
    PRIMARY,
    STANDBY,
    THRESHOLD,
    journal,
    mode,
    region_of,
    running,
    watcher_function,
)

pytestmark = pytest.mark.sandbox

#: The scaled clock: AWS seconds per wall second.
K = 2.0
#: The watcher's timeout (AWS seconds): above the sandbox's wall floor for an invocation, and
#: shorter than a run whose target answers each call in SLOW_TARGET AWS seconds.
CUT_TIMEOUT = int(RUN_WALL_FLOOR * K) + 4
SLOW_TARGET = 2.0
#: The watch interval, lease and schedule (AWS seconds): short, as test_watchers' on the wall.
INTERVAL, LEASE, SCHEDULE = 2.0, 12.0, 15.0


@pytest.fixture(scope="module")
def box(sandbox_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The example with a short policy (AWS seconds), at k = K."""
    tmp = tmp_path_factory.mktemp("watcher-timeout")
    spec = short_policy(EXAMPLE, tmp)
    data = yaml.safe_load(spec.read_text())
    data["policy"].update(
        {
            "watch_interval_seconds": INTERVAL,
            "lease_seconds": LEASE,
            "failure_threshold": THRESHOLD,
            "cooldown_seconds": 30,
        }
    )
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    state_dir = tmp / ".failover"
    with watched_sandbox(spec, state_dir, time_scale=K) as box:
        yield box


def errors(box: Sandbox, region: str, function: str) -> float:
    """Lambda's Errors of ``function`` in ``region`` over the last ten AWS minutes (a timeout
    is one: Lambda counts an invocation it killed as an error)."""
    now = clock.now()
    got = box.clients.client("cloudwatch", region).get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=now - 600,
        EndTime=now + 60,
        Period=60,
        Statistics=["Sum"],
    )
    return float(sum(p["Sum"] for p in got["Datapoints"]))


def test_a_watcher_invocation_that_outlives_its_timeout_is_killed_and_the_next_holder_finishes_its_run(  # noqa: E501
    box: Sandbox,
) -> None:
    """Lambda kills an invocation at its timeout whatever it is doing: here mid-run, holding
    the lease (the target turns slow once the run has begun: SLOW_TARGET AWS seconds a call, so
    its remaining levels outlast the invocation). The run is not lost: a later invocation takes
    the lease once it has expired (AWS seconds) and finishes it, and the end state is an
    uninterrupted run's."""
    assert clock.current().scale == K
    name = watcher_function(box, OTHER)
    lam = box.clients.client("lambda", OTHER)
    lam.update_function_configuration(FunctionName=name, Timeout=CUT_TIMEOUT)
    try:
        box.start_watchers([OTHER, PRIMARY], schedule=SCHEDULE)
        box.fail(PRIMARY, "hang")
        run = until(lambda: running(box), 120, "OTHER's watcher starts a failover")
        box.model_round_trip(SLOW_TARGET, [STANDBY])
        first = run.owner
        assert region_of(first) == OTHER
        until(lambda: errors(box, OTHER, name) >= 1, 60, "the invocation is killed")
        held = journal(box).holder()
        assert held is not None and held.owner == first  # killed holding it: never released
        assert journal(box).run(run.id).status is RunStatus.RUNNING
        box.model_round_trip(0, [STANDBY])  # the next holder's invocation can finish it
        done = until(
            lambda: (r := journal(box).run(run.id)).status is not RunStatus.RUNNING and r,
            120,
            "a later invocation finishes the run",
        )
    finally:
        box.model_round_trip(0, [STANDBY])  # (the hung primary takes no setting)
        box.stop_watchers()
    assert done.status is RunStatus.COMPLETED, done.status
    assert done.owner != first and region_of(done.owner) == OTHER  # another invocation
    assert done.updated >= held.expires_at  # taken over only once the lease expired
    assert journal(box).desired(PRIMARY).active == STANDBY
    assert mode(box, STANDBY) == "active"
    assert all(s.state.finished for s in done.steps.values())
    assert primary_record(box).rstrip(".") == region_host(box, STANDBY)
