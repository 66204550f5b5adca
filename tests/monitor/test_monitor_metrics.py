"""/metrics and /monitor/snapshot against a real broker: per-topic counts, lag, redeliveries,
best-effort traffic, connections, health, trigger counters (local and reported over NATS)."""

from __future__ import annotations

import asyncio
import contextlib

import nats
import pytest
from fastapi.testclient import TestClient
from monitor_helpers import make_app, metric, scrape, wait_for
from nats.js.api import ConsumerConfig

from evfabric.fabric.roundtrip import flush
from evfabric.fabric.stats import FabricStats
from evfabric.fabric.streams import TopicConfig
from evfabric.monitor import Monitor, metrics
from evfabric.monitor.reporter import MetricsReporter
from evfabric.testing import BrokerServer, wait_until_async

pytestmark = pytest.mark.broker

PAYLOAD = b"\x93" + b"\xa5hello" * 3  # a MessagePack array of 3 items: the tap counts 3 events


async def _publish(url: str, topic: str, n: int) -> None:
    nc = await nats.connect(url, name="test-publisher")
    js = nc.jetstream()
    await js.add_stream(TopicConfig(topic).stream_config())
    for _ in range(n):
        await js.publish(f"evf._.0.{topic}.status", PAYLOAD)
    await nc.close()


def test_monitor_metrics_topic_counts_and_bytes(broker: BrokerServer, app_client: TestClient) -> None:
    scrape(app_client)  # the monitor (and its tap) is up before events flow
    asyncio.run(_publish(broker.url, "orders", 20))

    def counted():
        s = scrape(app_client)
        return s if metric(s, "evfabric_topic_published_events_total", topic="orders") == 60 else None

    s = wait_for(counted)
    assert metric(s, "evfabric_topic_in_messages_total", topic="orders", kind="reliable") == 20
    assert metric(s, "evfabric_topic_stored_messages", topic="orders") == 20
    stored = metric(s, "evfabric_topic_stored_bytes", topic="orders")
    assert stored is not None and stored >= 20 * len(PAYLOAD)  # payload plus subject and headers
    assert metric(s, "evfabric_topic_in_bytes_total", topic="orders") == stored  # nothing removed yet
    assert metric(s, "evfabric_topic_published_messages_total", topic="orders") == 20
    assert metric(s, "evfabric_topic_published_bytes_total", topic="orders") == 20 * len(PAYLOAD)

    # The snapshot has a rate for the topic in its history once a sample saw the events arrive.
    snap = app_client.get("/monitor/snapshot", params={"history": 60}).json()
    row = next(t for t in snap["topics"] if t["topic"] == "orders")
    assert row["stream"] == TopicConfig("orders").stream
    series = snap["history"]["topics"]["orders"]["published_events_rate"]
    assert max(series) > 0


async def _consume_all(url: str, stream: str, n: int, ack: bool) -> None:
    nc = await nats.connect(url, name="test-consumer")
    js = nc.jetstream()
    sub = await js.pull_subscribe("evf.*.*.tasks.>", durable="workers", stream=stream)
    got = 0
    while got < n:
        for m in await sub.fetch(n - got, timeout=5):
            got += 1
            if ack:
                await m.ack()
    await nc.close()


def test_monitor_consumer_lag_drops_to_zero(broker: BrokerServer, app_client: TestClient) -> None:
    async def setup() -> None:
        nc = await nats.connect(broker.url)
        js = nc.jetstream()
        await js.add_stream(TopicConfig("tasks").stream_config())
        await js.add_consumer(TopicConfig("tasks").stream, ConsumerConfig(durable_name="workers", ack_wait=30,
                                                                           filter_subject="evf.*.*.tasks.>"))
        for _ in range(15):
            await js.publish("evf._.0.tasks.todo", PAYLOAD)
        await nc.close()

    asyncio.run(setup())
    s = wait_for(lambda: (x := scrape(app_client)) and metric(x, "evfabric_consumer_lag", consumer="workers") == 15 and x)
    assert metric(s, "evfabric_consumer_pending", topic="tasks", consumer="workers") == 15
    assert metric(s, "evfabric_topic_lag", topic="tasks") == 15

    asyncio.run(_consume_all(broker.url, TopicConfig("tasks").stream, 15, ack=True))
    s = wait_for(lambda: (x := scrape(app_client)) and metric(x, "evfabric_consumer_lag", consumer="workers") == 0 and x)
    assert metric(s, "evfabric_consumer_ack_pending", consumer="workers") == 0
    assert metric(s, "evfabric_topic_out_messages_total", topic="tasks") == 15


