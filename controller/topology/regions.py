"""The AWS region names botocore knows: the one list the topology is checked against.

Called by :mod:`controller.topology`. It reads botocore's bundled partition data file directly (no
client, no network, and without importing botocore, which would cost ``failover plan`` about a
fifth of its start-up), which is why it stands apart from the modules that may not touch botocore.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any


@functools.cache
def known_regions() -> frozenset[str]:
    """Every AWS region name botocore knows, across all partitions.

    Read from ``partitions.json`` (7 KB, what botocore's endpoint rules resolve against, and
    newer than the legacy ``endpoints.json``, 1.2 MB, whose parse alone cost ``failover plan``
    16 ms). Its pseudo-regions (``aws-global``) do not match their partition's region pattern
    and are left out.

    >>> "eu-west-1" in known_regions(), "us-east-9" in known_regions()
    (True, False)
    >>> "aws-global" in known_regions()
    False
    """
    names: set[str] = set()
    for partition in _partitions()["partitions"]:
        pattern = re.compile(partition.get("regionRegex", r".*"))
        names.update(r for r in partition.get("regions", {}) if pattern.match(r))
    return frozenset(names)


def _partitions() -> Any:
    """botocore's ``data/partitions.json``, as botocore's own loader would find it."""
    spec = importlib.util.find_spec("botocore")
    for folder in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / "partitions.json"
        if path.exists():
            return json.loads(path.read_bytes())
    import botocore.loaders  # an unusual layout (a zipped or gzipped data folder)

    return botocore.loaders.create_loader().load_data("partitions")


#: The region sets DynamoDB multi-Region strong consistency (MRSC) serves: a control table's
#: three replicas, or two replicas and a witness, must all be in one of them.
MRSC_SETS: dict[str, tuple[str, ...]] = {
    "US": ("us-east-1", "us-east-2", "us-west-2"),
    "EU": ("eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"),
    "AP": ("ap-northeast-1", "ap-northeast-2", "ap-northeast-3"),
}


def mrsc_sets_text() -> str:
    """The allowed sets in one line, for error messages.

    >>> mrsc_sets_text().startswith("US (us-east-1, us-east-2, us-west-2); EU (")
    True
    """
    return "; ".join(f"{name} ({', '.join(regions)})" for name, regions in MRSC_SETS.items())


def mrsc_set_of(regions: list[str] | tuple[str, ...]) -> str | None:
    """The name of the MRSC set holding every one of ``regions``, or None.

    >>> mrsc_set_of(["us-east-1", "us-west-2"]), mrsc_set_of(["us-east-1", "eu-west-1"])
    ('US', None)
    """
    return next(
        (name for name, members in MRSC_SETS.items() if all(r in members for r in regions)), None
    )


def default_control(app_regions: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    """The control table's regions for an application in ``app_regions`` (primary first).

    The set that holds the primary (else the most application regions, else the US set); in
    it, the application's regions first, as replicas; three of them make three replicas, fewer
    make two replicas and a witness, filled from the set in its order.

    >>> default_control(("us-east-1", "us-west-2", "eu-west-1"))
    (('us-east-1', 'us-west-2'), 'us-east-2')
    >>> default_control(("eu-west-1", "eu-central-1", "eu-west-2"))
    (('eu-west-1', 'eu-central-1', 'eu-west-2'), None)
    """

    def fitting(members: tuple[str, ...]) -> int:
        return sum(r in members for r in app_regions)

    name = next(
        (n for n, members in MRSC_SETS.items() if app_regions[:1] and app_regions[0] in members),
        None,
    ) or max(MRSC_SETS, key=lambda n: (fitting(MRSC_SETS[n]), n == "US"))
    members = MRSC_SETS[name]
    ours = [r for r in app_regions if r in members]
    if len(ours) >= 3:
        return tuple(ours[:3]), None
    rest = [r for r in members if r not in ours]
    replicas = (ours + rest)[:2]
    witness = next(r for r in members if r not in replicas)
    return tuple(replicas), witness
