"""The lease and the journal in the emulator's control table: tokens, takeover, fencing."""

from __future__ import annotations

import threading

import boto3
import pytest

from controller.contract import GLOBAL
from controller.controltable.journal import Journal, RunStatus, StepRecord, StepState, new_run_id
from controller.errors import LeaseHeldError, StaleTokenError
from controller.plan import graph as graphs
from controller.plan.build import build_plan
from sandbox import Sandbox


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def journal(box: Sandbox, clock: Clock | None = None) -> Journal:
    return Journal(box.clients, box.manifest, clock=clock or Clock())


def example_plan(box: Sandbox):
    t = box.topology
    return build_plan(t, graphs.build(t), target="us-west-2")


def test_lease_tokens_grow_with_every_holder(fresh_sandbox: Sandbox) -> None:
    clock = Clock()
    j = journal(fresh_sandbox, clock)
    first = j.acquire("a", 10)
    with pytest.raises(LeaseHeldError) as held:
        j.acquire("b", 10)
    assert "a" in str(held.value)
    j.release(first)
    second = j.acquire("b", 10)
    assert second.token == first.token + 1
    clock.now += 11  # b's lease expires: c takes over
    third = j.acquire("c", 10)
    assert third.token == second.token + 1
    assert j.holder() == third


def test_expired_holder_cannot_write_after_takeover(fresh_sandbox: Sandbox) -> None:
    clock = Clock()
    j = journal(fresh_sandbox, clock)
    old = j.acquire("old", 5)
    run_id = new_run_id()
    j.create_run(old, run_id, example_plan(fresh_sandbox))
    clock.now += 6
    new = j.acquire("new", 5)
    with pytest.raises(StaleTokenError):
        j.record_steps(old, run_id, [StepRecord("fence:dns@us-east-1", StepState.DONE)])
    with pytest.raises(StaleTokenError):
        j.leases.renew(old, 5)
    assert j.run(run_id).steps["fence:dns@us-east-1"].state == StepState.PENDING
    j.record_steps(new, run_id, [StepRecord("fence:dns@us-east-1", StepState.DONE, attempts=1)])
    assert j.run(run_id).steps["fence:dns@us-east-1"].state == StepState.DONE


def test_racing_takers_get_distinct_outcomes(fresh_sandbox: Sandbox) -> None:
    j = journal(fresh_sandbox)
    results: dict[str, object] = {}
    barrier = threading.Barrier(6)

    def take(name: str) -> None:
        barrier.wait()
        try:
            results[name] = j.acquire(name, 30)
        except LeaseHeldError as exc:
            results[name] = exc

    threads = [threading.Thread(target=take, args=(f"c{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, r in results.items() if not isinstance(r, LeaseHeldError)]
    assert len(winners) == 1
    assert j.holder().owner == winners[0]


def test_run_round_trips_with_its_plan_and_steps(fresh_sandbox: Sandbox) -> None:
    j = journal(fresh_sandbox)
    lease = j.acquire("me", 30)
    plan = example_plan(fresh_sandbox)
    run_id = new_run_id()
    j.create_run(lease, run_id, plan)
    assert j.current_run_id() == run_id
    j.record_steps(
        lease, run_id, [StepRecord(plan.steps[0].id, StepState.FAILED, 1.0, 2.0, 3, "x")]
    )
    run = j.run(run_id)
    assert run.plan.to_dict() == plan.to_dict()
    assert run.steps[plan.steps[0].id] == StepRecord(
        plan.steps[0].id, StepState.FAILED, 1.0, 2.0, 3, "x"
    )
    assert all(r.state == StepState.PENDING for r in list(run.steps.values())[1:])
    j.finish_run(lease, run, RunStatus.COMPLETED)
    assert j.current_run_id() is None
    assert next(r.id for r in j.runs()) == run_id
    assert j.runs()[0].status == RunStatus.COMPLETED


def test_automation_switch(fresh_sandbox: Sandbox) -> None:
    j = journal(fresh_sandbox)
    assert j.automation()["paused"] is False
    j.set_automation(True, "oncall", "maintenance")
    assert j.automation() | {"since": None} == {
        "paused": True,
        "by": "oncall",
        "reason": "maintenance",
        "since": None,
        "version": 1,  # every write one higher: what the next write is conditional on
    }


def test_a_cancelled_transaction_leaves_every_item_as_it_was(fresh_sandbox: Sandbox) -> None:
    """The sandbox's DynamoDB backs up only the items a transaction touches: a failed
    condition must still undo the writes moto applied before it gave up."""
    ddb = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url=fresh_sandbox.manifest.endpoints[GLOBAL]
    )
    table = "scratch-transactions"  # not the control table: MRSC takes no transaction
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    key = {"pk": {"S": "t#kept"}, "sk": {"S": "x"}}
    ddb.put_item(TableName=table, Item={**key, "v": {"N": "1"}})
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": key,
                        "UpdateExpression": "SET v = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": table, "Item": {"pk": {"S": "t#new"}, "sk": {"S": "x"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "t#none"}, "sk": {"S": "x"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert ddb.get_item(TableName=table, Key=key)["Item"]["v"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "t#new"}, "sk": {"S": "x"}})
    ddb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": key,
                    "UpdateExpression": "SET v = :two",
                    "ExpressionAttributeValues": {":two": {"N": "2"}},
                }
            }
        ]
    )
    assert ddb.get_item(TableName=table, Key=key)["Item"]["v"] == {"N": "2"}
