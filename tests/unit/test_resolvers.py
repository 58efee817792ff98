"""The clients' resolvers (``sandbox.router.Resolvers``): each load client behind its own, their
first answers expiring spread over one TTL, as a population's do, not at one instant."""

from __future__ import annotations

from typing import Any

import pytest

from controller import clock
from sandbox import router
from sandbox.router import Resolver, Resolvers

TTL = 60.0


class World:
    """The test's clock and Route 53's answer (with a TTL of 60 s), both moved by the test."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.answer = "primary"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    monkeypatch.setattr(clock, "monotonic", lambda: w.t)
    monkeypatch.setattr(Resolver, "_answer", lambda self: (w.answer, TTL))
    return w


def resolvers() -> Resolvers:
    return Resolvers(Resolver(clients=Any, manifest=Any))  # never read: Route 53 is the world's


def test_each_client_moves_at_its_own_moment_spread_over_one_ttl(world: World) -> None:
    pool, n = resolvers(), 8
    for i in range(n):  # every client asks once, at the same instant
        assert pool.of(f"{i}/{n}").resolve() == "primary"
    world.answer = "standby"  # Route 53's answer changes at once ...
    moved_at: dict[int, float] = {}
    for step in range(int(TTL) + 1):  # ... and each client asks every second from then on
        world.t = 1000.0 + step
        for i in range(n):
            if i not in moved_at and pool.of(f"{i}/{n}").resolve() == "standby":
                moved_at[i] = float(step)
    assert sorted(moved_at) == list(range(n))  # every client moved within one TTL
    for i, t in moved_at.items():  # client i of n kept its first answer [i/n, (i+1)/n) TTLs
        assert TTL * i / n <= t <= TTL * (i + 1) / n + 1, (i, t)
    # Spread over the TTL, not at one instant (two neighbours may share a one-second step: client
    # 6's first answer may expire at 52.4 s and client 7's at 52.6, both seen at 53).
    assert max(moved_at.values()) - min(moved_at.values()) >= TTL * (n - 2) / n - 1


def test_a_caller_that_names_no_client_shares_the_default_resolver(world: World) -> None:
    pool = resolvers()
    assert pool.of(None) is pool.default and pool.of("not-a-client") is pool.default
    assert pool.of("2/4") is pool.of("2/4") and pool.of("2/4") is not pool.default
    assert pool.answers() == [None]  # the client's resolver has asked nothing yet
    pool.of("2/4").resolve()
    assert pool.answers() == ["primary"]
    world.t += TTL  # at most a full TTL later it holds nothing: its next request asks again
    assert pool.answers() == [None]


def test_the_clients_name_is_not_forwarded_to_the_api() -> None:
    assert router.CLIENT_HEADER.lower() in router.HOP_HEADERS
