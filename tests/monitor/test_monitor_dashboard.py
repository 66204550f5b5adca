"""The dashboard in headless Chromium: live rates appear after events flow, without a reload.

Chromium is Debian's (installed by the fixture with apt-get if missing; the test is skipped only
when that is impossible), driven by Playwright's Python package with ``executable_path`` (no
Playwright browser download). The screenshot is saved in the test's tmp dir, and copied to
``docs/img/dashboard.png`` when ``EVFABRIC_SAVE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from monitor_helpers import live_server, make_app
from nats.js.api import ConsumerConfig

from evfabric.fabric.streams import TopicConfig
from evfabric.monitor import Monitor, metrics
from evfabric.testing import BrokerServer

pytestmark = pytest.mark.broker

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium, installed with apt-get if missing (as root, as in CI)."""
    if not os.path.exists(CHROMIUM):
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip("chromium is not installed and cannot be: no apt-get, or not root")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            if done.returncode != 0:
                pytest.skip(f"could not install chromium ({' '.join(cmd)}): {done.stderr[-500:]}")
    return CHROMIUM


class Traffic:
    """Publishes steadily in a thread: reliable ``telemetry`` (with a consumer that reads half of
    it, so lag grows) and best-effort ``alerts``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        nc = await nats.connect(self.url, name="dashboard-publisher")
        js = nc.jetstream()
        await js.add_stream(TopicConfig("telemetry").stream_config())
        sub = await js.pull_subscribe("evf.*.*.telemetry.>", durable="analytics", stream=TopicConfig("telemetry").stream,
                                      config=ConsumerConfig(ack_wait=30))
        listener = await nats.connect(self.url, name="alert-listener")
        await listener.subscribe("evf.*.*.alerts.>")
        self.ready.set()
        batch = b"\x9a" + b"\x01" * 10  # a batch of 10 events
        tick = 0
        while not self.stop.is_set():
            tick += 1
            for _ in range(5 + tick % 7):
                await js.publish("evf._.0.telemetry.temp", batch)
            await nc.publish("evf._.0.alerts.disk", b"\x92\x01\x02")
            if tick % 2:
                for m in await sub.fetch(4, timeout=2):
                    await m.ack()
            await asyncio.sleep(0.1)
        await listener.close()
        await nc.close()

    def __enter__(self) -> Traffic:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def dashboard_url(broker: BrokerServer) -> Iterator[str]:
    mon = Monitor(broker.monitor_url, broker.url, interval=0.5)
    try:
        with live_server(make_app(mon)) as base:
            yield base + "/dashboard"
    finally:
        mon.close()


def test_monitor_dashboard_shows_live_rates(broker: BrokerServer, dashboard_url: str, chromium_path: str,
                                            tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    metrics.TRIGGER_INVOCATIONS.labels(trigger="thumbnailer", status="ok").inc(42)
    metrics.TRIGGER_INVOCATIONS.labels(trigger="thumbnailer", status="failed").inc(2)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(dashboard_url)
            page.wait_for_selector("#health.ok", timeout=15000)
            page.evaluate("window.__noReload = true")  # gone if the page reloads
            with Traffic(broker.url):
                # The in-rate cell of the topic turns positive once two samples saw events arrive.
                page.wait_for_function(
                    """() => { const c = document.querySelector('tr[data-topic="telemetry"] .rate-events');
                               return c && parseFloat(c.textContent) > 0; }""", timeout=20000)
                page.wait_for_function(
                    """() => { const c = document.querySelector('tr[data-topic="alerts"] .rate-events');
                               return c && parseFloat(c.textContent) > 0; }""", timeout=20000)
                page.wait_for_timeout(6000)  # a few seconds of history for the sparklines
                shot = tmp_path / "dashboard.png"
                page.screenshot(path=str(shot), full_page=True)
                in_rate = float(page.text_content('tr[data-topic="telemetry"] .rate-in') or "0")
                lag = page.text_content('tr[data-consumer="analytics"] .lag') or ""
            # Stored events: 10 per stored batch (version-0 batches of 10, counted from their payload).
            # Checked once the traffic stopped: on a loaded machine a count that takes longer than a
            # sample allows is left out of that sample, and goes on for the next one.
            page.wait_for_function(
                """() => { const r = document.querySelector('tr[data-topic="telemetry"]');
                           const e = r && r.querySelector('.stored-events'), b = r && r.querySelector('.stored');
                           return e && b && parseFloat(b.textContent) > 0
                                  && parseFloat(e.textContent) === 10 * parseFloat(b.textContent); }""",
                timeout=30000)
            headers = page.text_content("#topics thead") or ""
            points = page.get_attribute('tr[data-topic="telemetry"] svg polyline', "points") or ""
            assert page.evaluate("window.__noReload") is True
            assert in_rate > 0
            assert lag.strip() not in ("", "0", "–")  # the consumer reads slower than events arrive
            assert "stored events" in headers and "stored batches" in headers and "lag events" in headers
            ys = {p.split(",")[1] for p in points.split()}
            assert len(ys) > 1  # the sparkline is not flat: it drew rates over time
            assert "thumbnailer" in (page.text_content("#triggers") or "")
            assert "healthy" in (page.text_content("#health") or "")
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("EVFABRIC_SAVE_SCREENSHOTS") == "1":
        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, REPO / "docs" / "img" / "dashboard.png")
