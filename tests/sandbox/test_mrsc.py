"""The sandbox's control table behaves as multi-Region strong consistency (MRSC) does.

Every control region (us-east-1 and us-west-2, replicas; us-east-2, the witness the example's
application does not use) is a failure domain of its own: a request through one succeeds only
while that region is up and reaches a majority of the three; every read sees the last
acknowledged write; what MRSC refuses (time to live, transactions), the sandbox refuses. Then
the split-brain case: the active region partitioned away.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
import pytest

from controller.aws import Clients
from controller.contract import HOME_AGENT
from controller.controltable import suspects
from controller.controltable.journal import Journal
from controller.controltable.lease import Leases
from controller.controltable.table import LEASE_PK, LEASE_SK, ControlTable
from controller.errors import NoMajorityError
from sandbox import Sandbox
from tests.kit.controller_zygote import Forked
from tests.kit.emulator import controller, plain

#: Its controller processes are forked from the session's zygote.
pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("forked_controllers")]

EAST, WEST, WITNESS, EU = "us-east-1", "us-west-2", "us-east-2", "eu-west-1"


def table_from(box: Sandbox, home: str | None) -> ControlTable:
    """The control table as a controller whose home region is ``home`` reaches it."""
    return ControlTable(Clients(endpoints=box.manifest.endpoints, home=home), box.manifest)


def failover(box: Sandbox, home: str, *args: str) -> subprocess.Popen[str] | Forked:
    """``failover ARGS --manifest M`` as a real process running in region ``home``."""
    return controller(box, *args, env={**os.environ, "FAILOVER_HOME_REGION": home})


def mode_from(box: Sandbox, region: str, home: str | None) -> str | None:
    """``region``'s mode parameter read by a caller in ``home`` (None: it cannot be reached)."""
    agent = f"failover-home/{home}" if home else None
    client = boto3.client(
        "ssm",
        region_name=region,
        endpoint_url=box.manifest.endpoints[region],
        config=botocore.config.Config(
            connect_timeout=1,
            read_timeout=2,
            user_agent_extra=agent,
            retries={"total_max_attempts": 1},
        ),
    )
    try:
        return str(
            client.get_parameter(Name=box.topology.mode_parameter(region))["Parameter"]["Value"]
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return None


def test_every_replica_region_serves_the_table_and_reads_see_the_last_write(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox  # reset: a test before it on this worker may have left a region down
    assert sorted(box.manifest.control.regions) == [EAST, WEST]
    assert WITNESS in box.state.servers  # a region of its own, which the application never uses
    for i in range(5):  # written through one region, read at once through the other
        writer, reader = (EAST, WEST) if i % 2 else (WEST, EAST)
        table_from(box, writer).call(
            "put_item", Item={"pk": {"S": "mrsc-test"}, "sk": {"S": "n"}, "n": {"N": str(i)}}
        )
        assert table_from(box, reader).get("mrsc-test", "n") == {
            "pk": "mrsc-test",
            "sk": "n",
            "n": float(i),
        }
    with pytest.raises(botocore.exceptions.ClientError, match="ResourceNotFound"):
        plain(box, "dynamodb", EU).describe_table(TableName=box.manifest.control.table)


def lease_take(box: Sandbox, home: str) -> tuple[http.client.HTTPConnection, dict[str, str]]:
    """A kept-alive connection to ``home``'s server and the headers of a DynamoDB call from a
    controller there (dummy credentials: the emulator checks no signature)."""
    url = urlsplit(box.manifest.endpoints[home])
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.UpdateItem",
        "User-Agent": f"lease-taker {HOME_AGENT}/{home}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/"
        f"{home}/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
    }
    return http.client.HTTPConnection(url.hostname or "", url.port, timeout=60), headers


def test_racing_lease_takers_through_both_replicas_one_winner_in_each_of_1000_rounds(
    fresh_sandbox: Sandbox,
) -> None:
    """Issue #25's acceptance: 8 takers race for the lease 1,000 times, half through each
    replica region, and each time exactly one wins.

    moto checks a write's condition apart from applying it, on a thread per request: before
    the store served the control table one request at a time, about one round in a hundred had
    two winners. Each taker sends the lease's conditional write (:meth:`Leases.acquire`'s, on
    the token it read) as a thread of this process over a kept-alive connection: botocore
    would cost this process more CPU than the emulator spends.
    """
    box = fresh_sandbox
    rounds, takers = 1000, 8
    table = box.manifest.control.table
    first = Leases(table_from(box, EAST)).acquire("before", 30).token
    won = [[False] * takers for _ in range(rounds)]
    start = threading.Barrier(takers, timeout=60)

    def take(taker: int) -> None:
        connection, headers = lease_take(box, (EAST, WEST)[taker % 2])
        try:
            for n in range(rounds):
                body = json.dumps(
                    {
                        "TableName": table,
                        "Key": {"pk": {"S": LEASE_PK}, "sk": {"S": LEASE_SK}},
                        "UpdateExpression": "SET #o = :o, #t = :t, expires_at = :e",
                        "ConditionExpression": "#t = :old",
                        "ExpressionAttributeNames": {"#t": "token", "#o": "owner"},
                        "ExpressionAttributeValues": {
                            ":o": {"S": f"taker-{taker}"},
                            ":t": {"N": str(first + n + 1)},
                            ":e": {"N": "1e12"},
                            ":old": {"N": str(first + n)},
                        },
                    }
                )
                start.wait()
                connection.request("POST", "/", body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                won[n][taker] = answer.status == 200
                assert won[n][taker] or b"ConditionalCheckFailed" in data, data
        except BaseException:
            start.abort()  # the others stop waiting for this one
            raise
        finally:
            connection.close()

    with ThreadPoolExecutor(takers) as pool:
        for done in [pool.submit(take, t) for t in range(takers)]:
            done.result()
    shared = [(n, row.count(True)) for n, row in enumerate(won) if row.count(True) != 1]
    assert not shared, f"rounds without exactly one winner (round, winners): {shared[:10]}"
    holder = Leases(table_from(box, WEST)).holder()
    assert holder is not None and holder.token == first + rounds
    assert holder.owner == f"taker-{won[-1].index(True)}"


def test_what_mrsc_refuses_the_sandbox_refuses(fresh_sandbox: Sandbox) -> None:
    box = fresh_sandbox  # reset: a test before it on this worker may have left a region down
    table = box.manifest.control.table
    client = plain(box, "dynamodb", EAST)
    with pytest.raises(botocore.exceptions.ClientError, match="time to live"):
        client.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    put = {"Put": {"TableName": table, "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}}}}
    with pytest.raises(botocore.exceptions.ClientError, match="transactions"):
        client.transact_write_items(TransactItems=[put])
    with pytest.raises(botocore.exceptions.ClientError, match="transactions"):
        client.transact_get_items(
            TransactItems=[
                {"Get": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}}}
            ]
        )
    assert table_from(box, EAST).get("a", "b") is None  # the refused put wrote nothing


@pytest.mark.parametrize("lost", [EAST, WITNESS])
def test_losing_one_control_region_loses_nothing(fresh_sandbox: Sandbox, lost: str) -> None:
    box = fresh_sandbox
    leases = Leases(table_from(box, EAST))
    first = leases.acquire("before", 30)
    box.fail(lost, "hang" if lost == WITNESS else "down")
    started = time.monotonic()
    leases.release(first)
    second = Leases(table_from(box, EAST)).acquire("after", 30)
    assert second.token > first.token  # the token never goes back
    assert time.monotonic() - started < 15  # one timeout at most, not one per call


@pytest.fixture
def unsuspected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No control region failed lately, in this process or in a file (a fresh operator's)."""
    monkeypatch.setenv("FAILOVER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(suspects, "_SUSPECT", {})


def first_attempt_ended(table: ControlTable, region: str) -> threading.Event:
    """Set once a request to ``region``'s replica has ended (answered, or timed out)."""
    ended = threading.Event()
    client = table.clients.client("dynamodb", region)
    client.meta.events.register("needs-retry.dynamodb", lambda **_: ended.set())
    return ended


def test_a_read_the_hung_home_replica_holds_is_answered_by_the_next_before_it_times_out(
    fresh_sandbox: Sandbox, unsuspected: None
) -> None:
    """Issue 27, item 4: a run from a controller whose control region hangs (the primary's, on
    the example) paid that replica's 4 s timeout on its first read before it tried the next.
    A read is asked of the next region once the first is slow, and the first answer wins; the
    hung replica is tried last from then on (the lease's write that follows costs nothing)."""
    box = fresh_sandbox
    item = {"pk": {"S": "hedge"}, "sk": {"S": "n"}, "n": {"N": "7"}}
    table_from(box, EAST).call("put_item", Item=item)
    table = table_from(box, EAST)
    assert table.order() == [EAST, WEST]
    ended = first_attempt_ended(table, EAST)
    box.fail(EAST, "hang")
    got = table.get("hedge", "n")
    assert got == {"pk": "hedge", "sk": "n", "n": 7.0}  # WEST's answer: the last write
    assert not ended.is_set(), "answered before the hung replica's request ended"
    assert table.order() == [WEST, EAST]


def test_a_write_the_hung_home_replica_holds_is_not_sent_to_the_next_until_it_ends(
    fresh_sandbox: Sandbox, unsuspected: None
) -> None:
    """A write is never asked of two regions at once: each conditional write is tried in the
    next region only once the last attempt's answer came or was lost, so at most one lands."""
    box = fresh_sandbox
    table = table_from(box, EAST)
    ended = first_attempt_ended(table, EAST)
    box.fail(EAST, "hang")
    table.call("put_item", Item={"pk": {"S": "hedge"}, "sk": {"S": "w"}})
    assert ended.is_set(), "the next region was asked while the first attempt was out"
    assert table_from(box, WEST).get("hedge", "w") == {"pk": "hedge", "sk": "w"}


def test_two_of_three_control_regions_lost_no_lease_nothing_acts_status_says_why(
    fresh_sandbox: Sandbox, cli: Any
) -> None:
    box = fresh_sandbox
    box.fail(EAST, "down")
    box.fail(WITNESS, "hang")
    with pytest.raises(NoMajorityError, match="no majority") as caught:
        Leases(table_from(box, WEST)).acquire("anyone", 30)
    assert f"{WEST} " in str(caught.value) and f"{EAST} unreachable" in str(caught.value)
    proc = failover(box, WEST, "execute", "--to", WEST, "--yes")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode not in (0, 2, 3), err
    assert "no majority" in err, err
    assert mode_from(box, WEST, WEST) == "standby"  # nothing acted
    assert mode_from(box, EU, EU) == "standby"
    status = cli("status", "--json", "--manifest", box.manifest_path)
    control = json.loads(status.out)["control"]
    assert "no majority" in control["error"] and "nothing acts" in control["error"]
    text = cli("status", "--manifest", box.manifest_path).out
    lines = [line for line in text.splitlines() if "no majority" in line]
    assert len(lines) == 1, text  # one line says why
    box.heal(WITNESS)  # one region back: a majority again
    assert Leases(table_from(box, WEST)).acquire("anyone", 30).token >= 1


def test_a_partitioned_region_serves_its_own_callers_and_nobody_else(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    box.fail(EAST, "partition")
    assert mode_from(box, EAST, EAST) == "active"  # its own callers are served
    assert mode_from(box, EAST, WEST) is None  # nobody else reaches it
    assert mode_from(box, EAST, None) is None
    assert mode_from(box, WEST, EAST) is None  # and it reaches nobody
    assert mode_from(box, WEST, WEST) == "standby"
    with pytest.raises(NoMajorityError):
        Leases(table_from(box, EAST)).acquire("inside", 30)
    assert Leases(table_from(box, WEST)).acquire("outside", 30).owner == "outside"
    box.heal(EAST)
    assert mode_from(box, EAST, WEST) == "active"


def test_partitioning_the_active_region_lets_only_a_controller_outside_it_act(
    fresh_sandbox: Sandbox, cli: Any
) -> None:
    """Acceptance: exactly one side acts, owned by a controller outside the partitioned region;
    sampled every 200 ms through the run, never two regions active; the partitioned side takes
    no lease."""
    box = fresh_sandbox
    box.fail(EAST, "partition")
    samples: list[list[str]] = []
    stop = threading.Event()

    def sample() -> None:  # as the rest of the world sees them (a caller in no region)
        while not stop.is_set():
            modes = {r: mode_from(box, r, None) for r in box.topology.regions.all}
            samples.append(sorted(r for r, m in modes.items() if m == "active"))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        inside = failover(box, EAST, "execute", "--to", EU, "--yes", "--json")
        outside = failover(box, WEST, "execute", "--to", WEST, "--yes", "--json")
        _, inside_err = inside.communicate(timeout=120)
        _, outside_err = outside.communicate(timeout=180)
    finally:
        stop.set()
        sampler.join(timeout=10)
    # and once both have ended: the sampler's last look may have begun before the run's last write
    # (a forked controller ends as soon as it exits, with no interpreter to tear down)
    samples.append(
        sorted(r for r in box.topology.regions.all if mode_from(box, r, None) == "active")
    )
    assert inside.returncode != 0 and "no majority" in inside_err, inside_err
    assert outside.returncode == 0, outside_err
    assert len(samples) >= 3
    assert all(len(active) <= 1 for active in samples), samples
    assert samples[-1] == [WEST]
    journal = Journal(Clients(endpoints=box.manifest.endpoints, home=WEST), box.manifest)
    runs = journal.runs()
    assert len(runs) == 1 and runs[0].plan.target == WEST
    assert f":{outside.pid}/" in runs[0].owner  # the one controller that acted is outside
    assert journal.desired(EAST).active == WEST
    assert mode_from(box, EU, EU) == "standby"  # the inside controller changed nothing
    # the partition heals: one reconcile fences the region that was cut off
    box.heal(EAST)
    done = failover(box, WEST, "reconcile")
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert mode_from(box, EAST, EAST) != "active"
    assert [r for r in box.topology.regions.all if mode_from(box, r, None) == "active"] == [WEST]
