"""Every runbook's runnable commands, run in order against the sandbox, as an operator would.

How a runbook runs (the scheme ``runbooks/README.md`` documents): the lines of every
```` ```sh runnable ```` block of one page, in order, in one ``bash`` process, in a fresh empty
directory, with the venv's ``bin`` first on ``PATH`` and no AWS credentials at all. Each line is
one command; it must exit with its ``# expect-exit: N`` (default 0) and its output (stdout and
stderr) must contain every ``# expect-out: TEXT``. The first line that does not stops the page.
Variables a line sets are seen by the lines after it. Whatever happens, ``failover sandbox down``
runs in that directory afterwards. Each page is its own test, with its own sandbox on its own
free ports, so pytest-xdist spreads the pages over its workers (a page takes 20-70 s).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kit.cli import CliResult
from tests.kit.paths import REPO

RUNBOOKS = sorted((REPO / "runbooks").glob("*.md"))
PAGES = [p for p in RUNBOOKS if p.name != "README.md"]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
RUNNABLE = "sh runnable"
MARK = re.compile(r"\s+#\s*expect-")
#: ``failover`` and the words after it that name a verb (``sandbox fail``, ``automation pause``).
VERB = re.compile(r"(?:^|[\s`($|;&])failover((?:[ \t]+[a-z][a-z-]*){1,2})")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]*)")
#: Longest a runbook may take before it counts as hung (a page takes 20-70 s on the sandbox).
PAGE_TIMEOUT = 240
#: Environment variables that would let a runbook lean on something the reader may not have.
SCRUBBED = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "FAILOVER_SPEC",
    "VIRTUAL_ENV",
)


#: What running a page found wrong (empty: nothing), and the seconds each line took.
Outcome = tuple[list[str], str]


@dataclass(frozen=True)
class Line:
    """One command of a runbook, with what it must do."""

    number: int
    command: str
    exit: int = 0
    out: tuple[str, ...] = ()


def blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block of a markdown ``text``: (info string, body), in order."""
    return [(m.group("info").strip(), m.group("body")) for m in FENCE.finditer(text)]


def parse_line(raw: str, number: int) -> Line:
    """One runnable line: the command, and its trailing ``# expect-...`` markers."""
    command, *marks = MARK.split(raw.rstrip())
    exit_code, outs = 0, []
    for mark in marks:
        kind, _, value = mark.partition(":")
        if kind == "exit":
            exit_code = int(value)
        elif kind == "out":
            outs.append(value.strip())
        else:
            raise ValueError(f"unknown marker 'expect-{kind}' in {raw!r}")
    return Line(number, command.strip(), exit_code, tuple(outs))


def lines(page: Path) -> list[Line]:
    """The runnable lines of ``page``, in order; blank lines and comment lines are skipped."""
    raw = [
        r
        for info, body in blocks(page.read_text(encoding="utf-8"))
        if info == RUNNABLE
        for r in body.splitlines()
        if r.strip() and not r.lstrip().startswith("#")
    ]
    return [parse_line(r, n) for n, r in enumerate(raw, 1)]


def script(steps: list[Line], logs: Path) -> str:
    """A bash script running ``steps`` in order; it stops at the first not doing as written.

    Each line runs in the script's own shell (so ``RUN=$(...)`` is seen later); its output goes to
    ``logs/N.out``, its exit code and duration to ``logs/results`` as ``N rc seconds``.
    """
    body = ["set -u", f"LOGS={shlex.quote(str(logs))}"]
    for step in steps:
        n = step.number
        body.append(f'SECONDS=0; {{ {step.command}\n}} >"$LOGS/{n}.out" 2>&1 </dev/null; rc=$?')
        body.append(f'echo {n} $rc $SECONDS >>"$LOGS/results"')
        body.append(f"[ $rc -eq {step.exit} ] || exit 101")
        for text in step.out:
            body.append(f'grep -qF -- {shlex.quote(text)} "$LOGS/{n}.out" || exit 102')
    return "\n".join(body) + "\n"


