"""SIGINT and SIGTERM end a run cleanly: journalled ``interrupted``, lease released, and the
message names the run and the command that continues it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from controller.controltable.journal import Journal, RunStatus
from sandbox import Sandbox
from tests.kit.paths import REPO

pytestmark = pytest.mark.sandbox


@pytest.mark.parametrize("name", ["TERM", "INT"])
def test_a_signal_mid_run_journals_interrupted_releases_the_lease_and_says_how_to_resume(
    fresh_sandbox: Sandbox, cli, name: str
) -> None:
    box = fresh_sandbox
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox.faults",
            "--kill-after-steps",
            "3",
            "--signal",
            name,
            "--",
            "execute",
            "--to",
            "us-west-2",
            "--yes",
            "--manifest",
            str(box.manifest_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 130, proc.stderr
    journal = Journal(box.clients, box.manifest)
    runs = journal.runs()
    assert len(runs) == 1 and runs[0].status == RunStatus.INTERRUPTED
    run_id = runs[0].id
    assert f"run {run_id}" in proc.stderr and f"failover resume {run_id}" in proc.stderr
    holder = journal.holder()
    assert holder is not None and holder.expires_at <= time.time()  # released
    assert journal.current_run_id() is None
    resumed = cli("resume", run_id, "--manifest", box.manifest_path)
    assert resumed.code == 0, resumed.err
    assert journal.run(run_id).status == RunStatus.COMPLETED
