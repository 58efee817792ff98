"""What a watcher's evaluation reads of the control table, in one request.

Read by :meth:`controller.controltable.journal.Journal.glance` for
:mod:`controller.watchers.watcher`: the desired state and the lease (one item), the automation
switch and the pointer to the run in progress are three items, each read strongly consistently
at every evaluation. Read one by one, they were three round trips to a multi-Region strongly
consistent table; a ``BatchGetItem`` reads them in one, for the same read units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.controltable import desired as desires
from controller.controltable.automation import PK as SWITCH_PK
from controller.controltable.automation import SK as SWITCH_SK
from controller.controltable.automation import state_of
from controller.controltable.items import RUN_MARK, marked_run
from controller.controltable.lease import Lease, lease_of
from controller.controltable.table import LEASE_PK, LEASE_SK, ControlTable


@dataclass(frozen=True)
class Glance:
    """The control table's state at one read: who should be active (at which epoch), who
    holds the lease, the automation switch, the run in progress."""

    desired: desires.Desired
    holder: Lease | None
    automation: dict[str, Any]
    run_id: str | None


def read(control: ControlTable, default: str) -> Glance:
    """The :class:`Glance` of ``control`` now (``default``: the active region at epoch 0)."""
    lease, switch = (LEASE_PK, LEASE_SK), (SWITCH_PK, SWITCH_SK)
    got = control.get_many([lease, switch, RUN_MARK])
    return Glance(
        desires.of_item(got[lease], default),
        lease_of(got[lease]),
        state_of(got[switch]),
        marked_run(got[RUN_MARK]),
    )
