"""Take docs/status-page.png: the status page in headless Chromium while the demo fails over.

Run it from the repository (needs the dev extra and Debian's chromium and chromium-driver):

    .venv/bin/python docs/screenshot.py [docs/status-page.png]

The demo runs as ``make demo`` does (hang of the primary, the watcher fails over); the picture
is taken once the run has completed and the traffic chart shows the load after the shift.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from sandbox.demo import DemoOptions, run_demo

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,2250", "--hide-scrollbars")
DONE = ("return document.getElementById('active-region').textContent !== "
        "document.documentElement.dataset.first && !!document.querySelector("
        "'#run-status.completed, #run-status.completed_degraded') && "
        "!document.getElementById('traffic-card').hidden")


def main(out: Path) -> int:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    urls: list[str] = []
    found = threading.Event()

    def on_page(url: str) -> None:
        urls.append(url)
        found.set()

    with tempfile.TemporaryDirectory(prefix="failover-shot-") as tmp:
        options = DemoOptions(spec=ROOT / "examples" / "orders" / "topology.yaml",
                              state_dir=Path(tmp) / ".failover", warmup=10.0, after=12.0,
                              on_page=on_page)
        demo = threading.Thread(target=run_demo, args=(options,), daemon=True)
        demo.start()
        if not found.wait(180):
            raise SystemExit("the demo's page did not start")
        chrome = webdriver.ChromeOptions()
        chrome.binary_location = "/usr/bin/chromium"
        for flag in (*FLAGS, f"--user-data-dir={tmp}/profile"):
            chrome.add_argument(flag)
        driver = webdriver.Chrome(options=chrome, service=Service("/usr/bin/chromedriver"))
        try:
            driver.get(urls[0])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not driver.execute_script(
                    "return document.getElementById('active-region').textContent !== '?'"):
                time.sleep(0.5)
            driver.execute_script("document.documentElement.dataset.first = "
                                  "document.getElementById('active-region').textContent")
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and not driver.execute_script(DONE):
                time.sleep(0.5)
            time.sleep(6)  # a few seconds of the load after the shift on the chart
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
        demo.join(timeout=180)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "status-page.png"))
