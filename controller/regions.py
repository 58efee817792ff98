"""The AWS region names botocore knows: the one list the topology is checked against.

Called by :mod:`controller.spec`. It reads botocore's bundled endpoint data (no client, no
network), which is why it stands apart from the modules that may not touch botocore.
"""

from __future__ import annotations

import functools


@functools.cache
def known_regions() -> frozenset[str]:
    """Every AWS region name botocore knows, across all partitions.

    >>> "eu-west-1" in known_regions(), "us-east-9" in known_regions()
    (True, False)
    """
    import botocore.loaders

    data = botocore.loaders.create_loader().load_data("endpoints")
    return frozenset(r for part in data["partitions"] for r in part.get("regions", {}))
