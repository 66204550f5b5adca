"""Prometheus naming on a real scrape: units (or the thing counted) last, no percents, and labels
that survive restarts (the server's name, a client's chosen name; never an id or a pid)."""

from __future__ import annotations

import asyncio
import os

import nats
import pytest
from fastapi.testclient import TestClient
from monitor_helpers import metric, scrape, wait_for
from prometheus_client.parser import text_string_to_metric_families

from evfabric.core.event import make_event
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import topic_subject
from evfabric.monitor import Monitor
from evfabric.monitor.collector import local_client_id
from evfabric.monitor.exporter import render, server_label
from evfabric.testing import BrokerServer
from evfabric.wire import encode_events

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]

UNITS = ("bytes", "messages", "events", "seconds", "ratio")


def test_names_put_units_last_and_have_no_percent(broker: BrokerServer, app_client: TestClient) -> None:
    async def publish() -> None:
        nc = await nats.connect(broker.url)
        headers, payload = encode_events([make_event("labels.t", {"x": i}, source="s") for i in range(5)])
        headers["Evf-Count"] = "5"
        await nc.publish(topic_subject("labels.t"), payload, headers=headers)
        await flush(nc)
        await nc.close()

    scrape(app_client)  # the tap listens before the publish
    asyncio.run(publish())
    samples = wait_for(lambda: (s := scrape(app_client)) and metric(
        s, "evfabric_topic_published_events_total", topic="labels") == 5 and s)
    names = {name for name, _ in samples}
    assert names, "nothing scraped"
    for name in names:
        assert "percent" not in name, name
        tokens = name.removesuffix("_total").split("_")
        for unit in UNITS:
            if unit in tokens[2:]:  # evfabric_<subsystem>_..._<unit>
                assert tokens[-1] == unit, f"{name}: the unit {unit!r} must come last"
    assert metric(samples, "evfabric_topic_published_bytes_total", topic="labels") == len(payload_of(5))
    assert metric(samples, "evfabric_server_cpu_ratio") is not None


def payload_of(n: int) -> bytes:
    return encode_events([make_event("labels.t", {"x": i}, source="s") for i in range(n)])[1]


def _server_labels(monitor: Monitor) -> set[str]:
    text = render(monitor).decode()
    return {s.labels["server"] for fam in text_string_to_metric_families(text) for s in fam.samples
            if "server" in s.labels}


def test_server_label_survives_a_restart(broker: BrokerServer) -> None:
    monitor = Monitor(broker.monitor_url, interval=0.05)
    try:
        before = _server_labels(monitor)
        server_id = monitor.latest(max_age=0)["server"]["server_id"]
        broker.restart()
        after = wait_for(lambda: (m := monitor.latest(max_age=0))["server"]["up"]
                         and m["server"]["server_id"] != server_id and _server_labels(monitor))
    finally:
        monitor.close()
    assert before == after == {broker.monitor_url.removeprefix("http://")}, "an id-free, restart-proof label"


def test_server_label_prefers_the_configured_name() -> None:
    assert server_label({"name": "hub-1", "server_id": "NABC"}, "http://127.0.0.1:8222") == "hub-1"
    assert server_label({"name": "NABC", "server_id": "NABC"}, "http://127.0.0.1:8222") == "127.0.0.1:8222"
    assert server_label({}, "http://10.0.0.5:8222") == "10.0.0.5:8222"


def test_client_label_is_a_name_not_a_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVFABRIC_CLIENT_NAME", raising=False)
    default = local_client_id()
    assert str(os.getpid()) not in default and "/" in default
    monkeypatch.setenv("EVFABRIC_CLIENT_NAME", "beamline-7-ingest")
    assert local_client_id() == "beamline-7-ingest"
