"""The deployment's mapping refuses what it does not know, in one line, before any call is made.

What the mapping does to the emulator is checked end to end (``tests/sandbox/test_deployed.py``);
here, what it refuses: a resource type without a function, an input (or a nested key) it neither
maps nor lists as ignored, a provider setting it does not know, a resource made without an
explicit provider. And the README says which inputs the emulator is given none of, and why.
"""

from __future__ import annotations

import re

import pulumi
import pytest

from sandbox.deploy import mapping
from sandbox.deploy.at import At, RefusedError
from sandbox.deploy.engine import EmulatorMocks
from tests.kit.paths import REPO

NOWHERE = {"sqs": "http://127.0.0.1:9", "dynamodb": "http://127.0.0.1:9"}


def at(typ: str) -> At:
    """A resource of ``typ`` whose provider points at a port nothing listens on: a call made
    would fail with a connection error, not the refusal these tests look for."""
    return At(typ, "orders-queue-us-east-1", "us-east-1", NOWHERE)


def test_an_unknown_resource_type_is_refused_naming_it() -> None:
    with pytest.raises(RefusedError) as refused:
        mapping.create(at("aws:sqs/queueRedrivePolicy:QueueRedrivePolicy"), {"queueUrl": "x"})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("aws:sqs/queueRedrivePolicy:QueueRedrivePolicy orders-queue")
    assert "no mapping to the emulator" in message and "sandbox/deploy/mapping.py" in message


def test_an_unknown_input_is_refused_naming_the_type_and_the_input() -> None:
    with pytest.raises(RefusedError) as refused:
        mapping.create(at("aws:sqs/queue:Queue"), {"name": "q", "fifoQueue": True})
    message = str(refused.value)
    assert "\n" not in message
    assert "aws:sqs/queue:Queue" in message and "'fifoQueue'" in message


def test_an_unknown_nested_input_is_refused_naming_where_it_is() -> None:
    inputs = {
        "name": "t",
        "hashKey": "pk",
        "attributes": [{"name": "pk", "type": "S"}],
        "replicas": [{"regionName": "us-west-2", "kmsKeyArn": "arn:aws:kms:x"}],
    }
    with pytest.raises(RefusedError, match=r"aws:dynamodb/table:Table .*replicas\.kmsKeyArn"):
        mapping.create(at("aws:dynamodb/table:Table"), inputs)


def test_a_known_input_maps_to_its_parameter_and_back() -> None:
    for typ, mapped in mapping.MAPPING.items():
        for name in mapped.known:
            assert mapping.camel(mapping._snake(name, mapped.fn)) == name, (typ, name)
        assert not set(mapped.known) & set(mapped.ignored), typ


def test_the_readme_names_every_input_the_emulator_is_not_given() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The sandbox deploys what") :]
    section = section[: section.index("\n## ")]
    ignored = {key for m in mapping.MAPPING.values() for key in m.ignored}
    ignored |= {k for k, why in mapping.PROVIDER_INPUTS.items() if why and k != "version"}
    ignored -= {"skipRegionValidation"}  # the program never sets it
    for key in sorted(ignored):
        assert re.search(rf"`{key}`", section), f"the README does not say why {key} is ignored"


# -- the engine ------------------------------------------------------------------------------


def resource(
    typ: str, inputs: dict[str, object], provider: str = ""
) -> pulumi.runtime.MockResourceArgs:
    return pulumi.runtime.MockResourceArgs(
        typ=typ, name="thing", inputs=inputs, provider=provider, custom=True
    )


def test_a_resource_without_an_explicit_provider_is_refused() -> None:
    mocks = EmulatorMocks({})
    with pytest.raises(RefusedError, match="without an explicit provider"):
        mocks.new_resource(resource("aws:sqs/queue:Queue", {"name": "q"}))
    assert len(mocks.refused) == 1 and mocks.made == []


def test_a_provider_setting_the_mapping_does_not_know_is_refused() -> None:
    mocks = EmulatorMocks({})
    with pytest.raises(RefusedError, match=r"pulumi:providers:aws .*'assumeRoles'"):
        mocks.new_resource(
            resource("pulumi:providers:aws", {"region": "us-east-1", "assumeRoles": "[]"})
        )


def test_a_providers_endpoints_are_where_its_resources_go() -> None:
    mocks = EmulatorMocks({})
    rid, _ = mocks.new_resource(
        resource(
            "pulumi:providers:aws",
            {"region": "us-west-2", "endpoints": '[{"sqs": "http://127.0.0.1:9", "lambda": "u"}]'},
        )
    )
    provider = mocks._provider_of("aws:sqs/queue:Queue", "q", f"urn:pulumi:x::{rid}")
    assert provider.region == "us-west-2"
    assert provider.endpoints == {"sqs": "http://127.0.0.1:9", "lambda_": "u"}
