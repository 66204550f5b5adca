"""``evfabric serve`` and ``evfabric status``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from evfabric.broker.config import free_port
from evfabric.broker.server import BrokerServer
from evfabric.cli import app
from evfabric.testing import wait_until

pytestmark = pytest.mark.broker
runner = CliRunner()


def test_serve_config_only_writes_a_valid_config(tmp_path: Path) -> None:
    res = runner.invoke(app, ["serve", "--config-only", "-d", str(tmp_path / "d"), "--port", "0", "--http-port", "0"])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "d" / "nats.conf").read_text()
    assert "jetstream" in text and str(tmp_path / "d") in text
    assert not list((tmp_path / "d").glob("jetstream"))  # nothing started


def test_serve_leaf_config_has_remote_and_domain(tmp_path: Path) -> None:
    res = runner.invoke(app, ["serve", "--config-only", "-d", str(tmp_path), "--leaf", "nats-leaf://127.0.0.1:7422"])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "nats.conf").read_text()
    assert '"nats-leaf://127.0.0.1:7422"' in text and 'domain: "edge"' in text


def test_serve_refuses_routes_without_cluster(tmp_path: Path) -> None:
    res = runner.invoke(app, ["serve", "-d", str(tmp_path), "--routes", "nats-route://127.0.0.1:1"])
    assert res.exit_code == 2 and "--cluster" in res.output


def test_status_reports_streams(broker: BrokerServer) -> None:
    import asyncio

    import nats

    async def setup() -> None:
        nc = await nats.connect(broker.url)
        js = nc.jetstream()
        await js.add_stream(name="STAT", subjects=["stat.>"])
        await js.publish("stat.a", b"1")
        await nc.close()

    asyncio.run(setup())
    for url in (broker.monitor_url, broker.url):
        res = runner.invoke(app, ["status", "--url", url, "--json"])
        assert res.exit_code == 0, res.output
        data = json.loads(res.output)
        assert data["healthy"] is True
        assert [(s["name"], s["messages"]) for s in data["streams"]] == [("STAT", 1)]


def test_status_of_absent_broker_fails(tmp_path: Path) -> None:
    res = runner.invoke(app, ["status", "--url", f"http://127.0.0.1:{free_port()}"])
    assert res.exit_code == 1 and "no broker answers" in res.output


def test_serve_runs_in_foreground_and_stops_on_sigterm(tmp_path: Path) -> None:
    http_port = free_port()
    out_path = tmp_path / "out.txt"
    with open(out_path, "w") as out_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evfabric.cli", "serve", "-d", str(tmp_path / "d"), "--port", "0",
             "--http-port", str(http_port), "--no-web"],
            stdout=out_file, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"},
        )
    try:
        deadline = time.monotonic() + 20
        while "Ctrl-C to stop" not in out_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, out_path.read_text()
            time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=2).status_code == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = out_path.read_text()
    assert proc.returncode == 0, out
    assert "broker ready nats://127.0.0.1:" in out and "stopped" in out
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1)


def test_serve_stopped_during_startup_leaves_no_server(tmp_path: Path) -> None:
    # SIGTERM while the broker is still starting: serve must still stop what it started
    http_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "evfabric.cli", "serve", "-d", str(tmp_path / "d"), "--port", "0",
         "--http-port", str(http_port), "--no-web"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    log = tmp_path / "d" / "nats.log"
    wait_until(log.exists, timeout=20, every=0.01)  # the broker is starting (or serve gave up)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert "stopped" in out
    # serve waits for the broker process it stops: by the time serve has exited, nothing listens
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1)
