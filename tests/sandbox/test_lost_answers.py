"""Two control regions hung: what every verb that writes the control table says is what
``show`` and ``status`` read afterwards.

The control table is served by us-east-1 and us-west-2 (replicas) and us-east-2 (the witness).
Hanging us-west-2 and the witness leaves no majority and keeps the application's primary up. A
request sent into a hung server waits in its socket and is applied when the server resumes: so
after healing, every control-table write a verb sent is also applied again here, late, as a
hung server applies it (:class:`Writes`), and what the verb said must still hold:

- "not written" (exit 1; a 503 ``refused`` from the page): nothing changed;
- "unknown" (exit 4; a 503 ``unknown``): it may have landed, but never over a newer decision;
- done (exit 0): it shows.

Each verb waits its read timeout (4 AWS s) for a region that never answers: these tests run on
the session's scaled sandbox, at k = 4, where that is a wall second (it was 4.5 s a verb, 66 s
for the module's four longest tests on the real clock).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from controller.controltable.items import RUN_MARK
from controller.controltable.journal import Journal, StepState
from controller.controltable.table import LEASE_PK, LEASE_SK, WRITES, ControlTable
from controller.interfaces.serve import Api, StatusServer, deployment_sources
from controller.interfaces.views import read_status
from sandbox import Sandbox
from tests.kit.cli import CliResult
from tests.kit.emulator import plain

pytestmark = pytest.mark.sandbox

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orders" / "topology.yaml"
EAST, WEST, WITNESS, EU = "us-east-1", "us-west-2", "us-east-2", "eu-west-1"
#: Two of the three control regions; the application's primary (us-east-1) stays up.
HUNG = (WEST, WITNESS)
TOKEN = "a-token-for-the-lost-answers-tests"
#: The page's status deadline: an action waits for the control table a second more.
PAGE_DEADLINE = 4.0


class Writes:
    """Every control-table write sent in this process, and a way to apply them all again late.

    :meth:`hang_before` hangs regions just before the next write (that matches) is sent: after
    the verb's reads, so that its write, not a read, is what waits in a hung socket.
    """

    def __init__(self, box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        self.box = box
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.reads: list[dict[str, Any]] = []
        self._hang: tuple[tuple[str, ...], Callable[[str, dict[str, Any]], bool]] | None = None
        original = ControlTable.call

        def call(table: ControlTable, op: str, **kwargs: Any) -> Any:
            if op in WRITES:
                if self._hang is not None and self._hang[1](op, kwargs):
                    regions, self._hang = self._hang[0], None
                    for region in regions:
                        box.fail(region, "hang")
                self.sent.append((op, kwargs))
            else:
                self.reads.append(kwargs)
            return original(table, op, **kwargs)

        monkeypatch.setattr(ControlTable, "call", call)

    def hang_before(
        self,
        regions: tuple[str, ...] = HUNG,
        when: Callable[[str, dict[str, Any]], bool] = lambda op, kwargs: True,
    ) -> None:
        """Hang ``regions`` just before the next write for which ``when(op, kwargs)`` holds."""
        self._hang = (regions, when)

    def land_late(self) -> None:
        """Apply every write sent again, through a control region with a majority, as a hung
        server applies the requests in its socket when it resumes: only a condition that no
        longer holds keeps a late one from landing."""
        client = plain(self.box, "dynamodb", EAST)
        for op, kwargs in self.sent:
            try:
                getattr(client, op)(TableName=self.box.manifest.control.table, **kwargs)
            except botocore.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise


@pytest.fixture
def fresh_sandbox(fresh_scaled_sandbox: Sandbox) -> Sandbox:
    """The session's scaled sandbox (k = ``SCALED_K``), reset, this process on its clock: each
    verb here waits a timeout of 4 AWS s for a hung region, a wall second there."""
    return fresh_scaled_sandbox


@pytest.fixture
def writes(fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Writes:
    return Writes(fresh_sandbox, monkeypatch)


def verbs(cli: Callable[..., CliResult], box: Sandbox) -> Callable[..., CliResult]:
    """``failover ARGS --manifest M --spec S`` in this process."""
    return lambda *args: cli(*args, "--manifest", box.manifest_path, "--spec", EXAMPLE)


def shown(run: Callable[..., CliResult]) -> dict[str, Any]:
    """What ``automation show``, ``status`` and ``runs`` read: the switch, the desired state,
    the lease and the runs."""
    automation = run("automation", "show", "--json")
    status = run("status", "--json")
    runs = run("runs", "--json")
    assert automation.code == status.code == runs.code == 0, automation.err + status.err
    control = json.loads(status.out)["control"]
    assert "error" not in control, control
    return {
        "automation": json.loads(automation.out),
        "desired": {k: control[k] for k in ("active", "epoch", "run_id")},
        "lease": control["lease"],
        "runs": [(r["id"], r["status"]) for r in json.loads(runs.out)["runs"]],
        "run_in_progress": json.loads(status.out)["run_in_progress"],
    }


def page_action(box: Sandbox, what: str) -> tuple[int, dict[str, Any]]:
    """``POST /api/automation/<what>`` on a status page of ``box``, as the page's button does."""
    sources = deployment_sources(box.topology, box.manifest, box.clients, deadline=PAGE_DEADLINE)
    with StatusServer(Api(sources, token=TOKEN)) as server:
        request = urllib.request.Request(  # noqa: S310 - loopback
            server.url + f"api/automation/{what}",
            data=b'{"reason": "from the test"}',
            method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            # far longer than the page may take: a hang here is the failure this test is for
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                return int(answer.status), json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), json.loads(exc.read())


