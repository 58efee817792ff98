"""The ways a run reaches AWS: reading, probing fast, acting and fencing, the last two only
while this controller holds the lease.

Called by the executor (:mod:`controller.engine.executor`), which gives its lease check as the
guard: every request an acting or fencing client makes runs it first (:class:`Guarded
<controller.aws.clients.Guarded>`), so a controller that lost the lease stops before its next
request, not after. The guarded clients wrap the ones every run shares: a run makes none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.aws import AwsSettings, Clients

#: Fencing a source that may be gone: one attempt, short timeouts.
FENCE_SETTINGS = AwsSettings(connect_timeout=1.0, read_timeout=2.0, max_attempts=1)


@dataclass(frozen=True)
class RunClients:
    """A run's four kinds of client, all to the same endpoints."""

    #: Reads (health, prechecks): no lease needed.
    read: Clients
    #: Reads that must fail fast (the lag precheck): the fence settings, no lease needed.
    probe: Clients
    #: Acting: every request checks the lease first.
    act: Clients
    #: Fencing a source that may be gone: the fence settings, the lease checked first.
    fence: Clients

    @classmethod
    def around(cls, clients: Clients, guard: Callable[[], None]) -> RunClients:
        """The four kinds made from ``clients``, ``guard`` run before every acting request."""
        return cls(
            read=clients,
            probe=clients.derive(settings=FENCE_SETTINGS),
            act=clients.derive(guard=guard),
            fence=clients.derive(settings=FENCE_SETTINGS, guard=guard),
        )
