"""The sandbox's watcher schedule invokes as EventBridge and Lambda do: asynchronously, by the
function's event invoke config (``sandbox.watchers.deliver``): an event too old is dropped, not
run late, and a failed invocation is retried only as often as the config says."""

from __future__ import annotations

from typing import Any

from controller.errors import FailoverError
from sandbox.lambda_.invoke import Invocation, Outcome, Throttled
from sandbox.watchers import AsyncConfig, deliver

REGION, TARGET = "us-east-1", "arn:aws:lambda:us-east-1:123456789012:function:w"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Invoker:
    """Stands in for the one invoke path: each call takes ``takes`` seconds of the clock and
    ends as ``outcomes`` say in turn (``"throttled"``: no environment within the wait;
    ``"429"``: Lambda throttles it, the reserved concurrency in use)."""

    def __init__(self, clock: Clock, outcomes: list[str], takes: float = 1.0) -> None:
        self.clock, self.outcomes, self.takes = clock, list(outcomes), takes
        self.waits: list[float] = []

    def invoke(self, region: str, target: str, event: Any, **kw: Any) -> Invocation:
        self.waits.append(kw["wait"])
        outcome = self.outcomes.pop(0)
        if outcome == "429":
            raise Throttled(f"{target} in {region}: TooManyRequestsException")
        if outcome == "throttled":
            self.clock.now += kw["wait"]
            raise FailoverError(f"{target} in {region}: no free environment")
        self.clock.now += self.takes
        return Invocation(REGION, "w", "schedule", Outcome(outcome), self.clock.now, 1.0, False)


def run(config: AsyncConfig, invoker: Invoker, clock: Clock) -> list[Invocation]:
    return deliver(
        invoker,  # type: ignore[arg-type]
        REGION,
        TARGET,
        {},
        config=config,
        sleep=clock.sleep,
        monotonic=clock,
    )


def test_a_failed_invocation_is_not_retried_with_the_watchers_config_the_next_minute_is() -> None:
    clock = Clock()
    invoker = Invoker(clock, ["error", "ok"])
    done = run(AsyncConfig(max_event_age=60, retries=0), invoker, clock)
    assert [d.outcome for d in done] == [Outcome.ERROR]
    assert invoker.outcomes == ["ok"]  # no second attempt


def test_a_failed_invocation_is_retried_twice_after_lambdas_waits_by_default() -> None:
    clock = Clock()
    invoker = Invoker(clock, ["error", "error", "ok"])
    done = run(AsyncConfig(), invoker, clock)
    assert [d.outcome for d in done] == [Outcome.ERROR, Outcome.ERROR, Outcome.OK]
    assert clock.now - 1000.0 == 3 * 1.0 + 60 + 120  # three runs, then Lambda's 1 and 2 min


def test_a_throttled_event_waits_at_most_its_age_then_is_dropped_not_run_late() -> None:
    clock = Clock()
    invoker = Invoker(clock, ["throttled", "ok"])
    done = run(AsyncConfig(max_event_age=60, retries=2), invoker, clock)
    assert done == [] and invoker.waits == [60]
    assert invoker.outcomes == ["ok"]  # the next minute's event runs, not this one


def test_a_retry_that_would_start_past_the_events_age_is_dropped() -> None:
    clock = Clock()
    invoker = Invoker(clock, ["error", "ok"], takes=30.0)
    done = run(AsyncConfig(max_event_age=80, retries=2), invoker, clock)
    assert [d.outcome for d in done] == [Outcome.ERROR]  # the retry would start at 90 s
    assert invoker.waits == [80]


def test_an_event_due_while_one_runs_is_throttled_then_retried_while_its_age_allows() -> None:
    """Reserved concurrency 1, one invocation running: the next event is throttled, goes back
    to Lambda's queue and runs once the first is done (backoff 1, 2, 4 s), using no retry."""
    clock = Clock()
    invoker = Invoker(clock, ["429", "429", "429", "ok"])
    done = run(AsyncConfig(max_event_age=60, retries=0), invoker, clock)
    assert [d.outcome for d in done] == [Outcome.OK]
    assert invoker.waits == [60, 59, 57, 53]  # each try waits no longer than the age left


def test_a_throttled_event_older_than_its_maximum_age_is_dropped_never_run() -> None:
    clock = Clock()
    invoker = Invoker(clock, ["429"] * 10 + ["ok"])
    done = run(AsyncConfig(max_event_age=20, retries=2), invoker, clock)
    assert done == []
    assert invoker.outcomes == ["429"] * 5 + ["ok"]  # tried at 0, 1, 3, 7, 15 s: then 20 s old
