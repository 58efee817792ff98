"""A handler module for the test topologies whose functions never run (``code: ../functions``)."""

from __future__ import annotations

from typing import Any


def handler(event: Any, context: Any) -> None:
    """Does nothing: the topologies that name it are refused before anything runs."""
