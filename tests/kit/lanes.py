"""A waiting lane for ``--dist loadgroup``: one worker more, for the groups that mostly wait.

Some sandbox modules spend their wall time waiting on the scaled clock (a health check's
threshold, an alarm's period, a hung region's timeouts): with every process they start, under
half a core on average, some a tenth. On workers that ran everything, each held a worker while it
waited, and the two cores went idle whenever two such modules ran at once. With a lane, the last
worker takes those groups first (:data:`WAITERS`, in the collection's order) and the others
everything else first; a worker whose kind of group has run out takes the other kind, so no group
waits for a worker.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadGroupScheduling

#: Groups that mostly wait: each group's CPU (its worker's and every process it started) over its
#: wall time in a ``make test`` run on two cores (2026-12-07, three workers): wall seconds, cores.
WAITERS = frozenset(
    {
        "sandbox/test_route53.py",  # 50 s, 0.08 cores (an alarm's 300 s period at k = 10)
        "sandbox/test_executor.py",  # 43 s, 0.44
        "sandbox/test_watcher_timeout.py",  # 33 s, 0.42
        "sandbox/test_target_lost.py",  # 30 s, 0.19
        "sandbox/test_lost_answers.py",  # 29 s, 0.35
        "sandbox/test_reconcile.py",  # 29 s, 0.38
        "sandbox/test_replication_lag.py",  # 16 s, 0.24
        "sandbox/test_serve_browser.py",  # 16 s, 0.44
        "sandbox/test_actions.py",  # 13 s, 0.30
        "sandbox/test_status.py",  # 13 s, 0.31
        "sandbox/test_controller_zygote.py",  # 9 s, 0.27
        "sandbox/test_status_calls.py",  # 7 s, 0.09
    }
)

#: From this many workers, the last is the lane; fewer run as plain ``--dist loadgroup``.
LANE_WORKERS = 4


class LaneScheduling(LoadGroupScheduling):  # type: ignore[misc]
    """``--dist loadgroup`` where the last worker takes :data:`WAITERS` first, the others last."""

    def _assign_work_unit(self, node: Any) -> None:
        """Give ``node`` the first queued group of its kind (else the first of any) where xdist's
        own method gives the first: the same bookkeeping, another pick. The last worker is the
        lane when there are :data:`LANE_WORKERS` or more."""
        if self.numnodes >= LANE_WORKERS:
            waiting = node.gateway.id == f"gw{self.numnodes - 1}"  # xdist names them gw0 up
            scope = next((s for s in self.workqueue if (s in WAITERS) == waiting), None)
            if scope is not None:
                self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)


class Lanes:
    """The plugin that makes xdist schedule ``--dist loadgroup`` by :class:`LaneScheduling`."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> LaneScheduling:
        return LaneScheduling(config, log)
