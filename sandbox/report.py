"""The demo's report: what the clients saw, phase by phase, as JSON and as a PNG timeline.

Called by the demo and the drill. Phases: ``before`` the outage, ``outage`` (from the outage to
the traffic shift) and ``after`` the shift; a request counts in the outage when it was under way
at any moment of it, whenever it began. Times are AWS seconds (the sandbox's clock) from the
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
    #: When Route 53 itself first answered another region (no resolver's cache): None when not
    #: watched or it did not happen.
    dns_answered: float | None = None


def phase_of(sample: Sample, marks: Marks) -> str:
    """The phase a request belongs to: ``before`` when it ended before the outage, ``after``
    when it began once the traffic had shifted, else ``outage``: it was under way during the
    outage. A request sent just before a region hung, and retried until the shift, is the
    outage's: counted by when it began, an outage shorter than the clients' timeouts would
    have had no request at all (every client still waiting on one begun before it).

    >>> marks = Marks(start=0.0, outage=10.0, detected=12.0, shifted=20.0, end=30.0)
    >>> [phase_of(Sample(a, b, "read", "ok", 200, 1), marks) for a, b in
    ...  ((1, 2), (9, 11), (9, 25), (15, 16), (19, 21), (20, 21))]
    ['before', 'outage', 'outage', 'outage', 'outage', 'after']
    """
    if sample.end < marks.outage:
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
        "time_to_dns_answer": _since(marks.outage, marks.dns_answered),
        "time_to_full_service": _since(marks.outage, full_service(samples, marks.outage)),
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


def rpo(
    samples: Sequence[Sample],
    acked: dict[str, str],
    found: set[str],
    lags: Sequence[dict[str, Any]],
    switched_at: float | None,
) -> dict[str, Any]:
    """What the switch lost and could have lost: each table's lag as the switching run read it
    (``lags``, the run's record), and the acknowledged writes missing from the new primary, with
    how far before the switch the oldest of them was acknowledged (``window_seconds``: 0 when
    none is missing; None when no run switched).

    >>> s = [Sample(1.0, 2.0, "write", "ok", 201, 1, "r", "a"),
    ...      Sample(5.0, 6.5, "write", "ok", 201, 1, "r", "b")]
    >>> out = rpo(s, {"a": "r", "b": "r"}, {"a"}, [], switched_at=10.0)
    >>> out["writes_missing_from_new_primary"], out["missing_ids"], out["window_seconds"]
    (1, ['b'], 3.5)
    """
    missing = sorted(set(acked) - found)
    acked_at = {x.order_id: x.end for x in samples if x.kind == "write" and x.order_id in acked}
    oldest = min((acked_at[i] for i in missing if i in acked_at), default=None)
    window: float | None
    if switched_at is None:
        window = None
    else:
        window = 0.0 if oldest is None else round(max(0.0, switched_at - oldest), 2)
    return {
        "tables_at_switch": list(lags),
        "switched_at": switched_at,
        "writes_acknowledged": len(acked),
        "writes_missing_from_new_primary": len(missing),
        "missing_ids": missing[:20],
        "window_seconds": window,
    }


def served(sample: Sample) -> bool:
    """True when ``sample`` was served in full at once: ``ok`` at its first attempt. A request
    that reached a hung or dead region and was answered only by a retry after the shift was not
    served at its start, and a client saw it wait."""
    return sample.outcome == "ok" and sample.attempts <= 1


def full_service(samples: Sequence[Sample], since: float) -> float | None:
    """When full, non-degraded service came back after ``since`` (the outage): the end of the
    last request, in flight since then, that was not served at once (not ``ok``, or ``ok`` only
    after a retry: :func:`served`): until then a client was still waiting, or got less. With no
    such request, the start of the first one since; None when the last request was not served
    at once (it never came back while the load ran).

    >>> s = [Sample(t, t + 0.1, "read", o, 200, 1) for t, o in
    ...      ((1.0, "ok"), (2.0, "degraded"), (3.0, "failed"), (4.0, "ok"), (5.0, "ok"))]
    >>> full_service(s, since=1.5), full_service(s, since=3.5), full_service(s[:3], since=1.5)
    (3.1, 4.0, None)
    >>> retried = [Sample(1.0, 9.0, "read", "ok", 200, 3), Sample(2.0, 2.1, "read", "ok", 200, 1)]
    >>> full_service(retried, since=0.5)  # its client waited until 9.0 for its third attempt
    9.0
    """
    after = sorted((x for x in samples if x.end >= since), key=lambda x: x.start)
    if not after or not served(after[-1]):
        return None
    waited = [x.end for x in after if not served(x)]
    return max(waited) if waited else max(after[0].start, since)


def levels(
    steps: Sequence[tuple[int, str, float | None, float | None]], since: float
) -> list[dict[str, Any]]:
    """Where a run's time went, level by level: each level's phase, when its first step started
    and its last one ended (seconds after ``since``), and how long it took; ``steps`` are
    ``(level, phase, started, ended)`` as the journal recorded them.

    >>> levels([(0, "fence", 10.0, 12.0), (1, "activate", 12.1, 12.3), (1, "activate", 12.1,
    ...          12.4)], since=9.0)[1]
    {'level': 1, 'phase': 'activate', 'steps': 2, 'started': 3.1, 'ended': 3.4, 'seconds': 0.3}
    """
    out = []
    for level in sorted({s[0] for s in steps}):
        mine = [s for s in steps if s[0] == level and s[2] is not None and s[3] is not None]
        if not mine:
            continue
        start = min(s[2] for s in mine if s[2] is not None)
        end = max(s[3] for s in mine if s[3] is not None)
        out.append(
            {
                "level": level,
                "phase": mine[0][1],
                "steps": len(mine),
                "started": round(start - since, 2),
                "ended": round(end - since, 2),
                "seconds": round(end - start, 2),
            }
        )
    return out


def _since(start: float, end: float | None) -> float | None:
    return None if end is None else round(end - start, 2)


def write(
    report: dict[str, Any],
    samples: Sequence[Sample],
    marks: Marks,
    directory: Path,
    *,
    chart: bool = True,
) -> tuple[Path, Path | None]:
    """Write ``demo-report.json`` and (with ``chart``) ``demo-report.png`` into ``directory``:
    its owner's only (0600 in a 0700 folder, whatever the umask), as the sandbox's state is."""
    private_dir(directory)
    json_path = directory / "demo-report.json"
    write_private(json_path, json.dumps(report, indent=2) + "\n")
    if not chart:
        return json_path, None
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
