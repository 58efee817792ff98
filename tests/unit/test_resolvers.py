"""The clients' resolvers (``sandbox.router.Resolvers``): each load client behind its own, their
first answers expiring spread over one TTL, as a population's do, not at one instant."""

from __future__ import annotations

from types import SimpleNamespace
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


class Route53:
    """Route 53's API as a resolver reads it: a failover pair of records with health checks,
    whose status reads fail while ``failing`` (a busy global server, a client's timeout)."""

    def __init__(self) -> None:
        self.failing = False
        self.asked = 0

    def list_resource_record_sets(self, HostedZoneId: str) -> dict[str, Any]:
        self.asked += 1
        return {
            "ResourceRecordSets": [
                {
                    "Name": "api.example.com.",
                    "Failover": role,
                    "TTL": TTL,
                    "HealthCheckId": f"check-{host}",
                    "ResourceRecords": [{"Value": f"{host}.example.com"}],
                }
                for role, host in (("PRIMARY", "east"), ("SECONDARY", "west"))
            ]
        }

    def get_health_check(self, HealthCheckId: str) -> dict[str, Any]:
        return {"HealthCheck": {"HealthCheckConfig": {}}}

    def get_health_check_status(self, HealthCheckId: str) -> dict[str, Any]:
        if self.failing:
            raise TimeoutError("read timed out")
        return {"HealthCheckObservations": [{"StatusReport": {"Status": "Success: HTTP 200"}}]}


def test_a_health_check_that_cannot_be_read_keeps_the_last_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Route 53's records read, their health check's status not: the resolver answers what it
    had, for UNREADABLE_TTL, and asks again after; it never fails the request that asked."""
    now = [1000.0]
    monkeypatch.setattr(clock, "monotonic", lambda: now[0])
    r53 = Route53()
    region = {
        name: SimpleNamespace(
            components={"dns": SimpleNamespace(kind="dns", endpoint=f"{host}.example.com")},
            api_endpoint=None,
        )
        for name, host in (("us-east-1", "east"), ("us-west-2", "west"))
    }
    manifest = SimpleNamespace(
        dns=SimpleNamespace(zone_id="Z1", record="api.example.com"), regions=region
    )
    resolver = Resolver(clients=SimpleNamespace(client=lambda *_: r53), manifest=manifest)  # type: ignore[arg-type]
    assert resolver.resolve() == "us-east-1"
    r53.failing, now[0] = True, now[0] + TTL + 1
    assert resolver.resolve() == "us-east-1", "the last answer, kept"
    asked = r53.asked
    now[0] += router.UNREADABLE_TTL - 1
    assert resolver.resolve() == "us-east-1" and r53.asked == asked, "kept, not asked again"
    r53.failing, now[0] = False, now[0] + 2
    assert resolver.resolve() == "us-east-1" and r53.asked == asked + 1
