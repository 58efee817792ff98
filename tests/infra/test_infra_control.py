"""The control table as a policy reads it: strongly consistent in one MRSC set, no TTL."""

from __future__ import annotations

from controller.topology.regions import mrsc_set_of
from tests.kit.pulumi_mocks import Run


def test_the_control_table_is_strong_with_three_replicas_or_two_and_a_witness(run: Run) -> None:
    t = run.topology
    tables = [
        r
        for r in run.resources
        if r.typ == "aws:dynamodb/table:Table" and r.inputs.get("name") == t.control_table
    ]
    assert len(tables) == 1
    table = tables[0]
    replicas = table.inputs.get("replicas") or []
    assert replicas and all(r.get("consistencyMode") == "STRONG" for r in replicas)
    regions = [table.region, *(r["regionName"] for r in replicas)]
    witness = (table.inputs.get("globalTableWitness") or {}).get("regionName")
    assert (len(regions), witness is not None) in ((3, False), (2, True))
    assert sorted(regions) == sorted(t.control_regions.replicas)
    assert witness == t.control_regions.witness
    assert mrsc_set_of([*regions, *([witness] if witness else [])]) is not None
    assert not (table.inputs.get("ttl") or {}).get("enabled")  # the lease is never deleted
