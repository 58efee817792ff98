"""A region cut off from the control table fences itself, so that a partition has one writer.

Called by the deployed watcher (:mod:`controller.watchers.lambda_entry`) after every evaluation:
with
:meth:`Isolation.answered` when the control table answered, with :meth:`Isolation.cut_off` when
no control region could (:class:`~controller.errors.NoMajorityError`).

Partitioned, a region still serves its own clients: its consumers run and its API takes writes
while the rest of the world fails it over. Its own watcher cannot take the lease, but it can
still act inside its region. Once it has been cut off from the control table's majority for
longer than the lease (``policy.lease_seconds``: by then no lease its region's controllers held
is still good, and another region's controller may hold one and be failing it over), it fences
its own region as a run's fence steps would there, dependents first: reserved concurrency 0 and
mappings disabled, rules disabled, every component's mode and last the region's mode
``fenced``. The traffic steps (Route 53, global) are the others' to do; cut off, it cannot
reach them. It never activates anything: only a controller that holds the lease (the
reconciler) makes a fenced region serve again, once the control table answers.

Since when the region has been cut off must outlive an invocation (a partition lasts longer than
a minute) and cannot be written to the control table: it is kept in an SSM parameter of the
region itself, beside the region's mode parameter (:func:`cut_off_parameter`), read once per
invocation and written only when the region is cut off or joins again.

**The two-writer window.** Let the cut start at ``t0``, ``I`` be the longest gap between two
evaluations of the region's watcher (the watch interval, or the gap between two invocations),
``C`` the time one evaluation takes to find no majority and ``F`` the time the fence takes. The
watcher sees the cut by ``t0 + I + C`` and fences at its first evaluation at least
``lease_seconds`` later: the region stops writing by ``t0 + lease + 2I + C + F``. Another region
starts writing no earlier than its watchers' detection, ``failure_threshold - 1`` intervals after
their first bad evaluation, and no earlier than ``t0 + lease`` if the cut-off watcher held the
lease. Two regions write for at most ``lease + (3 - failure_threshold) * I + C + F`` seconds:
60 + 0 + C + F for the example's policy (lease 60 s, interval 10 s, threshold 3).

Under the sentinel cadence (:mod:`controller.watchers.cadence`) the active region's own watcher
is never the sentinel: while calm it evaluates once a minute, so it may see the cut only ``P``
(the schedule's period, 60 s) after ``t0``, and every interval ``I`` from then on. It stops
writing by ``t0 + P + C + lease + I + F``, and two regions write for at most
``lease + P + (2 - failure_threshold) * I + C + F``: 110 + C + F seconds for the example, 50 s
more than when every watcher evaluated every interval. That is the price of the cadence (a
second function alive all the time would put the example's watchers over $10 a month:
``bench/cost.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from controller import clock as aws_clock
from controller.actions import mode as modes
from controller.actions.registry import action_for
from controller.aws import Clients
from controller.contract import Mode
from controller.errors import FailoverError, PermanentStepError, TransientStepError
from controller.topology import Topology
from controller.topology.manifest import Manifest
from controller.watchers.decisions import WatchAction

log = logging.getLogger(__name__)

#: The decision of an evaluation that could not reach the control table's majority.
CUT_OFF = WatchAction.UNREACHABLE
#: The decision of an evaluation that fenced its own region (it was cut off past the lease).
SELF_FENCE = WatchAction.SELF_FENCE
#: The last part of the name of the parameter that holds since when the region is cut off.
PARAMETER = "cut-off-since"
#: Its value while the region is not cut off (SSM takes no empty value).
JOINED = "0"


def cut_off_parameter(topology: Topology, manifest: Manifest, region: str) -> str:
    """The SSM parameter beside ``region``'s mode parameter (the watcher's role may write there).

    >>> from controller.topology.manifest import ControlManifest
    >>> from controller.topology import EXAMPLE_SPEC, load
    >>> t = load(EXAMPLE_SPEC)
    >>> m = Manifest(app=t.app, primary="us-east-1", regions={},
    ...     control=ControlManifest(table="c", regions=["us-east-1"]))
    >>> cut_off_parameter(t, m, "us-west-2")
    '/failover/orders/us-west-2/cut-off-since'
    """
    mode = modes.parameter_of(topology, manifest, region)
    return f"{mode.rsplit('/', 1)[0]}/{PARAMETER}"


@dataclass(frozen=True)
class Verdict:
    """What a cut-off evaluation decided (``CUT_OFF`` or ``SELF_FENCE``) and why, in one line."""

    action: WatchAction
    reason: str
    cut_for: float
    changed: int = 0


class Isolation:
    """One region's watcher's view of its own isolation, and its self-fence.

    Parameters
    ----------
    topology, manifest : the deployment.
    clients : the watcher's clients (they name their home region, so a partitioned region
        still answers them).
    region : the watcher's own region.
    clock : seconds since the epoch (tests move it).
    """

    def __init__(
        self,
        topology: Topology,
        manifest: Manifest,
        clients: Clients,
        region: str,
        clock: Callable[[], float] = aws_clock.now,
    ) -> None:
        self.topology = topology
        self.manifest = manifest
        self.clients = clients
        self.region = region
        self.clock = clock
        self.parameter = cut_off_parameter(topology, manifest, region)
        self._read = False
        self._since: float | None = None

    def answered(self) -> None:
        """The control table answered: the region is not cut off (forget since when it was)."""
        if self._read and self._since is None:
            return
        if self._known_since() is None:
            return
        self._since = None
        self._write(JOINED)
        log.info("%s: the control table answers again", self.region)

    def cut_off(self) -> Verdict:
        """No control region answered with a majority: count since when, and past the lease
        fence the region (again at every evaluation: each fence step does nothing when done)."""
        now = self.clock()
        since = self._known_since()
        if since is None or since > now:
            since = self._since = now
            self._write(repr(now))
        cut_for = now - since
        lease = self.topology.policy.lease_seconds
        if cut_for <= lease:
            return Verdict(
                CUT_OFF,
                f"cut off from the control table's majority for {cut_for:.0f}s; "
                f"{self.region} fences itself after {lease:g}s",
                cut_for,
            )
        changed, failed = self.fence()
        return Verdict(
            SELF_FENCE,
            f"cut off from the control table's majority for {cut_for:.0f}s (> the lease, "
            f"{lease:g}s): {self.region} fenced, {changed} changed"
            + (f", {len(failed)} failed ({'; '.join(failed)})" if failed else "")
            + "; it serves again only when the control table says so",
            cut_for,
            changed,
        )

    def fence(self) -> tuple[int, list[str]]:
        """Fence every regional component, dependents first, then the region's mode.

        Returns how many components changed and what failed; the region's mode is written
        ``fenced`` only when every component is fenced, so that the next evaluation tries
        again what failed (the functions read the mode: ``fenced`` tells them to stop too).
        """
        from controller.plan import graph as graphs  # networkx: only once the region fences

        changed, failed = 0, []
        for level in graphs.fencing_levels(graphs.build(self.topology)):
            for component in level:
                action = action_for(
                    self.topology, self.manifest, self.clients, component, self.region
                )
                if action.global_resource:
                    continue  # traffic: the others' to move, and out of reach from here
                try:
                    changed += int(action.deactivate().changed)
                except (TransientStepError, PermanentStepError) as exc:
                    log.warning("self-fence of %s in %s: %s", component, self.region, exc)
                    failed.append(f"{component}: {exc}")
        if not failed:
            try:
                if (
                    modes.read_region_mode(self.clients, self.topology, self.manifest, self.region)
                    != Mode.FENCED
                ):
                    modes.set_region_mode(
                        self.clients, self.topology, self.manifest, self.region, Mode.FENCED
                    )
                    changed += 1
            except FailoverError as exc:
                failed.append(f"mode: {exc}")
        log.warning("%s fenced itself: %d changed, %d failed", self.region, changed, len(failed))
        return changed, failed

    # -- the clock, kept in the region ---------------------------------------------------------

    def _known_since(self) -> float | None:
        """Since when the region is cut off, read from its parameter once per invocation."""
        if not self._read:
            self._read = True
            try:
                value = modes.get(self.clients, self.region, [self.parameter]).get(self.parameter)
            except Exception as exc:  # its own region does not answer: start counting now
                log.warning("%s: cannot read %s: %s", self.region, self.parameter, exc)
                value = None
            try:
                since = float(value) if value and value != JOINED else None
            except ValueError:
                since = None
            self._since = since
        return self._since

    def _write(self, value: str) -> None:
        try:
            modes.put(self.clients, self.region, self.parameter, value)
        except Exception as exc:  # counted in memory for this invocation all the same
            log.warning("%s: cannot write %s: %s", self.region, self.parameter, exc)
