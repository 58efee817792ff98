"""Fixtures of the Pulumi program tests: each topology is run once per session under mocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.topology import EXAMPLE_SPEC, load
from tests.kit.pulumi_mocks import SETTINGS, Run, generated_topology, run_program


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Both topologies, each run once for the whole session."""
    topologies = {
        "example": load(EXAMPLE_SPEC),
        "generated": generated_topology(tmp_path_factory.mktemp("generated")),
    }
    return {name: run_program(t, SETTINGS[name]()) for name, t in topologies.items()}


@pytest.fixture(params=["example", "generated"])
def run(request: pytest.FixtureRequest, runs: dict[str, Run]) -> Iterator[Run]:
    """Each topology's run in turn."""
    yield runs[request.param]
