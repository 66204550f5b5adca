"""The monitor counts events, not only messages (docs/wire.md section 8): stored events per topic
(also after retention removed messages), lag in events per consumer, versions 0 and 1 batches,
and evfabric's own scan consumers are not listed as readers."""

from __future__ import annotations

import asyncio

import nats
import pytest
from fastapi.testclient import TestClient
from monitor_helpers import metric, scrape, wait_for
from nats.js.api import ConsumerConfig
from rich.console import Console

import evfabric
from evfabric.cli.top import render_snapshot
from evfabric.fabric.streams import TopicConfig
from evfabric.testing import BrokerServer

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def _batches(url: str, topic: str, sizes: list[int], **settings: object) -> None:
    with evfabric.connect(url, source="mon-test") as c:
        c.create_topic(topic, exist_ok=True, **settings)
        for n in sizes:
            c.publish_many(f"{topic}.x", [{"i": i} for i in range(n)], delivery="reliable")
            c.flush(timeout=10)


def test_stored_events_follow_new_messages_and_retention(broker: BrokerServer, app_client: TestClient) -> None:
    """max_msgs 3, batches of 7 then 2 more: stored 3 messages and 21 events once retention
    removed two; each figure named by its unit."""
    _batches(broker.url, "readings", [7, 7])
    s = wait_for(lambda: (x := scrape(app_client)) and metric(x, "evfabric_topic_stored_events", topic="readings") == 14
                 and x)
    assert metric(s, "evfabric_topic_stored_messages", topic="readings") == 2
    with evfabric.connect(broker.url, source="mon-test") as c:
        c.update_topic("readings", max_msgs=3)
    _batches(broker.url, "readings", [7, 7, 7])
    s = wait_for(lambda: (x := scrape(app_client)) and metric(x, "evfabric_topic_removed_messages_total",
                                                              topic="readings") == 2 and x)
    assert metric(s, "evfabric_topic_stored_messages", topic="readings") == 3
    assert metric(s, "evfabric_topic_stored_events", topic="readings") == 21  # the 2 removed left the count
    snap = app_client.get("/monitor/snapshot", params={"history": 0}).json()
    row = next(t for t in snap["topics"] if t["topic"] == "readings")
    assert (row["stored_events"], row["stored_messages"]) == (21, 3)
    assert not any(c["consumer"].startswith("evf_scan_") for c in snap["consumers"])  # the monitor's own scans


def test_lag_in_events_per_consumer(broker: BrokerServer, app_client: TestClient) -> None:
    """Batches of 10, 20, 30 events; a reader acknowledges the first: lag 2 messages, 50 events."""
    _batches(broker.url, "jobs", [10, 20, 30])
    stream = TopicConfig("jobs").stream

    async def read_one() -> None:
        nc = await nats.connect(broker.url)
        js = nc.jetstream()
        sub = await js.pull_subscribe("evf.*.*.jobs.>", durable="reader", stream=stream,
                                      config=ConsumerConfig(ack_wait=30))
        (m,) = await sub.fetch(1, timeout=5)
        await m.ack_sync()
        await nc.close()
    asyncio.run(read_one())
    s = wait_for(lambda: (x := scrape(app_client)) and metric(x, "evfabric_consumer_lag_events", consumer="reader") == 50
                 and x)
    assert metric(s, "evfabric_consumer_lag", consumer="reader") == 2
    assert metric(s, "evfabric_topic_lag_events", topic="jobs") == 50
    assert metric(s, "evfabric_topic_lag", topic="jobs") == 2
    snap = app_client.get("/monitor/snapshot", params={"history": 0}).json()
    console = Console(record=True, width=250)
    console.print(render_snapshot(snap))
    text = console.export_text()
    assert "lag events" in text and "stored events" in text  # `evfabric top` names each unit
    reader = next(line for line in text.splitlines() if "reader" in line)
    assert "50" in reader.split() and "2" in reader.split(), reader


def test_version0_batches_are_counted_from_their_payload(broker: BrokerServer, app_client: TestClient) -> None:
    """A version-0 batch has no headers to say its length: the monitor reads it (3 events each)."""
    async def publish() -> None:
        nc = await nats.connect(broker.url)
        js = nc.jetstream()
        await js.add_stream(TopicConfig("legacy").stream_config())
        for _ in range(4):
            await js.publish("evf._.0.legacy.x", b"\x93" + b"\xa5hello" * 3)
        await nc.close()
    asyncio.run(publish())
    s = wait_for(lambda: (x := scrape(app_client)) and metric(x, "evfabric_topic_stored_events", topic="legacy") == 12
                 and x)
    assert metric(s, "evfabric_topic_stored_messages", topic="legacy") == 4


def test_without_the_tap_event_figures_are_unknown_not_zero(broker: BrokerServer) -> None:
    from evfabric.monitor import Monitor
    _batches(broker.url, "quiet", [5])
    with Monitor(broker.monitor_url, tap=False) as mon:
        row = next(t for t in mon.sample()["topics"] if t["topic"] == "quiet")
    assert row["stored_messages"] == 1 and row["stored_events"] is None and row["lag_events"] is None