def drift(box: Sandbox) -> None:
    """Something for the reconciler to fix: eu-west-1's mode says active, its control table
    names us-east-1."""
    plain(box, "ssm", EU).put_parameter(
        Name=box.topology.mode_parameter(EU), Value="active", Overwrite=True
    )


def heal(box: Sandbox) -> None:
    for region in HUNG:
        box.heal(region)


def one_line(result: CliResult) -> str:
    """The one error line a verb printed (the log's warnings go to stderr too)."""
    lines = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.err
    return lines[0]


def test_two_control_regions_hung_every_verb_that_writes_says_not_written_and_nothing_lands(
    fresh_sandbox: Sandbox, writes: Writes, cli: Callable[..., CliResult]
) -> None:
    """Hung before the verbs start: each is refused before it sends a write (its first read
    finds no majority), says so, and after the regions heal nothing it sent lands."""
    box = fresh_sandbox
    run = verbs(cli, box)
    drift(box)
    before = shown(run)
    for region in HUNG:
        box.fail(region, "hang")
    said = {
        "pause": run("automation", "pause", "--reason", "hung"),
        "resume": run("automation", "resume"),
        "execute": run("execute", "--to", EU, "--yes"),
        "reconcile": run("reconcile"),
    }
    page = page_action(box, "pause")
    heal(box)
    writes.land_late()
    assert shown(run) == before  # what every verb said: nothing was written
    for verb, result in said.items():
        assert result.code == 1, (verb, result.err)
        assert "no majority" in one_line(result), verb
    assert "not written" in one_line(said["pause"]) and "not written" in one_line(said["resume"])
    assert page[0] == 503 and page[1]["outcome"] == "refused", page
    assert "no majority" in page[1]["error"]


def test_a_pause_whose_answer_is_lost_says_unknown_and_cannot_land_over_a_later_resume(
    fresh_sandbox: Sandbox, writes: Writes, cli: Callable[..., CliResult]
) -> None:
    box = fresh_sandbox
    run = verbs(cli, box)
    writes.hang_before()  # after the pause reads the switch, before it writes it
    paused = run("automation", "pause", "--reason", "lost")
    assert paused.code == 4, paused.err
    line = one_line(paused)
    assert "may still be applied" in line and "failover automation show" in line
    box.heal(WITNESS)  # us-east-1 and the witness: a majority again; us-west-2 still hung
    resumed = run("automation", "resume")
    assert resumed.code == 0, resumed.err
    box.heal(WEST)  # the pause waiting in its socket is applied now ...
    writes.land_late()  # ... and every copy of it once more
    after = shown(run)["automation"]
    assert after["paused"] is False  # the later resume holds
    assert after["version"] == 1  # one write landed: the resume's
    assert len([w for w in writes.sent if w[0] == "put_item"]) >= 2


