"""The monitor: samples the broker, keeps history, and builds the snapshot every view shows.

:class:`Monitor` reads one NATS server's monitoring endpoint (and, with a broker URL, listens to
evfabric traffic and client reports through a :class:`~evfabric.monitor.tap.BrokerTap`). Each
:meth:`Monitor.sample` turns the readings into a *snapshot*: a JSON-ready dict with the server,
one row per topic, consumers, connections, triggers and drops (see ``docs/monitoring.md`` for the
meaning of every number). Totals are kept monotonic across resets (:class:`Totals`); rates are
per second between the last two samples. The Prometheus exporter, the dashboard and ``evfabric
top`` all read these snapshots.

Topic rows are keyed by topic *root*: a stream's topic, or for best-effort traffic the longest
stream topic covering it, else its first segment (the root a reliable publish would create).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from evfabric.core.errors import AccessDenied, BrokerUnavailable
from evfabric.monitor import metrics
from evfabric.monitor.history import History, Point, Totals
from evfabric.monitor.probe import BrokerProbe
from evfabric.monitor.sample import Sample, down_server, parse
from evfabric.monitor.tap import BrokerTap

__all__ = ["Monitor", "local_client_id"]

log = logging.getLogger("evfabric.monitor")

TAP_RETRY = 10.0  # seconds between attempts to connect the tap to a broker that refused


def local_client_id() -> str:
    """This process's name in reports and the ``client`` label, stable across restarts (a pid
    would start a new Prometheus series every time): ``$EVFABRIC_CLIENT_NAME`` when set, else
    ``<host>/<program>``. Processes of one program on one host share that name: give each its
    own (``EVFABRIC_CLIENT_NAME``, or ``MetricsReporter(client=...)``) when several run."""
    name = os.environ.get("EVFABRIC_CLIENT_NAME", "").strip()
    if name:
        return name
    program = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] not in ("", "-c", "-m") else "python"
    return f"{socket.gethostname().split('.')[0]}/{program or 'python'}"


def _root(topic: str, stream_topics: list[str]) -> str:
    for st in stream_topics:  # longest first
        if topic == st or topic.startswith(st + "."):
            return st
    head, _, _ = topic.partition(".")
    return head.rstrip("*?") or topic


class Monitor:
    """Samples a broker; thread-safe. ``monitor_url`` is the server's HTTP monitoring URL,
    ``url`` its NATS URL (needed only for the tap); ``tap`` defaults to ``url is not None``.

    :meth:`start` runs a daemon thread that samples every ``interval`` seconds; without it,
    samples are taken on demand (:meth:`latest`).
    """

    def __init__(self, monitor_url: str, url: str | None = None, *, tap: bool | None = None,
                 interval: float = 1.0, history: int = 600, timeout: float = 2.0) -> None:
        self.monitor_url = monitor_url
        self.url = url
        self.interval = interval
        self.history = History(history)
        self._probe = BrokerProbe(monitor_url, timeout)
        self._tap: BrokerTap | None = None
        self._want_tap = (url is not None) if tap is None else tap
        self._tap_retry_at = 0.0
        self.tap_refused: str | None = None  # why the broker refused the traffic tap (the token's rights)
        self._totals = Totals()
        self._lock = threading.RLock()
        self._last: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- sampling ----------------------------------------------------------------------------

    def _ensure_tap(self) -> BrokerTap | None:
        if self._want_tap and self._tap is None and self.url and time.monotonic() >= self._tap_retry_at:
            try:
                self._tap = BrokerTap(self.url, connect_timeout=2.0)
            except AccessDenied as exc:  # the token may not watch the traffic: broker figures only
                self.tap_refused = str(exc)
                self._want_tap = False
            except BrokerUnavailable:
                # Broker figures still flow; retry later rather than slow every sample down.
                self._tap_retry_at = time.monotonic() + TAP_RETRY
        return self._tap

    def sample(self) -> dict[str, Any]:
        """Read the broker now, add a point to the history, and return the snapshot (without
        history). A broker that does not answer gives a snapshot with ``server.up = False``."""
        with self._lock:
            now = time.time()
            try:
                raw = self._probe.read()
                if self._tap is None and self._ensure_tap() is not None:
                    raw = self._probe.read()  # again, so that this sample sees the tap's connection
                sample = parse(raw, now)
            except BrokerUnavailable as exc:
                sample = Sample(now, down_server(str(exc)), [], [], [])
            tap = self._tap
            traffic, reports, tap_dropped = tap.read() if tap else ({}, {}, 0)
            stored = tap.stored_events([(st.stream, st.first_seq, st.last_seq) for st in sample.streams
                                        if st.evfabric]) if tap else {}
            lags = tap.lag_events([(c.stream, c.name, c.filters, c.ack_floor, st.last_seq) for st in sample.streams
                                   if st.evfabric for c in st.consumers if c.lag]) if tap else {}
            snap = self._build(sample, traffic, reports, tap_dropped, tap is not None, stored, lags)
            self._last = snap
            return snap

    def latest(self, max_age: float | None = None) -> dict[str, Any]:
        """The last snapshot if younger than ``max_age`` seconds (default: ``interval``), else a
        new one."""
        max_age = self.interval if max_age is None else max_age
        with self._lock:
            if self._last is not None and time.time() - self._last["time"] < max_age:
                return self._last
            return self.sample()

    def snapshot(self, history_seconds: float | None = 120.0) -> dict[str, Any]:
        """The latest snapshot plus ``history``: time series over the last ``history_seconds``
        (see :meth:`History.series`)."""
        with self._lock:
            snap = dict(self.latest())
            snap["history"] = self.history.series(history_seconds)
            return snap

    # --- background sampling -----------------------------------------------------------------

    def start(self) -> Monitor:
        """Sample every ``interval`` seconds in a daemon thread (idempotent)."""
        with self._lock:  # two first requests at once must not start two samplers
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="evfabric-monitor", daemon=True)
                self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample()
            except Exception as exc:  # one failed sample (broker restarting) must not stop sampling
                log.debug("monitor sample failed: %r", exc)
            self._stop.wait(max(0.05, self.interval - (time.monotonic() - started)))

    def close(self) -> None:
        """Stop the sampler thread and the tap, and release connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._tap is not None:
            self._tap.close()
            self._tap = None
        self._probe.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- building the snapshot ---------------------------------------------------------------

    def _build(self, s: Sample, traffic: dict[str, Any], reports: dict[str, dict[str, Any]],
               tap_dropped: int, tapping: bool, stored: dict[str, int] | None = None,
               lags: dict[tuple[str, str], int] | None = None) -> dict[str, Any]:
        tot = self._totals
        rows: dict[str, dict[str, Any]] = {}

        def row(topic: str, kind: str) -> dict[str, Any]:
            r = rows.get(topic)
            if r is None:
                r = rows[topic] = {
                    "topic": topic, "kind": kind, "stream": "", "stored_messages": 0, "stored_events": None,
                    "stored_bytes": 0,
                    "removed": 0, "messages_in": 0, "bytes_in": 0, "messages_out": 0,
                    "published_messages": 0, "published_bytes": 0, "published_events": 0,
                    "lag": 0, "lag_events": None, "pending": 0, "ack_pending": 0, "redelivered": 0, "consumers": 0,
                    "subscriptions": 0,
                }
            return r

        consumers: list[dict[str, Any]] = []
        for st in s.streams:
            r = row(st.topic, "reliable" if st.evfabric else "stream")
            r.update(stream=st.stream, stored_messages=st.messages, stored_bytes=st.bytes, removed=st.removed,
                     consumers=len(st.consumers), stored_events=(stored or {}).get(st.stream))
            key = ("stream", st.stream)
            before = tot.get(key + ("in",))
            r["messages_in"] = int(tot.update(key + ("in",), st.last_seq))
            # Bytes in: the server counts stored bytes only; new messages are valued at the
            # stream's average stored size (exact while nothing is removed, an estimate after).
            avg = st.bytes / st.messages if st.messages else 0.0
            r["bytes_in"] = int(tot.add(key + ("bytes",), (r["messages_in"] - before) * avg))
            out = 0.0
            lag_events: int | None = 0 if tapping and st.evfabric else None  # known when each consumer's is
            for c in st.consumers:
                c_events = 0 if not c.lag else (lags or {}).get((st.stream, c.name))
                lag_events = None if lag_events is None or c_events is None else lag_events + c_events
                out += tot.update(("consumer", st.stream, c.name), c.delivered)
                r["pending"] += c.pending
                r["ack_pending"] += c.ack_pending
                r["redelivered"] += c.redelivered
                consumers.append({"topic": st.topic, "stream": st.stream, "consumer": c.name, "lag": c.lag,
                                  "lag_events": c_events if st.evfabric else None,
                                  "pending": c.pending, "ack_pending": c.ack_pending,
                                  "redelivered": c.redelivered, "delivered": c.delivered,
                                  "waiting": c.waiting, "last_active": c.last_active})
            r["messages_out"] = int(out)
            r["lag"] = r["pending"] + r["ack_pending"]
            r["lag_events"] = lag_events

        roots = sorted((st.topic for st in s.streams if st.evfabric), key=len, reverse=True)
        for sub in s.core:
            r = row(_root(sub.pattern, roots), "best_effort")
            r["subscriptions"] += sub.subscriptions
            r["messages_out"] += int(tot.update(("core", sub.pattern), sub.delivered))
        for topic, t in traffic.items():
            r = row(_root(topic, roots), "best_effort")
            r["published_messages"] += t.messages
            r["published_bytes"] += t.bytes
            r["published_events"] += t.events

        srv = s.server
        server = {k: v for k, v in vars(srv).items()}
        for k in ("in_msgs", "out_msgs", "in_bytes", "out_bytes", "slow_consumers"):
            server[k] = int(tot.update(("server", k), getattr(srv, k)))

        counters = self._counters(reports)
        triggers: dict[str, dict[str, Any]] = {}
        dropped_by: dict[tuple[str, str], float] = {}
        for name, labels, value, _client in counters:
            if name == "evfabric_trigger_invocations":
                t = triggers.setdefault(labels.get("trigger", ""), {"trigger": labels.get("trigger", ""),
                                        **{st: 0 for st in metrics.TRIGGER_STATUSES}})
                t[labels.get("status", "ok")] = t.get(labels.get("status", "ok"), 0) + int(value)
            elif name == "evfabric_client_dropped":  # FabricStats.dropped, shipped by a reporter
                dropped_by[("(any)", "client_dropped")] = dropped_by.get(("(any)", "client_dropped"), 0) + value
            elif name == metrics.DROPPED_EVENTS:
                where = (labels.get("topic", ""), labels.get("reason", ""))
                dropped_by[where] = dropped_by.get(where, 0) + value

        point = Point(s.time)
        for name, r in rows.items():
            point.topics[name] = {k: float(r[k]) for k in ("messages_in", "bytes_in", "messages_out",
                                  "published_messages", "published_bytes", "published_events", "lag")}
        point.server = {k: float(server[k]) for k in ("in_msgs", "out_msgs", "in_bytes", "out_bytes",
                                                       "connections")}
        self.history.add(point)
        for name, r in rows.items():
            r["rates"] = {k: round(self.history.rates(k, name), 3) for k in (
                "messages_in", "bytes_in", "messages_out", "published_messages", "published_bytes",
                "published_events")}
        server["rates"] = {k: round(self.history.rates(k), 3) for k in ("in_msgs", "out_msgs", "in_bytes",
                                                                        "out_bytes")}
        return {
            "time": s.time,
            "monitor_url": self.monitor_url,
            "tap": tapping,
            "server": server,
            "topics": sorted(rows.values(), key=lambda r: r["topic"]),
            "consumers": consumers,
            "connections": [vars(c) for c in s.connections],
            "triggers": sorted(triggers.values(), key=lambda t: t["trigger"]),
            "drops": {
                "slow_consumers": server["slow_consumers"],
                "tap_dropped": tap_dropped,
                "removed_by_retention": sum(r["removed"] for r in rows.values()),
                "client": [{"topic": t, "reason": why, "events": int(v)} for (t, why), v in sorted(dropped_by.items())],
            },
            "clients": sorted(reports),
            "counters": [{"name": n, "labels": lb, "value": v, "client": c} for n, lb, v, c in counters],
        }

    def _counters(self, reports: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, str], float, str]]:
        """This process's counters and every client's last report, each with its client id."""
        me = local_client_id()
        out = [(n, lb, v, me) for n, lb, v in metrics.counter_samples()]
        for client, rep in sorted(reports.items()):
            if client == me:
                continue  # a reporter in this very process: its figures are already counted
            for c in rep.get("counters") or []:
                try:
                    out.append((str(c["name"]), {str(k): str(v) for k, v in c["labels"].items()},
                                float(c["value"]), client))
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue
        return out
