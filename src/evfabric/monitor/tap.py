"""A listening connection to the broker: counts evfabric traffic per topic and collects reports.

The NATS server keeps no per-subject counters, so the only way to see *published* best-effort
traffic per topic is to listen to it. The tap subscribes to ``evf.>`` (every evfabric subject,
best-effort and reliable publishes alike) and counts, per topic, messages (batches), payload bytes
and events (the length of the MessagePack array, read from its header without decoding). It
costs one extra copy of every evfabric message delivered to the monitor's process: turn it off
(``Monitor(tap=False)``) on a broker where that matters; the stream figures do not need it.

The same connection receives :mod:`evfabric.monitor.reporter` reports on ``_evf.metrics.>``,
and counts the events each evfabric stream stores (:meth:`BrokerTap.stored_events`: a
headers-only scan of the messages stored since the last sample, see
:class:`~evfabric.fabric.positions.StoredEvents`).

It runs its own asyncio loop in a daemon thread, so the (synchronous) monitor can use it from
anywhere. Messages the tap could not keep up with are dropped by nats-py and counted in
``dropped``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors

from evfabric.core.errors import AccessDenied, BrokerUnavailable
from evfabric.fabric.positions import EventCounts, StoredEvents
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.subjects import PREFIX, topic_of_subject
from evfabric.monitor.sample import TAP_NAME
from evfabric.wire import event_count

__all__ = ["REPORT_SUBJECT", "BrokerTap", "TopicTraffic", "batch_length"]

log = logging.getLogger("evfabric.monitor")

REPORT_SUBJECT = "_evf.metrics"  # reports travel on _evf.metrics.<client id>
MAX_TOPICS = 1000  # beyond this many distinct topics, traffic is counted under "(other)"


@dataclass
class TopicTraffic:
    """What was published on one topic since the tap started."""

    messages: int = 0
    bytes: int = 0
    events: int = 0


def batch_length(data: bytes) -> int:
    """Number of events in an encoded batch: the MessagePack array header's length (0 if the
    payload is not an array)."""
    if not data:
        return 0
    b = data[0]
    if 0x90 <= b <= 0x9F:
        return b & 0x0F
    if b == 0xDC and len(data) >= 3:
        return int.from_bytes(data[1:3], "big")
    if b == 0xDD and len(data) >= 5:
        return int.from_bytes(data[1:5], "big")
    return 0


class BrokerTap:
    """Counts traffic on ``evf.>`` and keeps the latest report of each client."""

    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.traffic: dict[str, TopicTraffic] = {}
        self.reports: dict[str, dict[str, Any]] = {}
        self.dropped = 0
        self._timeout = connect_timeout
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="evfabric-tap", daemon=True)
        self._thread.start()
        self._nc: Any = None
        self._stored: StoredEvents | None = None
        self._lags: dict[tuple[str, str], EventCounts] = {}
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        try:
            fut.result(connect_timeout + 1)
        except AccessDenied:
            self._stop_loop()
            raise
        except Exception as exc:
            fut.cancel()
            self._stop_loop()
            raise BrokerUnavailable(f"monitor tap cannot connect to {url}: {exc}") from exc

    async def _start(self) -> None:
        refused: list[str] = []

        async def on_error(exc: Exception) -> None:
            if isinstance(exc, nats.errors.SlowConsumerError):
                with self._lock:
                    self.dropped += 1
            elif "permissions violation" in str(exc).lower():
                refused.append(str(exc).removeprefix("nats: "))

        self._nc = await nats.connect(self.url, name=TAP_NAME, error_cb=on_error, connect_timeout=self._timeout,
                                      max_reconnect_attempts=-1)
        await self._nc.subscribe(f"{PREFIX}.>", cb=self._on_traffic, pending_msgs_limit=65536)
        await self._nc.subscribe(f"{REPORT_SUBJECT}.>", cb=self._on_report)
        await flush(self._nc)  # behind the SUBs: a refusal of one comes before this PONG
        if refused:
            await self._nc.close()
            raise AccessDenied(f"the broker refused the monitor's traffic tap ({refused[0]}): watching every "
                               "topic needs an administrator's token")

    async def _on_traffic(self, msg: Any) -> None:
        topic = topic_of_subject(msg.subject)
        if topic is None:
            return
        with self._lock:
            t = self.traffic.get(topic)
            if t is None:
                if len(self.traffic) >= MAX_TOPICS:
                    topic = "(other)"
                t = self.traffic.setdefault(topic, TopicTraffic())
            t.messages += 1
            t.bytes += len(msg.data)
            t.events += event_count(msg.headers, msg.data)  # Evf-Count, whatever the format

    async def _on_report(self, msg: Any) -> None:
        try:
            report = json.loads(msg.data)
            client = str(report["client"])
        except (ValueError, KeyError, TypeError):
            return  # not a report: ignore rather than fail the monitor
        report["received"] = time.time()
        with self._lock:
            self.reports[client] = report

    def read(self) -> tuple[dict[str, TopicTraffic], dict[str, dict[str, Any]], int]:
        """A copy of (traffic per topic, latest report per client, dropped count)."""
        with self._lock:
            return ({k: TopicTraffic(v.messages, v.bytes, v.events) for k, v in self.traffic.items()},
                    dict(self.reports), self.dropped)

    def stored_events(self, streams: list[tuple[str, int, int]], timeout: float = 5.0) -> dict[str, int]:
        """Events stored in each of ``streams`` (``(name, first_seq, last_seq)`` as just read),
        counted incrementally; a stream whose count failed (or took longer than ``timeout``) is
        left out."""
        return self._run(self._count(streams), timeout)

    def lag_events(self, consumers: list[tuple[str, str, list[str], int, int]], timeout: float = 5.0
                   ) -> dict[tuple[str, str], int]:
        """Events above the ack floor of each of ``consumers`` (``(stream, name, filters,
        ack floor, the stream's last sequence as read)``, those with a lag), counted
        incrementally per consumer, up to that last sequence. Messages other readers acknowledged
        out of order above the floor are still counted."""
        return self._run(self._lag(consumers), timeout)

    def _run(self, coro: Any, timeout: float) -> Any:
        if self._nc is None or not self._nc.is_connected:
            coro.close()
            return {}
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except Exception as exc:  # slow or a broker restarting: this sample shows no event counts
            log.debug("counting events failed: %r", exc)  # (a slow count goes on, for the next sample)
            return {}

    async def _lag(self, consumers: list[tuple[str, str, list[str], int, int]]) -> dict[tuple[str, str], int]:
        wanted = {(stream, name) for stream, name, _, _, _ in consumers}
        for key in [k for k in self._lags if k not in wanted]:
            await self._lags.pop(key).close()
        out: dict[tuple[str, str], int] = {}
        for stream, name, filters, floor, last in consumers:
            counts = self._lags.get((stream, name))
            if counts is None:
                counts = self._lags[(stream, name)] = EventCounts(self._nc.jetstream(), stream, filters, floor + 1)
            try:
                await counts.refresh()
            except (nats.errors.Error, OSError) as exc:
                log.debug("counting the lag of %s/%s failed: %r", stream, name, exc)
                continue
            counts.drop_below(floor + 1)
            out[(stream, name)] = counts.events_after(floor) - counts.events_after(last)  # as of the reading
        return out

    async def _count(self, streams: list[tuple[str, int, int]]) -> dict[str, int]:
        if self._stored is None:
            self._stored = StoredEvents(self._nc.jetstream())
        await self._stored.keep_only({name for name, _, _ in streams})
        out: dict[str, int] = {}
        for name, first, last in streams:
            try:
                out[name] = await self._stored.count(name, [], first, last)
            except (nats.errors.Error, OSError) as exc:
                log.debug("counting the events of %s failed: %r", name, exc)
        return out

    def flush(self, timeout: float = 2.0) -> None:
        """One round trip to the broker on the tap's connection (lets in-flight traffic arrive)."""
        if self._nc is not None and self._nc.is_connected:
            asyncio.run_coroutine_threadsafe(flush(self._nc, timeout), self._loop).result(timeout + 1)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def close(self) -> None:
        """Disconnect and stop the thread."""
        if self._nc is not None:
            try:
                if self._stored is not None:
                    asyncio.run_coroutine_threadsafe(self._stored.close(), self._loop).result(5)
                for counts in self._lags.values():
                    asyncio.run_coroutine_threadsafe(counts.close(), self._loop).result(5)
                asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(5)
            except Exception as exc:
                log.debug("closing the monitor tap's connection failed: %r", exc)
            self._nc = None
        if self._thread.is_alive():
            self._stop_loop()
