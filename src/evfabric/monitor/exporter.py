"""The Prometheus view of a :class:`~evfabric.monitor.collector.Monitor`, sampled at scrape time.

:class:`MonitorCollector` is a prometheus-client custom collector: each scrape asks the monitor
for its latest snapshot (a fresh one if the last is older than the sampling interval) and turns
it into metric families. :func:`render` gives the text exposition format for a ``/metrics``
endpoint. Metric meanings are listed in ``docs/monitoring.md``.

Counters that evfabric components count in-process (:mod:`evfabric.monitor.metrics`) and those
that clients report are emitted here once, with a ``client`` label, so that one family never
appears twice in a scrape.

Naming follows Prometheus: the unit (or the thing counted) last, then ``_total`` for counters
(``evfabric_topic_in_bytes_total``); ratios, not percents (``evfabric_server_cpu_ratio``); labels
that survive restarts (the ``server`` label is the server's configured name, the ``client`` label
a process's chosen name: see :func:`evfabric.monitor.collector.local_client_id`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from evfabric.monitor import metrics
from evfabric.monitor.collector import Monitor

__all__ = ["CONTENT_TYPE", "MonitorCollector", "render", "server_label"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (name, help, snapshot key) for per-topic figures; counters first, then gauges.
_TOPIC_COUNTERS = [
    ("evfabric_topic_in_messages", "Messages (batches of events) stored in the topic's stream: its last sequence number.", "messages_in"),
    ("evfabric_topic_in_bytes", "Bytes stored into the topic's stream (estimate once retention removed messages).", "bytes_in"),
    ("evfabric_topic_out_messages", "Messages delivered from the topic: JetStream consumer deliveries (redeliveries included) plus best-effort subscription deliveries.", "messages_out"),
    ("evfabric_topic_published_messages", "Messages published on the topic, seen by the monitor's tap (best effort and reliable).", "published_messages"),
    ("evfabric_topic_published_bytes", "Payload bytes published on the topic, seen by the tap.", "published_bytes"),
    ("evfabric_topic_published_events", "Events published on the topic (sum of batch lengths), seen by the tap.", "published_events"),
    ("evfabric_topic_removed_messages", "Messages removed from the head of the stream by retention limits, age or purge.", "removed"),
]
_TOPIC_GAUGES = [
    ("evfabric_topic_stored_messages", "Messages stored in the topic's stream now.", "stored_messages"),
    ("evfabric_topic_stored_bytes", "Bytes stored in the topic's stream now.", "stored_bytes"),
    ("evfabric_topic_stored_events", "Events stored in the topic's stream now (its messages' Evf-Count summed; needs the tap).", "stored_events"),
    ("evfabric_topic_lag", "Sum over the topic's consumers of pending + ack_pending messages.", "lag"),
    ("evfabric_topic_lag_events", "Sum over the topic's consumers of the events above their ack floor (needs the tap).", "lag_events"),
    ("evfabric_topic_subscriptions", "Best-effort (core NATS) subscriptions to the topic.", "subscriptions"),
]
_CONSUMER_GAUGES = [
    ("evfabric_consumer_lag", "Messages the consumer has not finished: pending + ack_pending.", "lag"),
    ("evfabric_consumer_lag_events", "Events in the messages above the consumer's ack floor (needs the tap).", "lag_events"),
    ("evfabric_consumer_pending", "Messages in the stream not yet delivered to the consumer (num_pending).", "pending"),
    ("evfabric_consumer_ack_pending", "Messages delivered but not yet acknowledged (num_ack_pending).", "ack_pending"),
    ("evfabric_consumer_redelivered", "Outstanding messages delivered more than once (num_redelivered).", "redelivered"),
    ("evfabric_consumer_waiting", "Open pull requests of the consumer (num_waiting).", "waiting"),
]
_SERVER_COUNTERS = [
    ("evfabric_server_in_messages", "Messages the server received from clients and peers.", "in_msgs"),
    ("evfabric_server_out_messages", "Messages the server sent.", "out_msgs"),
    ("evfabric_server_in_bytes", "Bytes the server received.", "in_bytes"),
    ("evfabric_server_out_bytes", "Bytes the server sent.", "out_bytes"),
    ("evfabric_server_slow_consumers", "Times the server cut off or dropped messages to a slow consumer.", "slow_consumers"),
    ("evfabric_server_connections_opened", "Connections opened since the server started.", "total_connections"),
    ("evfabric_server_jetstream_api_errors", "JetStream API requests that failed.", "js_api_errors"),
]
_SERVER_GAUGES = [
    ("evfabric_server_up", "1 if the server's monitoring endpoint answered the last sample.", "up"),
    ("evfabric_server_healthy", "1 if /healthz answered ok (server and JetStream healthy).", "healthy"),
    ("evfabric_server_connections", "Client connections open now.", "connections"),
    ("evfabric_server_subscriptions", "Subscriptions on the server now.", "subscriptions"),
    ("evfabric_server_memory_bytes", "Resident memory of the server process.", "mem_bytes"),
    ("evfabric_server_jetstream_storage_bytes", "File storage used by JetStream.", "js_storage_bytes"),
    ("evfabric_server_jetstream_memory_bytes", "Memory storage used by JetStream.", "js_memory_bytes"),
]


class MonitorCollector(Collector):
    """Exposes a monitor's snapshot as metric families; register it in a CollectorRegistry."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def describe(self) -> list[Metric]:
        return []  # families depend on what the broker holds; nothing is checked at registration

    def collect(self) -> Iterator[Metric]:
        snap = self.monitor.latest()
        yield from _server(snap)
        yield from _topics(snap)
        yield from _consumers(snap)
        monitor_drops = CounterMetricFamily("evfabric_monitor_tap_dropped_messages",
                                            "Messages the monitor's tap could not keep up with.")
        monitor_drops.add_metric([], snap["drops"]["tap_dropped"])
        yield monitor_drops
        yield from _counters(snap)


