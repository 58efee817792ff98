"""What a switch could lose (its RPO), as a run records it: each table's replication lag read
just before the run acted, with when it was read and how old its datapoint was; and a source
that leaves one lag read unanswered is not asked for the others (one timeout, not one a table)."""

from __future__ import annotations

from typing import Any

import pytest

from controller import topology as spec
from controller.controltable import journal as journals
from controller.controltable.items import plain
from controller.controltable.journal import Journal, RunKind
from controller.controltable.lease import Lease
from controller.controltable.rpo import TableLag, describe
from controller.engine import prechecks
from controller.engine.prechecks import Check, lag_check, seen
from controller.errors import TransientStepError
from controller.interfaces.views import run_summary
from controller.plan import graph as graphs
from controller.plan.build import build_plan

SOURCE, TARGET = "us-east-1", "us-west-2"
TWO_TABLES = {
    "app": "shop",
    "regions": {"primary": SOURCE, "standby": [TARGET]},
    "components": {
        "orders": {"kind": "table", "hash_key": "id", "max_lag_seconds": 30},
        "carts": {"kind": "table", "hash_key": "id", "max_lag_seconds": 30},
    },
}


def two_tables() -> tuple[spec.Topology, Any]:
    topology = spec.Topology.model_validate(TWO_TABLES)
    return topology, build_plan(topology, graphs.build(topology), target=TARGET, source=SOURCE)


def test_a_run_record_carries_each_tables_lag_at_the_switch_and_its_age() -> None:
    _, plan = two_tables()
    journal = Journal.__new__(Journal)  # no control table: its writes are captured below
    journal.clock = lambda: 1000.0
    written: list[dict[str, Any]] = []
    journal._write = lambda lease, puts, *more: written.extend(puts)  # type: ignore[method-assign]
    journal.record_steps = lambda *args: None  # type: ignore[method-assign]
    lags = (
        TableLag("orders", 2.5, read_at=999.0, as_of=960.0),
        TableLag("carts", None, read_at=999.5, error="us-east-1 unreachable: ReadTimeoutError"),
    )
    lease = Lease(owner="me", token=1, expires_at=2000.0)
    journal.create_run(lease, "r1", plan, kind=RunKind.FAILOVER, epoch=3, rpo=lags)
    head = next(i for i in written if i["sk"]["S"] == "run")
    back = journals._run_of(plain(head))  # what `failover runs` reads back
    assert back.rpo == lags
    record = back.to_dict()["rpo"]
    assert record[0] == {
        "table": "orders",
        "lag_seconds": 2.5,
        "read_at": 999.0,
        "as_of": 960.0,
        "error": "",
        "age_seconds": 39.0,
    }
    assert record[1]["lag_seconds"] is None and "unreachable" in record[1]["error"]
    assert run_summary(back)["rpo"] == record  # `failover runs --json`
    assert describe(back.rpo) == (
        "orders 2.5s (read 39s after its datapoint); "
        "carts unknown (us-east-1 unreachable: ReadTimeoutError)"
    )


def test_an_unreachable_source_is_asked_for_one_tables_lag_not_every_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topology, plan = two_tables()
    asked: list[str] = []

    def timed_out(clients: Any, manifest: Any, name: str, source: str, target: str) -> Any:
        asked.append(name)
        raise TransientStepError("unreachable: ReadTimeoutError", region=source, unreachable=True)

    monkeypatch.setattr(prechecks, "read_replication_lag", timed_out)
    check = lag_check(topology, None, None, plan, accept_unknown=True)  # type: ignore[arg-type]
    assert asked == ["orders"]  # carts is not asked: it would cost a second timeout
    assert check.ok and check.name == Check.REPLICATION_LAG
    assert [lag.table for lag in check.lags] == ["orders", "carts"]
    assert all(lag.lag_seconds is None for lag in check.lags)
    assert "unreachable" in check.lags[1].error
    lags, silence = seen([check])
    assert lags == check.lags and SOURCE in silence and TARGET not in silence
    assert silence.why(SOURCE) == "its replication_lag read got no answer"


def test_a_lag_read_that_answers_is_recorded_with_its_datapoint_and_silences_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topology, plan = two_tables()
    answers = {"orders": (4.0, 500.0), "carts": (None, None)}
    monkeypatch.setattr(prechecks, "read_replication_lag", lambda c, m, name, s, t: answers[name])
    check = lag_check(topology, None, None, plan, accept_unknown=False)  # type: ignore[arg-type]
    assert not check.ok and "carts" in check.detail  # unknown is not 0: refused
    orders, carts = check.lags
    assert (orders.lag_seconds, orders.as_of, orders.error) == (4.0, 500.0, "")
    assert (carts.lag_seconds, carts.error) == (None, "no datapoint")
    assert not seen([check])[1].regions
