"""A topology's dependency graph and the failover plans made from it, made when first asked for.

Called by the executor and the watchers. A watcher makes both at every invocation and mostly
plans nothing: a calm evaluation needs no graph. The graph and the planning
(:mod:`controller.plan.graph`, :mod:`controller.plan.build`) stand on networkx, whose package
imports all its algorithms (about 0.13 s of a process's CPU, a watcher's cold start included),
so this module imports them only when a graph or a plan is asked for
(``tests/unit/test_lean_package.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING

from controller.topology import Topology

if TYPE_CHECKING:
    import networkx as nx

    from controller.plan.steps import FailoverPlan


class Planner:
    """Plans failovers of ``topology`` from its dependency graph, built at the first plan."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The dependency graph (:func:`controller.plan.graph.build`), validated once, then kept.

        Raises
        ------
        SpecError
            The topology's dependencies are wrong (a cycle, an unknown component).
        """
        from controller.plan import graph as graphs

        return graphs.build(self.topology)

    def plan(
        self, *, target: str, source: str | None = None, unavailable: Iterable[str] = ()
    ) -> FailoverPlan:
        """The plan of a failover from ``source`` to ``target``
        (:func:`controller.plan.build.build_plan`, which says what its arguments mean).

        >>> from controller.topology import loads
        >>> t = loads('{app: a, regions: {primary: us-east-1, standby: [us-west-2]}, '
        ...           'components: {q: {kind: queue}}}')
        >>> [s.id for s in Planner(t).plan(target="us-west-2").steps]
        ['fence:q@us-east-1', 'activate:q@us-west-2']
        """
        from controller.plan.build import build_plan

        return build_plan(
            self.topology, self.graph, target=target, source=source, unavailable=unavailable
        )
