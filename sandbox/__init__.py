"""The embedded emulator: moto servers per region, the resources, and the local data plane."""

from sandbox.lifecycle import FailMode, Sandbox, down

__all__ = ["FailMode", "Sandbox", "down"]
