"""The demo's report: what the clients saw, phase by phase, as JSON and as a PNG timeline.

Called by the demo and the drill. Phases: ``before`` the outage, ``outage`` (from the outage to
the traffic shift) and ``after`` the shift. Times are AWS seconds (the sandbox's clock) from the
start of the load; every duration is also given in wall seconds (``..._wall_seconds``: the AWS
seconds divided by the report's ``time_scale``).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.loadgen import Sample
from sandbox.state import private_dir, write_private

OUTCOMES = ("ok", "degraded", "failed")


@dataclass(frozen=True)
class Marks:
    """The moments of the story, as epoch seconds (None when it did not happen)."""

    start: float
    outage: float
    detected: float | None
    shifted: float | None
    end: float
    #: Each region's watcher decisions worth marking: (epoch seconds, region, action).
    decisions: tuple[tuple[float, str, str], ...] = ()


def phase_of(sample: Sample, marks: Marks) -> str:
    """The phase a request started in."""
    if sample.start < marks.outage:
        return "before"
    if marks.shifted is None or sample.start < marks.shifted:
        return "outage"
    return "after"


def build(
    samples: Sequence[Sample],
    marks: Marks,
    *,
    acked: dict[str, str],
    found: set[str],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The report as plain data (the JSON written beside the PNG)."""
    phases: dict[str, Counter[str]] = {p: Counter() for p in ("before", "outage", "after")}
    for sample in samples:
        phases[phase_of(sample, marks)][sample.outcome] += 1
    lost = sorted(set(acked) - found)

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - marks.start, 2)

    outage = phases["outage"]
    outage_total = sum(outage.values())
    scale = float(extra.get("time_scale", 1.0))
    durations = {
        "time_to_detect": _since(marks.outage, marks.detected),
        "time_to_shift": _since(marks.outage, marks.shifted),
        "time_to_full_service": _since(marks.outage, full_service(samples, marks)),
    }
    return {
        **extra,
        **{f"{name}_seconds": aws for name, aws in durations.items()},
        **{
            f"{name}_wall_seconds": None if aws is None else round(aws / scale, 2)
            for name, aws in durations.items()
        },
        "timeline": {
            "outage": rel(marks.outage),
            "detected": rel(marks.detected),
            "shifted": rel(marks.shifted),
            "end": rel(marks.end),
        },
        "requests": {
            p: {o: c[o] for o in OUTCOMES} | {"total": sum(c.values())} for p, c in phases.items()
        },
        "failed_share_during_outage": round(outage["failed"] / outage_total, 4)
        if outage_total
        else 0.0,
        "writes_acknowledged": len(acked),
        "writes_found_in_new_primary": len(set(acked) & found),
        "lost_writes": len(lost),
        "lost_write_ids": lost[:20],
        "retries": sum(s.attempts - 1 for s in samples),
    }


def full_service(samples: Sequence[Sample], marks: Marks) -> float | None:
    """When non-degraded service was back for good: the start of the first request after the
    outage from which every later one was ``ok`` (None when the last one was not).

    >>> from sandbox.loadgen import Sample
    >>> def s(t: float, outcome: str) -> Sample:
    ...     return Sample(t, t + 1, "read", outcome, 200, 1, "r", "")
    >>> m = Marks(0.0, 10.0, None, None, 40.0)
    >>> full_service([s(5.0, "ok"), s(12.0, "failed"), s(20.0, "degraded"), s(25.0, "ok")], m)
    25.0
    >>> full_service([s(12.0, "ok"), s(20.0, "degraded")], m) is None
    True
    """
    after = sorted((s for s in samples if s.start >= marks.outage), key=lambda s: s.start)
    back: float | None = None
    for sample in after:
        if sample.outcome != "ok":
            back = None
        elif back is None:
            back = sample.start
    return back


def _since(start: float, end: float | None) -> float | None:
    return None if end is None else round(end - start, 2)


def write(
    report: dict[str, Any], samples: Sequence[Sample], marks: Marks, directory: Path
) -> tuple[Path, Path]:
    """Write ``demo-report.json`` and ``demo-report.png`` into ``directory``: its owner's
    only (0600 in a 0700 folder, whatever the umask), as the sandbox's state is."""
    private_dir(directory)
    json_path = directory / "demo-report.json"
    write_private(json_path, json.dumps(report, indent=2) + "\n")
    png_path = directory / "demo-report.png"
    plot(samples, marks, png_path, title=str(report.get("title", "failover demo")))
    return json_path, png_path


def plot(samples: Sequence[Sample], marks: Marks, path: Path, *, title: str) -> None:
    """Requests per second by outcome, stacked, with the outage, detection and shift marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = int(marks.end - marks.start) + 1
    series = {o: [0] * seconds for o in OUTCOMES}
    for sample in samples:
        second = int(sample.start - marks.start)
        if 0 <= second < seconds:
            series[sample.outcome][second] += 1
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=110)
    xs = list(range(seconds))
    ax.stackplot(
        xs,
        *(series[o] for o in OUTCOMES),
        labels=["ok", "degraded", "failed"],
        colors=["#3a923a", "#e8a33d", "#c0392b"],
        alpha=0.9,
    )
    for label, at, style in (
        ("outage", marks.outage, "--"),
        ("detected", marks.detected, ":"),
        ("traffic shifted", marks.shifted, "-."),
    ):
        if at is not None:
            ax.axvline(at - marks.start, color="black", linestyle=style, linewidth=1.2)
            ax.text(
                at - marks.start + 0.3,
                ax.get_ylim()[1] * 0.92,
                label,
                rotation=90,
                va="top",
                fontsize=8,
            )
    top = ax.get_ylim()[1]
    regions = sorted({region for _, region, _ in marks.decisions})
    for i, region in enumerate(regions):  # one row of marks per region's watcher, at the top
        seen = [t - marks.start for t, r, _ in marks.decisions if r == region]
        acted = [
            t - marks.start
            for t, r, a in marks.decisions
            if r == region and a in ("failover", "failback", "reconcile")
        ]
        y = top * (0.80 - 0.07 * i)
        ax.scatter(
            seen, [y] * len(seen), marker="|", s=60, color=f"C{i}", label=f"watcher {region}"
        )
        ax.scatter(acted, [y] * len(acted), marker="*", s=120, color=f"C{i}")
    ax.set_xlabel("seconds since the load started (by request start)")
    ax.set_ylabel("requests per second")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_xlim(0, max(1, seconds - 1))
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png")
    plt.close(fig)
    write_private(path, image.getvalue())
