"""Every runbook's runnable commands, run in order against the sandbox, as an operator would."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

RUNBOOKS = sorted((REPO / "runbooks").glob("*.md"))
PAGES = [p for p in RUNBOOKS if p.name != "README.md"]
FENCE = re.compile(r"^```sh runnable\n(.*?)^```", re.MULTILINE | re.DOTALL)
MARK = re.compile(r"\s+#\s*expect-(exit|out):\s*(.*)$")


@dataclass(frozen=True)
class Line:
    """One command of a runbook, with what it must do."""

    command: str
    exit: int = 0
    out: str = ""


def lines(page: Path) -> list[Line]:
    """The runnable lines of ``page``, in order, with their expectations."""
    found = []
    for block in FENCE.findall(page.read_text(encoding="utf-8")):
        for raw in block.splitlines():
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            exit_code, out, command = 0, "", raw
            while (mark := MARK.search(command)) is not None:
                if mark.group(1) == "exit":
                    exit_code = int(mark.group(2))
                else:
                    out = mark.group(2).strip()
                command = command[:mark.start()]
            found.append(Line(command.strip(), exit_code, out))
    return found


def script(steps: list[Line]) -> str:
    """A bash script that runs each line and stops at the first that does not do as written."""
    body = ["set -u"]
    for n, step in enumerate(steps, 1):
        where = shlex.quote(f"line {n}: {step.command}")
        if step.out:
            body.append(f"out=$({step.command} 2>&1); rc=$?; printf '%s\\n' \"$out\"")
            body.append(f"printf '%s' \"$out\" | grep -qF -- {shlex.quote(step.out)} || "
                        f"{{ echo FAILED {where}: output lacks {shlex.quote(step.out)}; exit 1; }}")
        else:
            body.append(f"{step.command}; rc=$?")
        body.append(f"[ $rc -eq {step.exit} ] || {{ echo FAILED {where}: exit $rc, "
                    f"expected {step.exit}; exit 1; }}")
    return "\n".join(body) + "\n"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_runbook_runs_as_written(page: Path, tmp_path: Path, sandbox_env: None) -> None:
    steps = lines(page)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("FAILOVER_SPEC", None)
    try:
        proc = subprocess.run(["bash", "-c", script(steps)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
    finally:
        subprocess.run(["failover", "sandbox", "down"], cwd=tmp_path, env=env,
                       capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "FAILED" not in proc.stdout


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_runbook_has_runnable_commands_that_start_and_stop_a_sandbox(page: Path) -> None:
    steps = lines(page)
    assert steps, f"{page.name} has no runnable block"
    assert steps[0].command == "failover sandbox up"
    assert steps[-1].command == "failover sandbox down"


def test_every_verb_used_exists(tmp_path: Path) -> None:
    verbs = {tuple(s.command.split()[1:3]) for p in PAGES for s in lines(p)
             if s.command.startswith("failover ")} | {
        tuple(s.command.split("failover ", 1)[1].split()[:2]) for p in PAGES for s in lines(p)
        if " failover " in f" {s.command}" and not s.command.startswith("failover ")}
    assert len(verbs) >= 10
    for verb in verbs:
        words = [w for w in verb if not w.startswith("-") and not w.startswith("$")
                 and not w.startswith('"')]
        proc = subprocess.run([sys.executable, "-m", "controller", words[0], "--help"],
                              capture_output=True, text=True, cwd=REPO, check=False)
        assert proc.returncode == 0, (verb, proc.stderr)


def test_the_parser_reads_expectations() -> None:
    page = REPO / "runbooks" / "controller-stuck.md"
    steps = lines(page)
    kill = next(s for s in steps if "FAULT_KILL" in s.command)
    assert kill.exit == 137
    assert any(s.out == "completed" for s in steps)
