"""Every bench in ``bench/`` runs to its figures, in its quick mode, as its own process.

A bench nobody runs stops running: ``bench/execute.py`` stopped at the replication-lag precheck
once that precheck learnt to refuse an unknown lag, and nobody saw (issue #27). Each bench runs
here as a user runs it (``python bench/NAME.py --quick``, from the checkout, with no AWS
settings of the caller's); what it measures is not asserted, only that it ends well and prints
its figures and the ratio it is judged by. A new bench is found by its file: it needs a quick
mode to pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import forkserver
from tests.kit.paths import cache_sharing
from tests.sandbox.conftest import UNSET_ENV

REPO = Path(__file__).resolve().parents[2]
BENCHES = sorted((REPO / "bench").glob("*.py"))
#: Settings of the caller's that a bench must not depend on, nor be steered by.
FOREIGN = re.compile(r"^(AWS_|FAILOVER_)")


def clean_env(cache: Path) -> dict[str, str]:
    """The caller's environment without its AWS and failover settings, with dummy credentials
    (the emulator takes any; a bench sets its own when none is given) and ``cache`` for the
    controller's cache (a user has one; a fresh machine's would make each bench deploy). The
    session's forkserver stays: a bench's sandbox forks its launcher from it, with moto built
    once for the session (as a runbook's does), and runs the same servers."""
    env = {k: v for k, v in os.environ.items() if not FOREIGN.match(k) and k not in UNSET_ENV}
    if forkserver.ENV in os.environ:
        env[forkserver.ENV] = os.environ[forkserver.ENV]
    return env | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "FAILOVER_CACHE_DIR": str(cache),
    }


def test_the_benches_are_found() -> None:
    assert {b.name for b in BENCHES} >= {"execute.py", "detect.py", "plan_scaling.py", "cost.py"}


@pytest.mark.parametrize("bench", BENCHES, ids=lambda path: path.stem)
def test_every_bench_runs_to_its_figures_in_its_quick_mode(
    bench: Path, tmp_path: Path, shared_stacks: Path
) -> None:
    done = subprocess.run(
        [sys.executable, str(bench.relative_to(REPO)), "--quick"],
        cwd=REPO,
        env=clean_env(cache_sharing(tmp_path / "cache", shared_stacks)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{bench.name} --quick: exit {done.returncode}\n{done.stderr}"
    assert re.search(r"ratio", done.stdout), f"{bench.name} printed no ratio:\n{done.stdout}"
