"""``failover demo`` refuses what it cannot do before anything starts; its report is private.

The sandbox is replaced by a stand-in that records being started: a refused option must leave
it unstarted, with no state folder, no log file and no page.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import report as reports
from sandbox.lifecycle import Sandbox
from sandbox.loadgen import Sample
from tests.kit.cli import CliResult
from tests.kit.paths import EXAMPLE

#: The example's regions; us-east-2 (its control table's witness) and global are not.
REGIONS = "us-east-1, us-west-2, eu-west-1"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """What tried to start a sandbox (nothing may)."""
    calls: list[Any] = []

    def up(cls: type[Sandbox], *args: Any, **kwargs: Any) -> Sandbox:
        calls.append(args)
        raise AssertionError("the demo started a sandbox")

    monkeypatch.setattr(Sandbox, "up", classmethod(up))
    yield calls


@pytest.mark.parametrize(
    ("option", "said"),
    [
        (("--replication-lag", "-1"), "--replication-lag -1: must be seconds of asynchronous"),
        (("--replication-lag", "nan"), "--replication-lag nan: must be"),
        (("--warmup", "-5"), "--warmup -5: must be seconds of load before the outage"),
        (("--warmup", "0"), "--warmup 0: must be"),
        (("--after", "-1"), "--after -1: must be seconds of load after the shift"),
        (("--rate", "0"), "--rate 0: must be requests per AWS second, more than 0"),
        (("--rate", "inf"), "--rate inf: must be requests per AWS second"),
        (("--port", "70000"), "--port 70000: must be 0 (a free port) to 65535"),
        (("--region", "ap-south-1"), "--region ap-south-1: not a region of orders"),
        (("--region", "us-east-2"), "--region us-east-2: not a region of orders"),
        (("--region", "global"), "--region global: not a region of orders"),
    ],
)
def test_demo_refuses_what_it_cannot_do_at_once_and_starts_nothing(
    cli: Callable[..., CliResult],
    started: list[Any],
    tmp_path: Path,
    option: tuple[str, str],
    said: str,
) -> None:
    state = tmp_path / "state"
    result = cli("demo", *option, "--state-dir", state, "--spec", EXAMPLE)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], result.err
    if option[0] == "--region":
        assert lines[0].endswith(f"one of {REGIONS}")  # the topology's regions, no other
    assert started == [] and not state.exists()  # nothing started, nothing written


def test_the_demo_report_is_its_owners_only_whatever_the_umask(tmp_path: Path) -> None:
    marks = reports.Marks(start=0.0, outage=2.0, detected=3.0, shifted=4.0, end=6.0)
    samples = [Sample(t, t + 0.1, "read", "ok", 200, 1) for t in (0.5, 1.5, 4.5, 5.5)]
    report = reports.build(samples, marks, acked={}, found=set(), extra={"title": "t"})
    previous = os.umask(0o022)
    try:
        json_path, png_path = reports.write(report, samples, marks, tmp_path / "out")
    finally:
        os.umask(previous)
    assert png_path is not None
    for path in (json_path, png_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.stat().st_size > 0
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_report_without_its_chart_is_the_same_json_and_no_png(tmp_path: Path) -> None:
    """What ``bench/detect.py`` asks for: it reads the figures, not the chart."""
    marks = reports.Marks(start=0.0, outage=2.0, detected=3.0, shifted=4.0, end=6.0)
    samples = [Sample(t, t + 0.1, "read", "ok", 200, 1) for t in (0.5, 1.5, 4.5, 5.5)]
    report = reports.build(samples, marks, acked={}, found=set(), extra={"title": "t"})
    charted, _ = reports.write(report, samples, marks, tmp_path / "a")
    json_path, png_path = reports.write(report, samples, marks, tmp_path / "b", chart=False)
    assert png_path is None and not (tmp_path / "b" / "demo-report.png").exists()
    assert json_path.read_text() == charted.read_text()


@pytest.mark.parametrize("verb", [("demo", "--no-page"), ("drill",)])
def test_the_demo_and_the_drill_keep_their_load_on_longer_than_a_ttl_after_the_shift(
    verb: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    """Each client's resolver keeps its answer up to a TTL after the first one moved: load that
    stops sooner misses the last client's shift, and full service reads too early."""
    from controller.topology import Kind, load
    from sandbox import demo

    seen: list[demo.DemoOptions] = []

    def run_demo(options: demo.DemoOptions, *_: Any) -> Any:
        seen.append(options)
        raise SystemExit(0)

    monkeypatch.setattr(demo, "run_demo", run_demo)
    with pytest.raises(SystemExit):
        cli(*verb, "--spec", EXAMPLE, "--state-dir", tmp_path / ".failover")
    ttl = max(spec.ttl for _, spec in load(EXAMPLE).of_kind(Kind.DNS))
    assert [o.after > ttl for o in seen] == [True]
