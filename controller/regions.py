"""The AWS region names botocore knows: the one list the topology is checked against.

Called by :mod:`controller.spec`. It reads botocore's bundled endpoint data file directly (no
client, no network, and without importing botocore, which would cost ``failover plan`` about a
fifth of its start-up), which is why it stands apart from the modules that may not touch botocore.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
from pathlib import Path
from typing import Any


@functools.cache
def known_regions() -> frozenset[str]:
    """Every AWS region name botocore knows, across all partitions.

    >>> "eu-west-1" in known_regions(), "us-east-9" in known_regions()
    (True, False)
    """
    data = _endpoints()
    return frozenset(r for part in data["partitions"] for r in part.get("regions", {}))


def _endpoints() -> Any:
    """botocore's ``data/endpoints.json`` (plain or gzipped, as botocore's loader reads it)."""
    spec = importlib.util.find_spec("botocore")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        plain = Path(folder) / "data" / "endpoints.json"
        if plain.exists():
            return json.loads(plain.read_bytes())
        packed = plain.with_name("endpoints.json.gz")
        if packed.exists():
            return json.loads(gzip.decompress(packed.read_bytes()))
    import botocore.loaders  # an unusual layout: let botocore find its own data

    return botocore.loaders.create_loader().load_data("endpoints")
