"""Where things are: the repository and the example application's topology."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "orders" / "topology.yaml"