def test_a_reconcile_and_a_page_action_whose_writes_are_lost_say_unknown_and_only_that_lands(
    fresh_sandbox: Sandbox, writes: Writes, cli: Callable[..., CliResult]
) -> None:
    """The page's pause and a reconcile, each with the regions hung between its reads and its
    first write: each says unknown and names where to look; what lands is the write it named
    (the switch flipped, the lease taken), nothing more (no fix acted, no run, no new active
    region)."""
    box = fresh_sandbox
    run = verbs(cli, box)
    drift(box)
    before = shown(run)
    writes.hang_before()
    page = page_action(box, "pause")
    assert page[0] == 503 and page[1]["outcome"] == "unknown", page
    assert "may still be applied" in page[1]["error"]
    heal(box)
    writes.hang_before()
    reconciled = run("reconcile")
    assert reconciled.code == 4, reconciled.err
    line = one_line(reconciled)
    assert "taking the lease" in line and "failover status" in line, line
    heal(box)
    writes.land_late()
    after = shown(run)
    assert after["desired"] == before["desired"] and after["runs"] == []
    assert after["automation"]["paused"] is True  # the page said it may land: it did
    assert after["lease"] is not None and after["lease"]["token"] == 1  # what reconcile named
    mode = plain(box, "ssm", EU).get_parameter(Name=box.topology.mode_parameter(EU))
    assert mode["Parameter"]["Value"] == "active"  # its fix did not act: no lease, no action


def test_an_execute_whose_desired_state_write_is_lost_says_unknown_and_resume_settles_it(
    fresh_sandbox: Sandbox, writes: Writes, cli: Callable[..., CliResult]
) -> None:
    """The regions hang just before the run names its target the desired region: the run
    says unknown (no step acted) and names the run; once the regions heal, status shows what
    landed and ``failover resume`` finishes the run (or would end it, had it not landed)."""
    box = fresh_sandbox
    run = verbs(cli, box)
    writes.hang_before(when=lambda op, kw: "#a" in kw.get("ExpressionAttributeNames", {}))
    executed = run("execute", "--to", EU, "--yes")
    assert executed.code == 4, executed.err
    line = one_line(executed)
    assert f"making {EU} the desired region" in line and "no step acted" in line, line
    run_id = line.split("run ", 1)[1].split(",", 1)[0]
    assert f"failover resume {run_id}" in line
    heal(box)
    writes.land_late()
    now = shown(run)
    assert now["run_in_progress"] == run_id  # not journalled failed: it may go on
    assert now["desired"]["active"] in (EAST, EU)
    resumed = run("resume", run_id)
    assert resumed.code == (0 if now["desired"]["active"] == EU else 3), resumed.err
    final = shown(run)
    assert final["run_in_progress"] is None
    assert final["desired"]["active"] == now["desired"]["active"]


