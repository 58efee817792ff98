"""The embedded emulator: moto servers per region, the Pulumi program deployed onto them, the
functions run from their bundles, and the local data plane.

``Sandbox``, ``FailMode`` and ``down`` are loaded on first use: the moto servers' launcher is a
module of this package too, and importing the sandbox's life cycle (boto3, the controller) would
cost every launcher about half a second of CPU it never uses.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.lifecycle import FailMode, Sandbox, down

__all__ = ["FailMode", "Sandbox", "down"]


def __getattr__(name: str) -> Any:
    """The life cycle's public names, imported when first asked for (PEP 562)."""
    if name in __all__:
        from sandbox import lifecycle

        return getattr(lifecycle, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
