"""The waiting lane's scheduler (tests/kit/lanes.py): which worker takes which group first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.kit.lanes import WAITERS, LaneScheduling
from tests.kit.paths import REPO

#: A queue of two groups of each kind, interleaved: each kind in its queued order.
WAITING = sorted(WAITERS)[:2]
OTHERS = ["sandbox/test_runbooks.py", "unit/test_plan.py"]
QUEUE = [OTHERS[0], WAITING[0], OTHERS[1], WAITING[1]]


class Worker:
    """A worker as the scheduler sees it: its name, and the tests it is sent."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def scheduled(workers: int, first: str) -> list[str]:
    """The groups, in order, that worker ``first`` takes from :data:`QUEUE` (one test each) when
    it asks before every other worker, until the queue is empty."""
    config: Any = SimpleNamespace(getvalue=lambda name: [f"{workers}*popen"])
    scheduler = LaneScheduling(config)
    collection = [f"tests/{group}::test@{group}" for group in QUEUE]
    nodes = [Worker(f"gw{i}") for i in range(workers)]
    for node in nodes:
        scheduler.assigned_work[node] = {}
        scheduler.registered_collections[node] = collection
    scheduler.workqueue.update({group: {f"tests/{group}::test@{group}": False} for group in QUEUE})
    node = next(n for n in nodes if n.gateway.id == first)
    while scheduler.workqueue:
        scheduler._assign_work_unit(node)
    return [QUEUE[i] for i in node.sent]


@pytest.mark.parametrize("workers", [4, 5])
def test_the_last_worker_takes_the_waiting_groups_first_then_the_rest(workers: int) -> None:
    assert scheduled(workers, f"gw{workers - 1}") == WAITING + OTHERS


def test_the_other_workers_take_the_waiting_groups_last() -> None:
    assert scheduled(4, "gw0") == OTHERS + WAITING


def test_under_four_workers_there_is_no_lane_and_the_queue_keeps_its_order() -> None:
    assert scheduled(3, "gw2") == QUEUE


def test_every_waiting_group_is_a_module_of_the_suite() -> None:
    """A module renamed or removed would leave the lane nothing to take first, silently."""
    missing = sorted(group for group in WAITERS if not (REPO / "tests" / group).is_file())
    assert not missing, f"tests/kit/lanes.py names modules the suite no longer has: {missing}"
