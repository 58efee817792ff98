"""Which control regions a region's gate reaches (:meth:`sandbox.mrsc.ControlGate.unreachable`):
the ones the sandbox made fail are not reached; a running one that answers late still is."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest

from sandbox.mrsc import Config, ControlGate


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that takes connections and never answers: a running server this machine's CPU
    has not got to yet."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield listening.getsockname()[1]


def refused_port() -> int:
    """A loopback port nothing listens on (free a moment ago): a server that died."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_running_region_that_answers_late_is_reached_and_a_stopped_one_is_not(
    silent: int,
) -> None:
    config = Config(
        name="us-west-2",
        replicas=("us-east-1", "us-west-2"),
        members=("us-east-1", "us-west-2", "us-east-2"),
        urls={
            "us-east-1": f"http://127.0.0.1:{silent}",
            "us-east-2": f"http://127.0.0.1:{refused_port()}",
        },
    )
    gate = ControlGate(lambda environ, start_response: [])
    # us-east-1 runs (the sandbox stopped nothing) but answers late: with us-west-2, a majority
    assert gate.unreachable(config) is None
    # once the sandbox hung it, it is not reached, and us-east-2 refuses: no majority
    hung = replace(config, stopped=frozenset({"us-east-1"}))
    assert gate.unreachable(hung) == ["us-east-1", "us-east-2"]
    cut = replace(config, partitioned=frozenset({"us-east-1"}))
    assert gate.unreachable(cut) == ["us-east-1", "us-east-2"]
