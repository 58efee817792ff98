"""Which regions' alarms an evaluation reads: one ``DescribeAlarms`` where the decision needs it.

Called by the watcher (:meth:`controller.watchers.watcher.Watcher.read`) before each evaluation.
``DescribeAlarms`` is the watchers' most frequent paid call (one per region per evaluation, $0.01
per 1,000: ``bench/cost.py``), and a decision uses a region's alarms in three places only:

- the **active** region's, every evaluation: they are one of the votes that make it bad;
- every other region's, when the evaluation may **choose a target** (the active region's bad
  evaluations in a row, this one included, may reach the threshold): a target must be good,
  and an alarm makes it unhealthy;
- the **primary**'s, every evaluation, while an automatic failback may bring the application
  back to it (``policy.auto_failback`` and another region active): it must be good for the
  threshold's evaluations in a row.

A region whose alarms are not read still has its reachability, mode, Route 53 check and HTTP
probe read; its health in that evaluation's decision is from those alone, and it casts no
alarms vote.
"""

from __future__ import annotations

from collections.abc import Collection

from controller import health
from controller.topology import Topology
from controller.topology.manifest import Manifest


def alarm_regions(topology: Topology, active: str | None, *, choosing: bool) -> frozenset[str]:
    """The regions whose alarms an evaluation reads, when ``active`` is the active region
    (None: unknown, every region) and ``choosing``: it may choose a target.

    >>> from controller.topology import EXAMPLE_SPEC, load
    >>> t = load(EXAMPLE_SPEC)  # us-east-1, then us-west-2, eu-west-1; no auto failback
    >>> sorted(alarm_regions(t, "us-east-1", choosing=False))
    ['us-east-1']
    >>> sorted(alarm_regions(t, "us-west-2", choosing=False))
    ['us-west-2']
    >>> len(alarm_regions(t, "us-east-1", choosing=True))
    3
    >>> len(alarm_regions(t, None, choosing=False))
    3
    """
    if active is None or choosing:
        return frozenset(topology.regions.all)
    primary = topology.regions.primary
    failback = topology.policy.auto_failback and active != primary
    return frozenset({active, primary} if failback else {active})


def without_alarms(manifest: Manifest, regions: Collection[str]) -> Manifest:
    """``manifest`` with no alarm named in ``regions`` (what a status read then leaves unread).

    >>> from controller.topology.manifest import ComponentRef, ControlManifest, RegionManifest
    >>> ref = ComponentRef(kind="function", name="f", alarms=["f-errors-high"])
    >>> m = Manifest(app="a", primary="r1", control=ControlManifest(table="t", regions=[]),
    ...     regions={r: RegionManifest(mode_parameter="p", components={"f": ref})
    ...              for r in ("r1", "r2")})
    >>> stripped = without_alarms(m, ["r2"])
    >>> [stripped.regions[r].components["f"].alarms for r in ("r1", "r2")]
    [['f-errors-high'], []]
    >>> m.regions["r2"].components["f"].alarms
    ['f-errors-high']
    """
    regions_out = dict(manifest.regions)
    for name in regions:
        regional = manifest.regions.get(name)
        if regional is None:
            continue
        components = {
            c: ref.model_copy(update={"alarms": []}) for c, ref in regional.components.items()
        }
        regions_out[name] = regional.model_copy(update={"components": components})
    return manifest.model_copy(update={"regions": regions_out})


class AlarmReads:
    """The manifests a watcher reads health with: one per set of regions whose alarms it reads,
    made once."""

    def __init__(self, topology: Topology, manifest: Manifest) -> None:
        self.regions = frozenset(topology.regions.all)
        self.full = manifest
        self._made: dict[frozenset[str], Manifest] = {}

    def manifest(self, alarms_of: frozenset[str]) -> Manifest:
        """The manifest naming the alarms of ``alarms_of`` only."""
        unread = self.regions - alarms_of
        if not unread:
            return self.full
        if alarms_of not in self._made:
            self._made[alarms_of] = without_alarms(self.full, unread)
        return self._made[alarms_of]


def votes(report: health.StatusReport, alarms_of: Collection[str]) -> dict[str, dict[str, bool]]:
    """Each region's votes (:func:`controller.health.votes`); a region whose alarms were not
    read casts no alarms vote."""
    out = {name: health.votes(region) for name, region in report.regions.items()}
    for name in out.keys() - set(alarms_of):
        out[name].pop("alarms", None)
    return out