def test_status_timeout_bounds_the_whole_read_reads_the_control_table_once_and_says_how_long(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the session's sandbox, on the real clock: the wall is what the bound is about."""
    box = sandbox
    box.reset()
    writes = Writes(box, monkeypatch)
    for region in HUNG:
        box.fail(region, "hang")
    deadline = 2.0
    started = time.monotonic()
    view = read_status(box.topology, box.manifest, box.clients, deadline=deadline)
    took = time.monotonic() - started
    assert abs(took - view.report.elapsed) < 0.25  # the duration it prints is the true one
    # bounded by the deadline (before: 6 to 10 s with --timeout 1, the table read twice)
    assert view.report.elapsed < deadline + 2.0, view.report.elapsed
    assert "error" in view.control and view.run_in_progress is None
    # read once: one request for the lease item and the run in progress, neither read again
    assert len(writes.reads) == 1, writes.reads
    keys = writes.reads[0]["RequestItems"][box.manifest.control.table]["Keys"]
    assert sorted((k["pk"]["S"], k["sk"]["S"]) for k in keys) == sorted(
        [(LEASE_PK, LEASE_SK), RUN_MARK]
    )


def test_execute_to_the_region_a_run_is_moving_to_says_the_run_is_in_progress(
    fresh_sandbox: Sandbox, cli: Callable[..., CliResult]
) -> None:
    """A watcher's run to us-west-2 is under way (lease held, desired state written): asking for
    the same failover says so, not that --from and --to are both us-west-2."""
    from controller.controltable.journal import new_run_id
    from controller.plan import graph as graphs
    from controller.plan.build import build_plan

    box = fresh_sandbox
    journal = Journal(box.clients, box.manifest)
    lease = journal.acquire("watcher@us-west-2/req-1", 60)
    plan = build_plan(box.topology, graphs.build(box.topology), target=WEST, source=EAST)
    running = journal.create_run(lease, new_run_id(), plan, epoch=1)
    journal.set_desired(lease, journal.desired(EAST), WEST, running.id)
    result = verbs(cli, box)("execute", "--to", WEST, "--yes")
    assert result.code == 3, result.err
    line = one_line(result)
    assert f"run {running.id}" in line and "in progress" in line, line
    assert "watcher@us-west-2/req-1" in line and "--from" not in line
    assert [r.id for r in journal.runs()] == [running.id]  # nothing changed
    assert journal.desired(EAST).epoch == 1
    assert all(s.state is StepState.PENDING for s in journal.run(running.id).steps.values())


# -- every writer: a copy of an old write, landing after a newer one, does not land ----------


def test_a_late_journal_write_of_the_same_holder_cannot_undo_its_newer_one(
    fresh_sandbox: Sandbox, writes: Writes
) -> None:
    """A step journalled ``running`` through one region whose answer was lost, then ``done``
    through the next: the first, landing late, must not put the step back to running."""
    from controller.controltable.journal import StepRecord, new_run_id
    from controller.plan import graph as graphs
    from controller.plan.build import build_plan

    box = fresh_sandbox
    journal = Journal(box.clients, box.manifest)
    lease = journal.acquire("operator@test", 60)
    plan = build_plan(box.topology, graphs.build(box.topology), target=EU, source=EAST)
    run_id = new_run_id()
    journal.create_run(lease, run_id, plan)
    step = plan.steps[0].id
    writes.sent.clear()
    journal.record_steps(lease, run_id, [StepRecord(step, StepState.RUNNING, started=1.0)])
    journal.record_steps(lease, run_id, [StepRecord(step, StepState.DONE, 1.0, 2.0, 1)])
    older = writes.sent[:1]
    assert json.dumps(older).count('"running"') == 1
    writes.sent[:] = older
    writes.land_late()
    assert journal.run(run_id).steps[step].state is StepState.DONE


def test_a_late_copy_of_a_runs_mark_cannot_bring_back_a_run_that_ended(
    fresh_sandbox: Sandbox, writes: Writes
) -> None:
    """A run's in-progress mark, sent to a hung region and answered by the next, lands when that
    region resumes, after the run ended: the run must not read as in progress again, or the next
    reconcile takes over a run that ended (seen: a reconcile after a hung primary healed)."""
    from controller.controltable.journal import RunStatus, new_run_id
    from controller.plan import graph as graphs
    from controller.plan.build import build_plan

    box = fresh_sandbox
    journal = Journal(box.clients, box.manifest)
    lease = journal.acquire("operator@test", 60)
    plan = build_plan(box.topology, graphs.build(box.topology), target=EU, source=EAST)
    writes.sent.clear()
    run = journal.create_run(lease, new_run_id(), plan, epoch=1)
    mark = [w for w in writes.sent if w[1].get("Item", {}).get("pk") == {"S": "current"}]
    journal.finish_run(lease, run, RunStatus.COMPLETED)
    assert journal.current_run_id() is None
    assert len(mark) == 1
    writes.sent[:] = mark  # only the mark was held: the run's end went through
    writes.land_late()
    assert journal.current_run_id() is None
    assert journal.runs()[0].status is RunStatus.COMPLETED


def test_a_late_lease_renewal_cannot_undo_a_release(fresh_sandbox: Sandbox, writes: Writes) -> None:
    journal = Journal(fresh_sandbox.clients, fresh_sandbox.manifest)
    lease = journal.acquire("operator@test", 60)
    writes.sent.clear()
    journal.release(journal.leases.renew(lease, 60))
    writes.sent[:] = writes.sent[:1]  # the renewal, landing after the release
    writes.land_late()
    holder = journal.holder()
    assert holder is not None and holder.expires_at == 0  # still released: others may take it


def test_a_late_watcher_state_cannot_put_an_older_hysteresis_over_a_newer_one(
    fresh_sandbox: Sandbox, writes: Writes
) -> None:
    from controller.controltable.watchstate import WatchState, WatchStates

    states = WatchStates(ControlTable(fresh_sandbox.clients, fresh_sandbox.manifest))
    states.write(WatchState(EU, consecutive_bad=1, evaluations=5, owner="watcher@eu-west-1/a"))
    states.write(WatchState(EU, consecutive_bad=2, evaluations=6, owner="watcher@eu-west-1/a"))
    writes.sent[:] = writes.sent[:1]  # evaluation 5, landing after 6
    writes.land_late()
    assert (states.read(EU).evaluations, states.read(EU).consecutive_bad) == (6, 2)
