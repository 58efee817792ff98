"""Every resource the program declares can be deployed to the sandbox: its type has a function in
the sandbox's mapping, and each of its inputs is mapped or listed as ignored there, with a reason.
(When the program gains a resource type or an input, this says where the sandbox must follow.)"""

from __future__ import annotations

from sandbox.deploy import mapping
from tests.kit.pulumi_mocks import Run


def test_every_input_the_program_gives_is_mapped_or_ignored_with_a_reason(run: Run) -> None:
    for resource in run.resources:
        mapped = mapping.MAPPING.get(resource.typ)
        assert mapped is not None, f"{resource.typ}: no function in sandbox/deploy/mapping.py"
        unknown = set(resource.inputs) - set(mapped.known) - set(mapped.ignored)
        assert unknown == set(), (resource.typ, unknown)
        assert all(mapped.ignored.values()), resource.typ  # each with its reason