def test_monitor_redeliveries_are_counted(broker: BrokerServer, app_client: TestClient) -> None:
    async def scenario() -> None:
        nc = await nats.connect(broker.url)
        js = nc.jetstream()
        await js.add_stream(TopicConfig("flaky").stream_config())
        for _ in range(3):
            await js.publish("evf._.0.flaky.x", PAYLOAD)
        sub = await js.pull_subscribe("evf.*.*.flaky.>", durable="slow", stream=TopicConfig("flaky").stream,
                                      config=ConsumerConfig(ack_wait=0.5))
        await sub.fetch(3, timeout=5)  # not acknowledged: redelivered after ack_wait
        again: list = []

        async def redelivered() -> bool:  # ask until the broker hands the 3 out again
            # each pull waits up to 2 s (> ack_wait), so the 3 come in one pull, not a third time
            with contextlib.suppress(nats.errors.TimeoutError, asyncio.TimeoutError):
                again.extend(await sub.fetch(3 - len(again), timeout=2))
            return len(again) >= 3

        assert await wait_until_async(redelivered)
        assert [m.metadata.num_delivered for m in again] == [2, 2, 2]
        await nc.close()

    asyncio.run(scenario())
    s = wait_for(lambda: (x := scrape(app_client)) and (metric(x, "evfabric_consumer_redelivered", consumer="slow") or 0) > 0 and x)
    assert metric(s, "evfabric_consumer_ack_pending", consumer="slow") == 3
    assert metric(s, "evfabric_topic_out_messages_total", topic="flaky") == 6  # deliveries, redeliveries included


def test_monitor_best_effort_topic_in_and_out(broker: BrokerServer, app_client: TestClient) -> None:
    scrape(app_client)

    async def scenario() -> None:
        nc = await nats.connect(broker.url, name="alert-listener")
        got = asyncio.Event()
        count = 0

        async def cb(msg) -> None:
            nonlocal count
            count += 1
            if count == 10:
                got.set()

        await nc.subscribe("evf.*.*.alerts.>", cb=cb)
        for _ in range(10):
            await nc.publish("evf._.0.alerts.disk", PAYLOAD)
        await asyncio.wait_for(got.wait(), 5)
        # Keep the subscription while the monitor reads its delivered count.
        await asyncio.to_thread(wait_for, lambda: metric(scrape(app_client), "evfabric_topic_out_messages_total",
                                                         topic="alerts") == 10)
        await nc.close()

    asyncio.run(scenario())
    s = scrape(app_client)
    assert metric(s, "evfabric_topic_published_events_total", topic="alerts", kind="best_effort") == 30
    assert metric(s, "evfabric_topic_in_messages_total", topic="alerts") == 0  # no stream stores it
    snap = app_client.get("/monitor/snapshot").json()
    row = next(t for t in snap["topics"] if t["topic"] == "alerts")
    assert row["kind"] == "best_effort" and row["messages_out"] == 10  # kept after the subscriber left


def test_monitor_connections_and_health(broker: BrokerServer, app_client: TestClient) -> None:
    async def two_clients() -> None:
        a = await nats.connect(broker.url, name="client-a")
        b = await nats.connect(broker.url, name="client-b")
        await asyncio.to_thread(wait_for, lambda: {"client-a", "client-b"} <= {
            c["name"] for c in app_client.get("/monitor/snapshot").json()["connections"]})
        s = scrape(app_client)
        assert metric(s, "evfabric_server_connections") >= 3  # a, b and the monitor's tap
        await a.close()
        await b.close()

    asyncio.run(two_clients())
    s = scrape(app_client)
    assert metric(s, "evfabric_server_up") == 1
    assert metric(s, "evfabric_server_healthy") == 1
    assert metric(s, "evfabric_server_connections_opened_total") >= 3

    broker.stop()
    # the last sample is at most 0.2 s old: a scrape after that reads the broker again
    s = wait_for(lambda: (x := scrape(app_client)) and metric(x, "evfabric_server_up") == 0 and x)
    assert metric(s, "evfabric_server_healthy") == 0
    snap = app_client.get("/monitor/snapshot").json()
    assert snap["server"]["up"] is False and snap["server"]["health_error"]


