"""One monitoring sample: the broker's documents turned into evfabric terms (topics, consumers).

A JetStream stream made by evfabric carries its topic name in its metadata (see
:mod:`evfabric.fabric.streams`); streams made by others appear under their stream name with
``evfabric=False``. Best-effort (core NATS) subscriptions appear as ``core`` topics, keyed by the
topic pattern they subscribe to (``evf.*.*.jobs.>`` is the pattern ``jobs.*``).

Every number here is a *reading* at one instant. Readings that only grow while the stream or
consumer lives (``last_seq``, ``delivered``) are turned into monotonic totals and rates by
:mod:`evfabric.monitor.history`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evfabric.fabric.positions import SCAN_PREFIX
from evfabric.fabric.subjects import PREFIX
from evfabric.monitor.probe import RawSample

__all__ = [
    "TAP_NAME",
    "ConnectionReading",
    "ConsumerReading",
    "CoreSubReading",
    "Sample",
    "ServerReading",
    "StreamReading",
    "parse",
]

TAP_NAME = "evfabric-monitor-tap"  # the monitor's own connection; excluded from core readings


@dataclass
class ConsumerReading:
    """A JetStream consumer: ``pending`` (not yet delivered), ``ack_pending`` (delivered, not yet
    acknowledged), ``redelivered`` (outstanding messages delivered more than once), ``delivered``
    (deliveries so far, redeliveries included), ``waiting`` (open pull requests)."""

    topic: str
    stream: str
    name: str
    pending: int
    ack_pending: int
    redelivered: int
    delivered: int
    waiting: int
    last_active: str = ""
    ack_floor: int = 0  # the stream sequence below which every message is acknowledged
    filters: list[str] = field(default_factory=list)  # its subject filters ([]: the whole stream)

    @property
    def lag(self) -> int:
        """Messages this consumer has not finished: ``pending + ack_pending``."""
        return self.pending + self.ack_pending


@dataclass
class StreamReading:
    """A stream: ``last_seq`` counts every message ever stored (it never goes back while the
    stream lives); ``messages``/``bytes`` are what is stored now; ``removed`` is how many left
    the head (retention limits, age, purge): ``first_seq - 1``."""

    topic: str
    stream: str
    evfabric: bool
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    removed: int
    consumers: list[ConsumerReading] = field(default_factory=list)


@dataclass
class CoreSubReading:
    """Best-effort subscriptions to one topic pattern: how many, and messages delivered to them
    (the server's per-subscription ``msgs``, summed; a message is one batch of events)."""

    pattern: str
    subscriptions: int
    delivered: int


@dataclass
class ConnectionReading:
    """One client connection as ``/connz`` reports it."""

    cid: int
    name: str
    lang: str
    ip: str
    in_msgs: int
    out_msgs: int
    in_bytes: int
    out_bytes: int
    pending_bytes: int
    subscriptions: int
    rtt: str


@dataclass
class ServerReading:
    """Server-wide figures (``/varz``) and health (``/healthz``)."""

    server_id: str
    name: str
    version: str
    up: bool
    healthy: bool
    health_error: str
    uptime: str
    connections: int
    total_connections: int
    subscriptions: int
    slow_consumers: int
    in_msgs: int
    out_msgs: int
    in_bytes: int
    out_bytes: int
    mem_bytes: int
    cpu_percent: float
    jetstream: bool
    js_storage_bytes: int
    js_memory_bytes: int
    js_api_total: int
    js_api_errors: int


@dataclass
class Sample:
    """Everything read at ``time`` (seconds since the epoch)."""

    time: float
    server: ServerReading
    streams: list[StreamReading]
    core: list[CoreSubReading]
    connections: list[ConnectionReading]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def down_server(error: str) -> ServerReading:
    """The reading for a server whose monitoring endpoint does not answer."""
    return ServerReading("", "", "", False, False, error, "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, False,
                         0, 0, 0, 0)


def _server(raw: RawSample) -> ServerReading:
    v = raw.varz
    js = (v.get("jetstream") or {}).get("stats") or {}
    api = js.get("api") or {}
    return ServerReading(
        server_id=v.get("server_id", ""), name=v.get("server_name", ""), version=v.get("version", ""),
        up=True, healthy=raw.healthy, health_error=raw.health_error, uptime=v.get("uptime", ""),
        connections=v.get("connections", 0), total_connections=v.get("total_connections", 0),
        subscriptions=v.get("subscriptions", 0), slow_consumers=v.get("slow_consumers", 0),
        in_msgs=v.get("in_msgs", 0), out_msgs=v.get("out_msgs", 0), in_bytes=v.get("in_bytes", 0),
        out_bytes=v.get("out_bytes", 0), mem_bytes=v.get("mem", 0), cpu_percent=float(v.get("cpu", 0.0)),
        jetstream=bool((v.get("jetstream") or {}).get("config")),
        js_storage_bytes=js.get("storage", 0), js_memory_bytes=js.get("memory", 0),
        js_api_total=api.get("total", 0), js_api_errors=api.get("errors", 0),
    )


def _streams(jsz: dict[str, Any]) -> list[StreamReading]:
    out: list[StreamReading] = []
    for account in jsz.get("account_details") or []:
        for sd in account.get("stream_detail") or []:
            name = sd.get("name", "")
            meta = (sd.get("config") or {}).get("metadata") or {}
            topic = meta.get("evfabric_topic") or name
            st = sd.get("state") or {}
            first, last = st.get("first_seq", 0), st.get("last_seq", 0)
            reading = StreamReading(topic, name, "evfabric_topic" in meta, st.get("messages", 0),
                                    st.get("bytes", 0), first, last, max(0, first - 1))
            for cd in sd.get("consumer_detail") or []:
                if cd.get("name", "").startswith(SCAN_PREFIX):
                    continue  # evfabric's own headers-only scans (event counts), not a reader
                reading.consumers.append(ConsumerReading(
                    topic=topic, stream=name, name=cd.get("name", ""),
                    pending=cd.get("num_pending", 0), ack_pending=cd.get("num_ack_pending", 0),
                    redelivered=cd.get("num_redelivered", 0),
                    delivered=(cd.get("delivered") or {}).get("consumer_seq", 0),
                    waiting=cd.get("num_waiting", 0),
                    last_active=(cd.get("delivered") or {}).get("last_active", "") or "",
                    ack_floor=(cd.get("ack_floor") or {}).get("stream_seq", 0),
                    filters=_filters(cd.get("config") or {}),
                ))
            out.append(reading)
    return sorted(out, key=lambda r: r.topic)


def _filters(config: dict[str, Any]) -> list[str]:
    one = config.get("filter_subject")
    return [one] if one else list(config.get("filter_subjects") or [])


def subject_pattern(subject: str) -> str | None:
    """The topic pattern an evfabric subscription subject stands for (``evf.*.*.a.>`` is ``a.*``),
    or None for a subject outside evfabric's ``evf.<publisher>.<partition>.`` space."""
    parts = subject.split(".", 3)
    if len(parts) != 4 or parts[0] != PREFIX or not parts[1] or not (parts[2] == "*" or parts[2].isdigit()):
        return None
    segs = ["*" if s == ">" else "?" if s == "*" else s for s in parts[3].split(".")]
    return ".".join(segs)


def _core(connz: dict[str, Any]) -> list[CoreSubReading]:
    acc: dict[str, CoreSubReading] = {}
    for conn in connz.get("connections") or []:
        if conn.get("name") == TAP_NAME:
            continue
        for sub in conn.get("subscriptions_list_detail") or []:
            pattern = subject_pattern(sub.get("subject", ""))
            if pattern is None:
                continue
            r = acc.setdefault(pattern, CoreSubReading(pattern, 0, 0))
            r.subscriptions += 1
            r.delivered += sub.get("msgs", 0)
    return sorted(acc.values(), key=lambda r: r.pattern)


def _connections(connz: dict[str, Any]) -> list[ConnectionReading]:
    return [ConnectionReading(
        cid=c.get("cid", 0), name=c.get("name", ""), lang=c.get("lang", ""), ip=c.get("ip", ""),
        in_msgs=c.get("in_msgs", 0), out_msgs=c.get("out_msgs", 0), in_bytes=c.get("in_bytes", 0),
        out_bytes=c.get("out_bytes", 0), pending_bytes=c.get("pending_bytes", 0),
        subscriptions=c.get("subscriptions", 0), rtt=c.get("rtt", ""),
    ) for c in connz.get("connections") or []]


def parse(raw: RawSample, now: float) -> Sample:
    """Interpret one :class:`RawSample` read at ``now``."""
    return Sample(now, _server(raw), _streams(raw.jsz), _core(raw.connz), _connections(raw.connz))
