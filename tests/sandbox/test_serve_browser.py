"""The status page in a real browser: headless Debian Chromium, driven by Selenium.

The page is opened once and never reloaded: a region hangs, a watcher fails over, and the page
must show, by itself, the region unhealthy, the run's steps, then the new active region, each
within five seconds of the watcher knowing it (its first bad evaluation; the failover done).
Chromium comes from Debian's packages (installed here when missing and running as root, as CI
does), chromedriver from the same package, so Selenium's own manager never downloads anything;
the page loads nothing beyond the loopback.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.interfaces.serve import Api, StatusServer, deployment_sources
from controller.watchers.decisions import Decision
from controller.watchers.watcher import Watcher
from sandbox import Sandbox

pytestmark = pytest.mark.sandbox

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1200",
)
STANDBY = "us-west-2"
#: How often the test's watcher evaluates, and how long the page's status read waits.
INTERVAL = 1.0
PAGE_DEADLINE = 2.0
#: How long the test waits at most for the whole story (the limits it asserts are tighter).
OUTAGE_CAP = 120.0
#: The page's sources are read apart (the status, the run: a cached snapshot each, at most a
#: second old, and a read that outlasts the page's deadline answered with the last one), so what
#: one shows can lead what another shows by this much: the new active region (the status's
#: desired state) was seen 0.2 s before the run's steps on a fresh clone.
SOURCE_SKEW = 1.0 + PAGE_DEADLINE


def ensure_chromium() -> None:
    """Install Debian's chromium and chromium-driver when missing (as root), else skip."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            "needs /usr/bin/chromium and /usr/bin/chromedriver: apt-get install "
            "chromium chromium-driver (as root), or run as root on Debian"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "chromium",
        "chromium-driver",
    ]
    if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(
            ["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300, check=True
        )
        subprocess.run(install, env=env, capture_output=True, timeout=600, check=True)
    assert CHROMIUM.exists() and CHROMEDRIVER.exists()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium under Selenium, with a throwaway profile."""
    ensure_chromium()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def until(what: str, check: Callable[[], Any], limit: float) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # a DOM redrawn under our feet: look again
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    raise AssertionError(f"the page did not show {what} within {limit:.0f}s (last: {last!r})")


#: What the page shows, read in one script so that a redraw cannot come between two reads.
READ_PAGE = """
const all = (q) => [...document.querySelectorAll(q)];
return {
  regions: all("#grid th[data-region]").map((e) => e.dataset.region),
  components: all("#grid tr[data-component]").map((e) => e.dataset.component),
  cells: all("#grid tr[data-component] td[data-region]").length,
  health: Object.fromEntries(all("td.region-health").map((e) => [e.dataset.region,
                                                                 e.dataset.health])),
  active: document.getElementById("active-region").textContent,
  run_id: (document.getElementById("run-id") || {}).textContent || "",
  run_status: (document.getElementById("run-status") || {}).textContent || "",
  steps: all("#run li.step").map((e) => ({id: e.dataset.stepId, state: e.dataset.state,
                                          phase: e.closest(".level").dataset.level})),
  nodes: all("#graph g.node").map((e) => e.dataset.component),
  loaded: document.documentElement.dataset.loaded || "",
};
"""


def page(browser: Any) -> dict[str, Any]:
    """The page's state as data (see :data:`READ_PAGE`)."""
    return dict(browser.execute_script(READ_PAGE))


def _stages(
    seen: dict[str, Any],
    stages: dict[str, Callable[[dict[str, Any]], bool]],
    shown: dict[str, float],
) -> bool:
    """Note when each stage first shows on the page; True once all have."""
    now = time.monotonic()
    for name, check in stages.items():
        if name not in shown and check(seen):
            shown[name] = now
    return len(shown) == len(stages)


def activated(seen: dict[str, Any]) -> dict[str, Any] | None:
    """``seen`` when the run it shows has every activation step done and has ended, else None.
    A run is still running after its last activation step: with the source hung, its mode's
    write to the source waits out its timeout first (and is left for the source's return)."""
    steps = [s for s in seen["steps"] if s["phase"].startswith("activate")]
    done = steps and all(s["state"] == "done" for s in steps)
    return seen if done and seen["run_status"] != "running" else None


def png_colours(path: Path) -> int:
    """How many distinct colours an 8-bit, non-interlaced RGB(A) PNG holds (a tiny decoder)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    previous, seen = bytearray(stride), set()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        if y % 4 == 0:  # every fourth row is plenty to tell a page from a blank
            seen.update(bytes(line[i : i + 3]) for i in range(0, stride, bpp * 4))
        previous = line
    return len(seen)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_page_follows_a_hung_region_and_its_failover_without_reloading(
    fresh_sandbox: Sandbox, browser: Any, tmp_path: Path
) -> None:
    box = fresh_sandbox
    topology = box.topology
    primary = topology.regions.primary
    decisions: list[Decision] = []
    #: When (monotonic) the watcher's first bad evaluation ended, and when it knew the region
    #: was failed over (its own run ended, or the control table names another active region).
    watcher_saw: dict[str, float] = {}
    sources = deployment_sources(
        topology,
        box.manifest,
        box.clients,
        deadline=PAGE_DEADLINE,
        decisions=lambda: [d.to_dict() for d in decisions[-10:]],
    )
    stop = threading.Event()
    watcher = Watcher(topology, box.manifest, box.clients)

    def watch() -> None:
        for decision in watcher.run(INTERVAL, stop=stop.is_set):
            decisions.append(decision)
            now = time.monotonic()
            if decision.consecutive_bad or decision.action == "failover":
                watcher_saw.setdefault("bad", now)
            if (
                decision.action == "failover"
                and decision.status in ("completed", "completed_degraded")
            ) or (decision.active and decision.active != primary):
                watcher_saw.setdefault("failed_over", now)

    thread = threading.Thread(target=watch, daemon=True)
    with StatusServer(Api(sources)) as server:
        try:
            browser.get(server.url)

            until(
                "every region healthy",
                lambda: all(
                    page(browser)["health"].get(r) == "healthy" for r in topology.regions.all
                ),
                30,
            )
            seen = page(browser)
            assert seen["regions"] == list(topology.regions.all)
            assert seen["components"] == list(topology.components)
            assert seen["cells"] == len(topology.components) * len(topology.regions.all)
            assert seen["active"] == primary
            assert set(seen["nodes"]) == set(topology.components)
            browser.execute_script("document.documentElement.dataset.loaded = 'once'")

            thread.start()
            box.fail(primary, "hang")
            failed_at = time.monotonic()
            # When the page first showed each stage, watched without reloading it.
            stages = {
                "unhealthy": lambda p: p["health"].get(primary) in ("unhealthy", "unreachable"),
                "steps": lambda p: bool(p["run_id"] and p["steps"]),
                "active": lambda p: p["active"] == STANDBY,
            }
            shown: dict[str, float] = {}
            until(
                "the hang, the run and the new active region",
                lambda: _stages(page(browser), stages, shown) and "failed_over" in watcher_saw,
                OUTAGE_CAP,
            )
            # ... each within the watcher's own detection plus five seconds, in that order
            assert shown["unhealthy"] <= watcher_saw["bad"] + 5.0, (shown, watcher_saw)
            assert shown["steps"] <= watcher_saw["failed_over"] + 5.0, (shown, watcher_saw)
            assert shown["active"] <= watcher_saw["failed_over"] + 5.0, (shown, watcher_saw)
            # each from its own source: the status (unhealthy, active) and the run (steps)
            assert shown["unhealthy"] <= shown["steps"] + SOURCE_SKEW, shown
            assert shown["steps"] <= shown["active"] + SOURCE_SKEW, shown
            shown_after = shown["active"] - failed_at
            done = until(
                "the run ended, every activation step done",
                lambda: activated(page(browser)),
                OUTAGE_CAP,
            )
            assert done["loaded"] == "once"  # the same page all along: never reloaded
            assert done["run_status"] in ("completed", "completed_degraded")
            assert {s["phase"].split()[0] for s in done["steps"]} == {"fence", "activate"}
            shot = tmp_path / "status-page.png"
            assert browser.save_screenshot(str(shot))
            assert png_colours(shot) > 8, "the screenshot is blank"
            target = os.environ.get("FAILOVER_SCREENSHOT")
            if target:  # how docs/ gets its picture: FAILOVER_SCREENSHOT=docs/x.png pytest ...
                shutil.copyfile(shot, target)
            print(
                f"page showed the new active region {shown_after:.1f}s after the hang, "
                f"{shown['active'] - watcher_saw['failed_over']:+.1f}s after the watcher "
                "knew it"
            )
        finally:
            stop.set()
            if thread.is_alive():
                thread.join(timeout=60)


def test_the_page_shows_what_became_of_an_action_the_control_table_did_not_take(
    browser: Any,
) -> None:
    """``--allow-actions`` with no control majority: the pause is answered 503 ``refused`` and
    the page says so (not applied); a resume whose answer was lost is 503 ``unknown`` and the
    page says it may still be applied. Stub sources: no emulator needed."""
    from controller.errors import NoMajorityError, OutcomeUnknownError
    from controller.interfaces.serve import Cached, Sources

    token = "a-token-for-the-page-actions-test"
    answers = iter(
        [
            NoMajorityError("the control table t has no majority: ...; nothing was written"),
            OutcomeUnknownError("the control table t did not confirm the write"),
        ]
    )

    def set_paused(paused: bool, reason: str) -> dict[str, Any]:
        raise next(answers)

    def const(value: Any) -> Cached[Any]:
        return Cached(lambda: value, max_age=1.0, wait=1.0)

    sources = Sources(
        status=const({"app": "orders", "active_region": "r1", "regions": {}, "control": {}}),
        runs=const({"runs": []}),
        run=const(None),
        watchers=const({"automation": {"paused": False}, "regions": {}}),
        graph={
            "nodes": [{"name": "api", "kind": "api", "tier": "traffic"}],
            "edges": [],
            "activation_levels": [["api"]],
        },
        config={"app": "orders", "regions": ["r1"], "components": {}},
        set_paused=set_paused,
    )
    shown = (
        "const e = document.getElementById('action-result');"
        "return [e.dataset.outcome, e.textContent];"
    )
    with StatusServer(Api(sources, token=token)) as server:
        browser.get(server.url)
        until("the actions", lambda: browser.find_element("id", "pause").is_displayed(), 30)
        browser.find_element("id", "token").send_keys(token)
        browser.find_element("id", "pause").click()
        _, text = until(
            "the refused pause",
            lambda: (got := browser.execute_script(shown))[0] == "refused" and got,
            30,
        )
        assert text.startswith("503: ") and "no majority" in text and "not applied" in text
        browser.find_element("id", "resume").click()
        _, text = until(
            "the resume of unknown outcome",
            lambda: (got := browser.execute_script(shown))[0] == "unknown" and got,
            30,
        )
        assert text.startswith("503: ") and "may still be applied" in text