def test_monitor_trigger_counters_local_and_reported(broker: BrokerServer, app_client: TestClient) -> None:
    metrics.TRIGGER_INVOCATIONS.labels(trigger="mon-local", status="ok").inc(2)
    metrics.record_trigger("mon-local", ok=False)
    s = scrape(app_client)
    assert metric(s, "evfabric_trigger_invocations_total", trigger="mon-local", status="ok") == 2
    assert metric(s, "evfabric_trigger_invocations_total", trigger="mon-local", status="failed") == 1

    # Another process's counters arrive as a report over NATS (a registry of its own here).
    from prometheus_client import CollectorRegistry, Counter

    other = CollectorRegistry()
    c = Counter("evfabric_trigger_invocations", "x", ["trigger", "status"], registry=other)
    c.labels(trigger="mon-remote", status="failed").inc(4)
    d = Counter(metrics.DROPPED_EVENTS, "x", ["topic", "reason"], registry=other)
    d.labels(topic="alerts", reason="queue_full").inc(9)

    async def report() -> None:
        nc = await nats.connect(broker.url)
        stats = FabricStats()
        stats.published, stats.dropped = 30, 5
        await MetricsReporter(nc, client="worker-7", registry=other, stats=stats).report()
        await flush(nc)
        await nc.close()

    scrape(app_client)  # the tap is connected before the report goes out
    asyncio.run(report())
    s = wait_for(lambda: (x := scrape(app_client)) and metric(
        x, "evfabric_trigger_invocations_total", trigger="mon-remote", client="worker-7") == 4 and x)
    assert metric(s, "evfabric_dropped_events_total", topic="alerts", client="worker-7") == 9
    assert metric(s, "evfabric_client_published_total", client="worker-7") == 30
    assert metric(s, "evfabric_client_dropped_total", client="worker-7") == 5
    snap = app_client.get("/monitor/snapshot").json()
    trig = {t["trigger"]: t for t in snap["triggers"]}
    assert trig["mon-remote"]["failed"] == 4 and trig["mon-local"]["ok"] == 2
    assert {"topic": "alerts", "reason": "queue_full", "events": 9} in snap["drops"]["client"]
    assert {"topic": "(any)", "reason": "client_dropped", "events": 5} in snap["drops"]["client"]
    assert "worker-7" in snap["clients"]


def test_monitor_without_configuration_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import FastAPI

    from evfabric.monitor import web

    monkeypatch.delenv("EVFABRIC_MONITOR_URL", raising=False)
    app = FastAPI()
    app.include_router(web.router)
    with TestClient(app) as client:
        resp = client.get("/metrics")
    assert resp.status_code == 503 and "EVFABRIC_MONITOR_URL" in resp.text


def test_monitor_through_evfabric_client(broker: BrokerServer) -> None:
    import evfabric

    mon = Monitor(broker.monitor_url, broker.url, interval=0.2)
    try:
        with TestClient(make_app(mon)) as app_client:
            scrape(app_client)
            with evfabric.connect(broker.url, source="mon-test") as client:
                client.create_topic("sensors", exist_ok=True)
                for i in range(25):
                    client.publish("sensors.temp", {"i": i}, delivery="reliable")
                client.flush(10)
            s = wait_for(lambda: (x := scrape(app_client)) and metric(
                x, "evfabric_topic_published_events_total", topic="sensors") == 25 and x)
            msgs = metric(s, "evfabric_topic_in_messages_total", topic="sensors", kind="reliable")
            assert msgs is not None and 1 <= msgs <= 25  # events travel in batches of one or more
    finally:
        mon.close()
