"""The one naming rule of a deployment: every physical name derives from the app, its stack
and the component and region, here.

Mixed into :class:`~controller.topology.schema.Topology` (``topology.physical_name(...)``), so
the controller, the sandbox and the Pulumi program all name a resource the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.contract import fit


class PhysicalNames:
    """The physical names of a topology's deployment (a mixin of the topology's model)."""

    if TYPE_CHECKING:
        app: str
        _stack: str

    @property
    def prefix(self) -> str:
        """What every physical name of this deployment starts with: the app, and its stack."""
        return f"{self.app}-{self._stack}" if self._stack else self.app

    def physical_name(self, component: str, region: str) -> str:
        """The AWS name of ``component`` in ``region``: the one naming rule for every tool.

        >>> from controller.topology import Topology
        >>> t = Topology.model_validate({"app": "shop", "regions": {"primary": "us-east-1",
        ...     "standby": ["us-west-2"]}, "components": {"t": {"kind": "table"}}})
        >>> t.physical_name("t", "us-west-2")
        'shop-t-us-west-2'
        """
        return f"{self.prefix}-{component}-{region}"

    def mode_parameter(self, region: str) -> str:
        """The SSM parameter that carries ``region``'s mode for the functions to read."""
        return f"/failover/{self.prefix}/{region}/mode"

    def component_mode_parameter(self, component: str, region: str) -> str:
        """The SSM parameter that carries one component's mode (degraded answers) in ``region``."""
        return f"/failover/{self.prefix}/{region}/mode/{component}"

    def watcher_function(self, region: str) -> str:
        """The Lambda function that watches from ``region`` (one per application region).

        >>> from controller.topology import Topology
        >>> t = Topology.model_validate({"app": "shop", "regions": {"primary": "us-east-1",
        ...     "standby": ["us-west-2"]}, "components": {"t": {"kind": "table"}}})
        >>> t.watcher_function("us-west-2"), t.watcher_log_group("us-west-2")
        ('shop-failover-watcher-us-west-2', '/aws/lambda/shop-failover-watcher-us-west-2')
        """
        return fit(f"{self.prefix}-failover-watcher-{region}", 64)

    def watcher_log_group(self, region: str) -> str:
        """Where the watcher of ``region`` logs (Lambda's own log group name for it)."""
        return f"/aws/lambda/{self.watcher_function(region)}"

    @property
    def control_table(self) -> str:
        """The DynamoDB control table that holds the journal and the lease."""
        return f"{self.prefix}-failover-control"
