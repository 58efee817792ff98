"""moto's backends walked while another thread adds to them (``sandbox.moto_iteration``): the
sandbox's servers answer in threads, and a walk that saw an insertion failed with a 500."""

from __future__ import annotations

import gc
import pickle
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("moto")

from moto.cloudwatch.models import CloudWatchBackend
from moto.core.base_backend import BaseBackend
from moto.iam.exceptions import NotFoundException
from moto.iam.models import IAMBackend

from sandbox import moto_iteration

ACCOUNT = "123456789012"
TRUST = '{"Version": "2012-10-17", "Statement": []}'


@pytest.fixture
def walked() -> Iterator[None]:
    """The patch, for this test only, with the interpreter switching threads as often as it
    can (the race then shows in a few hundred insertions, not once in a suite), and Python code
    run by the collector during a copy (as hypothesis's gc callback does, which let insertions
    into a copy listed in C)."""
    before, interval = BaseBackend.__setattr__, sys.getswitchinterval()
    thresholds = gc.get_threshold()
    moto_iteration.backends_walk_copies()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50)
    gc.callbacks.append(collected)
    try:
        yield
    finally:
        gc.callbacks.remove(collected)
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
        BaseBackend.__setattr__ = before  # type: ignore[method-assign]


def collected(phase: str, info: dict[str, int]) -> None:
    """A gc callback: Python code between two steps of a C loop."""
    sum(range(50))


def put_alarm(backend: CloudWatchBackend, name: str) -> None:
    backend.put_metric_alarm(
        name=name, namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
        metric_data_queries=None, comparison_operator="GreaterThanThreshold",
        evaluation_periods=1, datapoints_to_alarm=None, period=60, threshold=0.0,
        statistic="Maximum", extended_statistic=None, description=None, dimensions=[],
        alarm_actions=[], ok_actions=[], insufficient_data_actions=[], unit=None,
        actions_enabled=True, treat_missing_data=None,
        evaluate_low_sample_count_percentile=None, threshold_metric_id=None, rule=None, tags=[],
    )  # fmt: skip


def walks_while_adding(add: Callable[[int], None], walk: Callable[[], Any], n: int) -> list[str]:
    """``walk()`` over and over while another thread calls ``add(i)`` for i < n; the walks'
    errors."""
    errors: list[str] = []
    adder = threading.Thread(target=lambda: [add(i) for i in range(n)])
    adder.start()
    while adder.is_alive():
        try:
            walk()
        except RuntimeError as exc:
            errors.append(str(exc))
    adder.join()
    return errors


def test_describe_alarms_by_name_never_fails_while_the_region_adds_alarms(walked: None) -> None:
    backend = CloudWatchBackend("us-west-2", ACCOUNT)
    put_alarm(backend, "orders-dead-letters")
    found: list[int] = []

    def walk() -> None:
        found.append(len(list(backend.get_alarms_by_alarm_names(["orders-dead-letters"]))))

    errors = walks_while_adding(lambda i: put_alarm(backend, f"other-{i}"), walk, 3000)

    assert errors == []
    assert found and set(found) == {1}  # the alarm, every time, and only it
    assert len(backend.alarms) == 3001


def test_roles_made_side_by_side_are_all_made_and_found(walked: None) -> None:
    """IAM looks for a role's name among every role on CreateRole and GetRole: the deployment
    makes a role per function per region from sixteen threads at once."""
    backend = IAMBackend("aws", ACCOUNT)

    def make(i: int) -> None:
        backend.create_role(
            f"fn-{i}", TRUST, "/", None, "", [], None
        )  # fmt: skip

    def look_for_one_not_made() -> None:  # walks every role, as a name not yet made does
        with pytest.raises(NotFoundException):
            backend.get_role("fn-not-made")

    errors = walks_while_adding(make, look_for_one_not_made, 1500)

    assert errors == []
    assert {backend.get_role(f"fn-{i}").name for i in range(1500)} == {
        f"fn-{i}" for i in range(1500)
    }


def test_a_walked_backend_pickles_as_one_and_reset_keeps_it_walked(walked: None) -> None:
    """A server's snapshot is a pickle of its backends (``sandbox.snapshot``), and moto's reset
    makes a backend anew: both keep the walks on copies."""
    backend = CloudWatchBackend("us-west-2", ACCOUNT)
    put_alarm(backend, "a")

    copy = pickle.loads(pickle.dumps(backend))  # noqa: S301 (our own bytes)
    backend.reset()

    assert type(copy.alarms) is moto_iteration.Walked
    assert list(copy.alarms) == ["a"] and copy.alarms["a"].name == "a"
    assert type(backend.alarms) is moto_iteration.Walked and not backend.alarms