def server_label(srv: dict[str, Any], monitor_url: str) -> str:
    """The ``server`` label: the configured server name, which survives restarts. A server
    without one reports its id as its name (a new one at every start): then the monitoring
    address (``host:port``), which is as stable as the configuration."""
    name = str(srv.get("name") or "")
    if name and name != srv.get("server_id"):
        return name
    return urlsplit(monitor_url).netloc or monitor_url


def _server(snap: dict[str, Any]) -> Iterator[Metric]:
    srv = snap["server"]
    labels = ["server"]
    value = [server_label(srv, snap["monitor_url"])]
    for name, help_, key in _SERVER_COUNTERS:
        m: CounterMetricFamily | GaugeMetricFamily = CounterMetricFamily(name, help_, labels=labels)
        m.add_metric(value, float(srv.get(key, 0)))
        yield m
    for name, help_, key in _SERVER_GAUGES:
        m = GaugeMetricFamily(name, help_, labels=labels)
        m.add_metric(value, float(srv.get(key, 0)))
        yield m
    # a ratio (cores busy, 1.0 = one core), not a percent: Prometheus figures are in base units
    cpu = GaugeMetricFamily("evfabric_server_cpu_ratio", "CPU use of the server process, in cores (1.0 = one core busy).",
                            labels=labels)
    cpu.add_metric(value, float(srv.get("cpu_percent", 0)) / 100)
    yield cpu


def _topics(snap: dict[str, Any]) -> Iterator[Metric]:
    labels = ["topic", "kind"]
    for name, help_, key in _TOPIC_COUNTERS:
        m: CounterMetricFamily | GaugeMetricFamily = CounterMetricFamily(name, help_, labels=labels)
        for r in snap["topics"]:
            if r.get(key) is not None:  # event figures are unknown without the tap
                m.add_metric([r["topic"], r["kind"]], float(r[key]))
        yield m
    for name, help_, key in _TOPIC_GAUGES:
        m = GaugeMetricFamily(name, help_, labels=labels)
        for r in snap["topics"]:
            if r.get(key) is not None:  # event figures are unknown without the tap
                m.add_metric([r["topic"], r["kind"]], float(r[key]))
        yield m


def _consumers(snap: dict[str, Any]) -> Iterator[Metric]:
    labels = ["topic", "consumer"]
    for name, help_, key in _CONSUMER_GAUGES:
        m = GaugeMetricFamily(name, help_, labels=labels)
        for c in snap["consumers"]:
            if c.get(key) is not None:
                m.add_metric([c["topic"], c["consumer"]], float(c[key]))
        yield m


def _counters(snap: dict[str, Any]) -> Iterator[Metric]:
    docs = {f.name: f.documentation for f in metrics.REGISTRY.collect()}
    families: dict[str, CounterMetricFamily] = {}
    label_names: dict[str, list[str]] = {}
    for c in snap["counters"]:
        name = c["name"]
        if name not in families:
            label_names[name] = sorted(c["labels"]) + ["client"]
            families[name] = CounterMetricFamily(name, docs.get(name) or _stats_help(name),
                                                 labels=label_names[name])
        if sorted(c["labels"]) + ["client"] != label_names[name]:
            continue  # a report with other labels than the first: skip rather than emit a broken family
        families[name].add_metric([c["labels"][k] for k in label_names[name][:-1]] + [c["client"]], c["value"])
    yield from families.values()


def _stats_help(name: str) -> str:
    field = name.removeprefix("evfabric_client_")
    return f"The {field!r} counter of an evfabric client's stats (FabricStats), as it last reported."


def render(monitor: Monitor) -> bytes:
    """The Prometheus text exposition of ``monitor``'s latest snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor))
    return generate_latest(registry)
