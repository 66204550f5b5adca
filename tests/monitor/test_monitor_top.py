"""``evfabric top --once`` prints the topics with their figures, and reports a down broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import nats
import pytest

from evfabric.fabric.streams import TopicConfig
from evfabric.testing import BrokerServer

pytestmark = pytest.mark.broker


def _top(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "evfabric.cli", "top", "--once", *args],
                          capture_output=True, text=True, timeout=25, env=env)


def test_monitor_top_once_prints_topics(broker: BrokerServer) -> None:
    async def setup() -> None:
        nc = await nats.connect(broker.url)
        js = nc.jetstream()
        await js.add_stream(TopicConfig("topcheck").stream_config())
        for _ in range(12):
            await js.publish("evf._.0.topcheck.a", b"\x91\x01")
        await js.pull_subscribe("evf.*.*.topcheck.>", durable="topworker", stream=TopicConfig("topcheck").stream)
        await nc.close()

    asyncio.run(setup())
    out = _top("--url", broker.url, "--monitor-url", broker.monitor_url)
    assert out.returncode == 0, out.stderr
    assert "healthy" in out.stdout
    lines = [ln for ln in out.stdout.splitlines() if "topcheck" in ln]
    topic_line = next(ln for ln in lines if "reliable" in ln)
    assert "12" in topic_line.split()  # stored messages
    assert any("topworker" in ln and "12" in ln.split() for ln in lines)  # the consumer's lag


def test_monitor_top_once_reports_a_down_broker() -> None:
    out = _top("--url", "nats://127.0.0.1:1", "--monitor-url", "http://127.0.0.1:1")
    assert out.returncode == 1, out.stdout  # a dead broker is an error: one line, no traceback
    assert "no broker answers" in out.stderr and "Traceback" not in out.stderr