def page_env() -> dict[str, str]:
    """The environment a reader has: our venv on PATH, no AWS credentials, wide plain output."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        COLUMNS="200",
        NO_COLOR="1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        # The pages' sandbox runs no replicator, so no table's lag is ever measured: its
        # reader accepts an unknown lag, as runbooks/README.md tells (set here, not
        # inherited from whichever test ran first on this worker).
        FAILOVER_ACCEPT_UNKNOWN_LAG="1",
        # A page is a procedure, not a timing: its sandbox runs on the real clock, where this
        # machine's CPU under a loaded test run is not counted ten times as AWS's time.
        FAILOVER_SANDBOX_TIME_SCALE="1",
    )
    return env


def verdict(steps: list[Line], logs: Path) -> list[str]:
    """What went wrong, line by line (empty when every line did as written)."""
    results = {}
    if (logs / "results").exists():
        for row in (logs / "results").read_text().splitlines():
            n, rc, seconds = (int(x) for x in row.split())
            results[n] = (rc, seconds)
    for step in steps:
        if step.number not in results:
            return [f"line {step.number} never ran: {step.command}"]
        rc, _ = results[step.number]
        out = (logs / f"{step.number}.out").read_text(errors="replace")
        where = f"line {step.number}: {step.command}"
        if rc != step.exit:
            return [f"{where}: exit {rc}, the runbook says {step.exit}", out[-3000:]]
        missing = [text for text in step.out if text not in out]
        if missing:
            return [f"{where}: output lacks {missing!r}", out[-3000:]]
    return []


def run_page(page: Path, where: Path) -> Outcome:
    """Run ``page`` in the directory ``where``; (problems, timings) and the sandbox always down."""
    steps = lines(page)
    logs = where.parent / f"{where.name}-logs"
    logs.mkdir()
    env = page_env()
    proc = subprocess.Popen(
        ["bash", "-c", script(steps, logs)],
        cwd=where,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    problems: list[str] = []
    try:
        _, err = proc.communicate(timeout=PAGE_TIMEOUT)
        if err.strip() and proc.returncode not in (0, 101, 102):
            problems.append(f"bash: {err[-2000:]}")
        if proc.returncode == 0 and (where / ".failover" / "manifest.json").exists():
            problems.append(f"{page.name} leaves its sandbox running: end with sandbox down")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        problems.append(f"{page.name} took longer than {PAGE_TIMEOUT} s")
    finally:
        subprocess.run(
            ["failover", "sandbox", "down"],
            cwd=where,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    timings = ""
    if (logs / "results").exists():
        timings = ", ".join(
            f"{r.split()[0]}:{r.split()[2]}s" for r in (logs / "results").read_text().splitlines()
        )
    return verdict(steps, logs) + problems, timings


@pytest.mark.slow
@pytest.mark.independent  # its own sandbox and directory: any worker may run it
@pytest.mark.timeout(PAGE_TIMEOUT + 90)  # the page's own timeout, then its sandbox's clean-up
@pytest.mark.parametrize("page", RUNBOOKS, ids=lambda p: p.stem)
def test_runbook_runs_as_written(page: Path, tmp_path: Path) -> None:
    where = tmp_path / "operator"
    where.mkdir()
    problems, timings = run_page(page, where)
    assert not problems, f"{page.name} (seconds per line: {timings})\n" + "\n".join(problems)


@pytest.mark.parametrize("page", RUNBOOKS, ids=lambda p: p.stem)
def test_runbook_has_runnable_blocks_and_only_known_markers(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    infos = [info for info, _ in blocks(text)]
    assert RUNNABLE in infos, f"{page.name} has no '{RUNNABLE}' block"
    assert set(infos) <= {RUNNABLE, "text"}, (
        f"{page.name}: a block is neither '{RUNNABLE}' nor 'text': {sorted(set(infos))}"
    )
    for step in lines(page):
        assert "expect-" not in step.command, f"{page.name}: unreadable marker in {step.command!r}"
        acts = re.search(r"failover (execute|failback)\b", step.command)
        if acts and "--dry-run" not in step.command:
            assert "--yes" in step.command, f"{page.name}: {step.command!r} would ask: add --yes"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_runbook_starts_and_stops_its_own_sandbox(page: Path) -> None:
    steps = lines(page)
    assert steps[0].command.startswith("failover sandbox up"), (
        f"{page.name} must begin with a sandbox"
    )
    assert steps[-1].command == "failover sandbox down", f"{page.name} must end by stopping it"
    assert sum(s.command.startswith("failover sandbox up") for s in steps) == 1


def code_snippets(text: str) -> list[str]:
    """Every line of every fenced block, and every inline code span of the prose."""
    snippets = [line for _, body in blocks(text) for line in body.splitlines()]
    prose = FENCE.sub("", text)
    return snippets + re.findall(r"`([^`\n]+)`", prose)


def test_every_verb_and_option_a_runbook_names_exists(cli: Callable[..., CliResult]) -> None:
    """``failover VERB ... --opt`` in any code of a page (prose too) is a real verb and option."""
    used: dict[tuple[str, ...], set[str]] = {}
    for page in RUNBOOKS:
        for snippet in code_snippets(page.read_text(encoding="utf-8")):
            snippet = re.sub(r"\"[^\"]*\"|'[^']*'", "''", snippet)  # no verbs inside quotes
            for match in VERB.finditer(snippet):
                words = tuple(match.group(1).split())
                rest = re.split(r"[|)#;]", snippet[match.end() :])[0]
                used.setdefault(words, set()).update(OPTION.findall(rest))
    assert len(used) >= 12, sorted(used)
    helps: dict[tuple[str, ...], str] = {}
    for words in sorted(used):
        result = cli(*words, "--help")
        assert result.code == 0, f"'failover {' '.join(words)}' is not a verb: {result.err}"
        helps[words] = result.out
    for words, options in sorted(used.items()):
        for option in sorted(options - {"--help"}):
            assert option in helps[words], f"'failover {' '.join(words)}' has no option {option}"
    assert cli("no-such-verb", "--help").code != 0
    assert cli("sandbox", "no-such-verb", "--help").code != 0


def test_the_parser_reads_markers() -> None:
    step = parse_line("failover runs  # expect-exit: 3  # expect-out: held  by # expect-out: x", 7)
    assert step == Line(7, "failover runs", 3, ("held  by", "x"))
    with pytest.raises(ValueError, match="expect-exits"):
        parse_line("failover runs  # expect-exits: 3", 1)
    assert parse_line("RUN=$(failover runs --json | python3 -c 'x')", 1).exit == 0
    kill = next(
        s
        for s in lines(REPO / "runbooks" / "controller-stuck.md")
        if "--kill-after-steps" in s.command
    )
    assert kill.exit == 137
