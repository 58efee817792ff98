"""``failover demo``'s terminal: one line per phase, the page's address, log records in a file."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from controller.interfaces.cli import demo_cmds
from controller.interfaces.cli.logs import to_file


def test_each_phase_leaves_one_line_with_its_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(demo_cmds, "err_console", Console(file=out, width=120))
    with demo_cmds._Phases(quiet=False) as phases:
        phases.page("http://127.0.0.1:4321/")
        for phase, counts in (
            ("sandbox up", {}),
            ("steady load", {"ok": 5}),
            ("steady load", {"ok": 9}),
            ("failing over", {"ok": 9}),
            ("after the failover", {"ok": 12, "failed": 0}),
        ):
            phases.show(phase, 0.5, 1.0, counts)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert lines[0].startswith("status page: http://127.0.0.1:4321/")
    done = [line.split()[1:3] for line in lines[1:]]
    assert [d[0] for d in done] == ["sandbox", "steady", "failing", "after"]
    assert lines[2].rstrip().endswith("ok=9")  # the phase's last counts, once


def test_log_records_go_to_the_file_while_the_demo_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    path = tmp_path / "state" / "demo.log"
    with to_file(path):
        logging.getLogger("controller.health.reads").warning("us-east-1: Read timeout")
    assert root.handlers == before
    assert path.stat().st_mode & 0o777 == 0o600
    assert "WARNING controller.health.reads: us-east-1: Read timeout" in path.read_text()
    assert "Read timeout" not in capsys.readouterr().err


def test_the_report_shows_the_rpo_of_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    out = io.StringIO()
    monkeypatch.setattr(demo_cmds, "console", Console(file=out, width=200))
    lag = {"table": "orders-table", "lag_seconds": None, "read_at": 10.0, "as_of": None}
    report = {
        "title": "t",
        "requests": {},
        "time_to_detect_seconds": 1.0,
        "time_to_shift_seconds": 2.0,
        "failed_share_during_outage": 0.0,
        "writes_acknowledged": 40,
        "new_primary": "us-west-2",
        "writes_found_in_new_primary": 38,
        "lost_writes": 2,
        "rpo": {
            "tables_at_switch": [lag | {"error": "us-east-1 unreachable: ReadTimeoutError"}],
            "writes_missing_from_new_primary": 2,
            "window_seconds": 1.5,
        },
    }
    demo_cmds.render(SimpleNamespace(report=report, json_path="j", png_path="p"))
    assert (
        "RPO: lag at the switch: orders-table unknown (us-east-1 unreachable: ReadTimeoutError)"
        "   acknowledged writes missing from the new primary: 2 (window 1.5 s)"
    ) in out.getvalue()


def test_a_watcher_error_line_without_its_epoch_is_read_at_its_time(tmp_path: Path) -> None:
    """A partitioned region's watcher that cannot read its deployment logs an evaluation line
    with its time and no ``ts``: the demo crashed on it (``KeyError: 'ts'``) in partition mode."""
    import json

    from sandbox import watchers

    path = watchers.log_path(tmp_path, "us-east-1")
    path.parent.mkdir(parents=True)
    lines = [
        {"message": "evaluation", "action": "error", "time": "2026-12-03T15:07:40Z"},
        {"message": "evaluation", "action": "none", "time": "2026-12-03T15:07:50Z", "ts": 5.0},
        {"message": "evaluation", "action": "error", "time": "not a time"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    got = watchers.decisions(tmp_path, ["us-east-1"])
    assert [d["ts"] for d in got] == [1796310460.0, 5.0]
