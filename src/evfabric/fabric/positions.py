"""Counting in events where JetStream counts messages (docs/wire.md section 8).

A stream sequence numbers messages; each evfabric message is a batch whose ``Evf-Count`` header
says how many events it holds. This module turns message figures into event figures:

* :func:`place` stamps received events with their positions (``<seq>:<index>``);
* :class:`HeaderScan` reads ``(stream sequence, events)`` pairs from a stream with a
  *headers-only* pull consumer (the broker sends headers, no payloads), from a sequence on;
* :class:`EventCounts` keeps those pairs for one stream and subject filter and reads only
  messages stored since its last refresh (an incremental count); what retention removed from
  the head is dropped when the stream's first sequence moves past it. It answers "events
  stored", "events after sequence s" and "events in message s".

A message's ``Evf-Count`` says how many events it holds; a single CloudEvent is one. A message
whose headers do not say (a version-0 batch without headers, a CloudEvents batch, a foreign or
MQTT message) is read whole (``STREAM.MSG.GET``) and counted as :func:`evfabric.wire.event_count`
does, and as one event where that finds none or the read is refused. A message deleted from the middle of a stream (``nats stream rmm``, not
retention) stays counted until the stream's head passes it.

Which stream and filter hold a topic is :mod:`evfabric.fabric.streams`' answer; this module is
given them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple

import nats.errors
import nats.js.errors as jserr
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from evfabric.core.errors import ConfigError, EvfabricError
from evfabric.core.event import Event
from evfabric.core.position import INDEX_BITS
from evfabric.fabric.streams import add_consumer
from evfabric.wire import event_count
from evfabric.wire.formats import CE_JSON

if TYPE_CHECKING:
    from evfabric.fabric.pull import PullConsumer

__all__ = ["SCAN_PREFIX", "AckSubject", "EventCounts", "EventLag", "HeaderScan", "StoredEvents", "ack_subject",
           "check_position", "consumer_filters", "message_events", "place"]

log = logging.getLogger("evfabric.fabric")

SCAN_BATCH = 4096  # messages per pull request of a scan (headers only: ~150 bytes each)
SCAN_PREFIX = "evf_scan_"  # the names of scan consumers (the monitor does not list them as readers)
SCAN_IDLE = 300.0  # seconds after which the broker deletes an unused scan consumer


def place(events: list[Event], seq: int) -> None:
    """Give the events of message ``seq`` their positions ``seq:0``, ``seq:1``... (one int each)."""
    base = seq << INDEX_BITS
    # C-level loop: setattr returns None, so any() runs it over every event
    any(map(setattr, events, repeat("packed_position"), range(base, base + len(events))))


def message_events(headers: Mapping[str, str] | None) -> int | None:
    """How many events a message holds, from its headers (``Evf-Count``, 1 for a single
    CloudEvent), or None when only its payload can tell."""
    if headers:
        claimed = headers.get("Evf-Count")
        if claimed is not None and claimed.isdigit():
            return int(claimed)
        ctype = headers.get("Content-Type", "")
        if "ce-specversion" in headers or "Nmqtt-Pub" in headers or ctype.startswith(CE_JSON):
            return 1  # one CloudEvent, one MQTT message
    return None


class AckSubject(NamedTuple):
    """What a JetStream ack subject says of its message:
    ``$JS.ACK[.<domain>.<hash>].<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>``."""

    attempt: int  # deliveries so far, this one included
    seq: int  # the stream sequence
    stored_ns: int  # when the broker stored it (ns since the epoch)
    pending: int  # messages pending after it


def ack_subject(reply: str) -> AckSubject | None:
    """The fields of ack subject ``reply``; None when it is not one."""
    parts = reply.split(".")
    try:
        return AckSubject(int(parts[-5]), int(parts[-4]), int(parts[-2]), int(parts[-1]))
    except (ValueError, IndexError):
        return None


class HeaderScan:
    """A headers-only pull consumer on ``stream`` (messages matching ``filters``) from sequence
    ``start`` on: :meth:`read` returns ``(sequence, events)`` for every message stored since the
    last read. Under access control it is created through the topic service like any consumer."""

    def __init__(self, js: Any, stream: str, filters: Sequence[str], start: int = 1) -> None:
        self.js = js
        self.nc = js._nc
        self.stream = stream
        self.filters = list(filters)
        self.next_seq = max(1, start)  # the first sequence not read yet
        self.name = ""
        self._inbox = ""
        self._sub: Any = None
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._requests = 0

    async def _open(self) -> None:
        self.name = f"{SCAN_PREFIX}{self.nc._nuid.next().decode()}"
        cfg = ConsumerConfig(
            durable_name=self.name, ack_policy=AckPolicy.NONE, headers_only=True, mem_storage=True,
            inactive_threshold=SCAN_IDLE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if self.next_seq > 1 else DeliverPolicy.ALL,
            opt_start_seq=self.next_seq if self.next_seq > 1 else None,
        )
        if len(self.filters) == 1:
            cfg.filter_subject = self.filters[0]
        elif self.filters:
            cfg.filter_subjects = self.filters
        await add_consumer(self.js, self.stream, cfg)
        if self._sub is None:
            self._inbox = self.nc.new_inbox()
            self._sub = await self.nc.subscribe(self._inbox + ".*", cb=self._queue.put)

    async def read(self, timeout: float = 5.0) -> list[tuple[int, int]]:
        """Every message stored (and matching) since the last read: ``(sequence, events)``."""
        if not self.name:
            await self._open()
        out: list[tuple[int, int]] = []
        while True:
            got, pending, alive = await self._pull(timeout)
            for i, (seq, n) in enumerate(got):
                if n < 0:  # the headers do not say: read the payload
                    got[i] = (seq, await self._payload_events(seq))
            out.extend(got)
            if not alive:  # the consumer is gone (idle too long, broker restarted): again from here
                await self._open()
                continue
            if pending == 0 or not got:
                return out

    async def _pull(self, timeout: float, batch: int = SCAN_BATCH) -> tuple[list[tuple[int, int]], int, bool]:
        """One no-wait pull: (pairs, messages still pending, whether the consumer exists)."""
        req = json.dumps({"batch": batch, "no_wait": True}).encode()
        self._requests += 1
        reply = f"{self._inbox}.{self._requests}"  # so that the status ending an earlier request is ignored
        await self.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.name}", req, reply=reply)
        got: list[tuple[int, int]] = []
        pending = -1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < batch:
            try:
                msg = await asyncio.wait_for(self._queue.get(), max(0.01, deadline - loop.time()))
            except TimeoutError:  # no answer: a consumer that is gone gets none
                return got, 0, bool(got) or await self._exists()
            hdr = msg.headers or {}
            status = hdr.get("Status")
            if status is not None:
                if status == "100" or msg.subject != reply:
                    continue  # a heartbeat, or the end of an earlier request
                if status in ("404", "408"):  # no (more) messages now
                    return got, 0, True
                if status == "503":  # no responders: the consumer (or its stream) is not there
                    return got, 0, False
                return got, 0, not (status == "409" and "Deleted" in hdr.get("Description", ""))
            if not msg.reply:  # a JSON error answer (no such consumer)
                return got, 0, False
            ack = ack_subject(msg.reply)
            seq, pending = (ack.seq, ack.pending) if ack is not None else (0, 0)
            if seq >= self.next_seq:
                n = message_events(hdr)
                got.append((seq, -1 if n is None else n))
                self.next_seq = seq + 1
            if pending == 0:
                break
        return got, pending, True

    async def _exists(self) -> bool:
        try:
            await self.js.consumer_info(self.stream, self.name)
        except jserr.NotFoundError:
            return False
        return True

    async def _payload_events(self, seq: int) -> int:
        try:
            msg = await self.js.get_msg(self.stream, seq)
        except (nats.errors.Error, jserr.Error) as exc:  # refused (access control) or gone
            log.debug("reading message %s/%d: %r", self.stream, seq, exc)
            return 1
        return event_count(msg.headers, msg.data or b"") or 1

    async def close(self) -> None:
        """Delete the consumer (it would expire on its own after :data:`SCAN_IDLE` s)."""
        try:
            if self._sub is not None:
                await self._sub.unsubscribe()
                self._sub = None
            if self.name:
                await self.js.delete_consumer(self.stream, self.name)
        except (nats.errors.Error, jserr.Error) as exc:
            log.debug("closing scan %s: %r", self.name, exc)
        self.name = ""


class EventCounts:
    """The events of each message of one stream (matching ``filters``), read incrementally.

    Keeps two arrays, the sequences read and the running total of events up to each (16 bytes
    per stored message); :meth:`refresh` reads only what was stored since the last one, and drops
    what lies below the stream's first sequence (removed by retention or purge).
    """

    def __init__(self, js: Any, stream: str, filters: Sequence[str], start: int = 1) -> None:
        self.scan = HeaderScan(js, stream, filters, start)
        self._start = max(1, start)
        self._closing: set[asyncio.Future[None]] = set()
        self._seqs = array("Q")
        self._totals = array("Q")  # _totals[i]: events in messages _seqs[:i + 1]
        self._head = 0  # entries before it are gone (below the stream's first sequence)
        self._lock = asyncio.Lock()

    @property
    def stream(self) -> str:
        return self.scan.stream

    def _before(self, i: int) -> int:
        return self._totals[i - 1] if i > 0 else 0

    async def refresh(self, first_seq: int | None = None, last_seq: int | None = None) -> None:
        """Read the messages stored since the last refresh; forget those below ``first_seq`` (the
        stream's first sequence now). ``last_seq`` (the stream's last) lets a refresh with nothing
        new skip the broker, and a stream recreated (last below what was read) start over."""
        async with self._lock:
            if last_seq is not None and last_seq < self.scan.next_seq - 1:
                await self._restart(first_seq or 1)
            if last_seq is None or last_seq >= self.scan.next_seq:
                try:
                    pairs = await self.scan.read()
                except BaseException:
                    self._interrupted()
                    raise
                for seq, n in pairs:
                    self._seqs.append(seq)
                    self._totals.append((self._totals[-1] if self._totals else 0) + n)
            if first_seq is not None:
                self.drop_below(first_seq)

    def _interrupted(self) -> None:
        """A read did not finish (cancelled, failed): what its scan consumed is not counted, so the
        next refresh reads again, with a new scan, from the message after the last one counted."""
        old = self.scan
        start = self._seqs[-1] + 1 if self._seqs else self._start
        self.scan = HeaderScan(old.js, old.stream, old.filters, start)
        if old.name:  # closed in the background: we may be being cancelled
            task = asyncio.ensure_future(old.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _restart(self, start: int) -> None:
        await self.scan.close()
        self.scan = HeaderScan(self.scan.js, self.scan.stream, self.scan.filters, start)
        self._seqs, self._totals, self._head, self._start = array("Q"), array("Q"), 0, start

    def drop_below(self, seq: int) -> None:
        """Forget the messages below sequence ``seq`` (no longer stored, or no longer of interest)."""
        head = max(self._head, bisect_left(self._seqs, seq))
        if head > 4096 and head > len(self._seqs) // 2:  # compact: keep memory to what is stored
            base = self._before(head)
            self._seqs = self._seqs[head:]
            self._totals = array("Q", (t - base for t in self._totals[head:]))
            head = 0
        self._head = head

    @property
    def messages(self) -> int:
        """Messages counted (stored, as far as the last refresh saw)."""
        return len(self._seqs) - self._head

    @property
    def events(self) -> int:
        """Events in the messages counted."""
        n = len(self._seqs)
        return self._totals[n - 1] - self._before(self._head) if n > self._head else 0

    def events_after(self, seq: int) -> int:
        """Events in the counted messages with a sequence above ``seq``."""
        i = max(self._head, bisect_right(self._seqs, seq))
        n = len(self._seqs)
        return self._totals[n - 1] - self._before(i) if n > i else 0

    def events_in(self, seq: int) -> int | None:
        """Events in message ``seq``, or None if it is not counted (not stored, not matching)."""
        i = bisect_left(self._seqs, seq)
        if i < self._head or i >= len(self._seqs) or self._seqs[i] != seq:
            return None
        return self._totals[i] - self._before(i)

    def keep_from(self, events: int) -> int | None:
        """The sequence of the oldest message to keep so that at most ``events`` events remain
        counted from it on (None when all fit): the retention trimmer's cut."""
        if self.events <= events:
            return None
        n = len(self._seqs)
        # keep messages i..n-1: the smallest i with totals[n-1] - totals[i-1] <= events
        i = bisect_left(self._totals, self._totals[n - 1] - events, lo=self._head) + 1
        return self._seqs[i] if i < n else self._seqs[n - 1] + 1

    async def close(self) -> None:
        """Delete the scan consumer."""
        await self.scan.close()


def consumer_filters(config: ConsumerConfig) -> list[str]:
    """The subject filters of a consumer configuration."""
    return [config.filter_subject] if config.filter_subject else list(config.filter_subjects or [])


async def check_position(js: Any, stream: str, filters: Sequence[str], seq: int, index: int) -> None:
    """ConfigError unless message ``seq`` is stored in ``stream`` (matching ``filters``) with more
    than ``index`` events: a replay from ``seq:index`` would otherwise start elsewhere silently."""
    scan = HeaderScan(js, stream, filters, seq)
    try:
        await scan._open()
        got, _pending, _alive = await scan._pull(5.0, batch=1)
    finally:
        await scan.close()
    first = got[0] if got else (0, 0)
    found, events = first
    if found != seq:
        where = f"the next stored is {found}" if found else "none is stored from there on"
        raise ConfigError(f"position {seq}:{index}: no message {seq} in the topic's stream ({where})")
    if index >= events:
        raise ConfigError(f"position {seq}:{index}: message {seq} holds {events} event{'s' * (events != 1)} "
                          f"(indices 0 to {events - 1})")


class EventLag:
    """Lag in events of reliable consumers (``AsyncClient.lag``): the events of the messages
    above each consumer's ack floor that this client has not settled, counted from their headers
    by one incremental :class:`EventCounts` per consumer (only messages stored since the last
    call are read).

    For a group, messages other members settled above the floor (acknowledged out of order) are
    still counted, until the floor passes them: at most ``max_ack_pending`` messages' worth. Where
    the broker refuses the scan consumer (the scans quota under access control) the lag is in
    messages, with a warning logged once per consumer.
    """

    def __init__(self, js: Any) -> None:
        self.js = js
        self._counts: dict[tuple[str, str], EventCounts] = {}
        self._warned: set[tuple[str, str]] = set()

    async def of(self, consumer: PullConsumer) -> int:
        """Events ``consumer`` has still to settle."""
        info = await self.js.consumer_info(consumer.stream, consumer.name)
        key = (consumer.stream, consumer.name)
        if not info.num_pending and not info.num_ack_pending:
            return 0
        floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = EventCounts(self.js, consumer.stream, consumer_filters(consumer.config),
                                                      floor + 1)
        try:
            await counts.refresh()
        except (EvfabricError, jserr.APIError) as exc:  # the scan refused (the scans quota): say so, in messages
            self._counts.pop(key, None)
            if key not in self._warned:
                self._warned.add(key)
                log.warning("lag of %s counts messages, not events: the broker refused the scan (%s)",
                            consumer.name, exc)
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        counts.drop_below(floor + 1)  # acknowledged: no longer of interest
        done, handling = consumer.progress(floor)
        total = counts.events_after(floor)
        for seq in done | handling.keys():
            total -= counts.events_in(seq) or 0
        return max(0, total + sum(handling.values()))

    async def forget(self, consumer: PullConsumer) -> None:
        """``consumer`` stopped: drop its counts (and their scan consumer)."""
        counts = self._counts.pop((consumer.stream, consumer.name), None)
        if counts is not None:
            await counts.close()


class StoredEvents:
    """Events stored per stream (and subject filter), one incremental :class:`EventCounts`
    each: what ``describe_topic`` and the monitor's dashboard show as stored events."""

    def __init__(self, js: Any) -> None:
        self.js = js
        self._counts: dict[tuple[str, tuple[str, ...]], EventCounts] = {}

    async def count(self, stream: str, filters: Sequence[str], first_seq: int, last_seq: int) -> int:
        """Events stored in ``stream`` (messages matching ``filters``) whose state is now
        ``first_seq``..``last_seq`` (as stream info gives them)."""
        key = (stream, tuple(filters))
        counts = self._counts.get(key)
        if counts is None:
            if last_seq < max(1, first_seq):
                return 0  # empty: no scan consumer for it
            counts = self._counts[key] = EventCounts(self.js, stream, filters, max(1, first_seq))
        await counts.refresh(first_seq, last_seq)
        return counts.events - counts.events_after(last_seq)  # as of the state given (more may be read)

    async def count_or_none(self, stream: str, filters: Sequence[str], first_seq: int, last_seq: int) -> int | None:
        """:meth:`count`, or None when the broker refuses the scan (the scans quota, access)."""
        try:
            return await self.count(stream, filters, first_seq, last_seq)
        except (EvfabricError, jserr.APIError) as exc:
            log.debug("no event count for %s: %r", stream, exc)
            self._counts.pop((stream, tuple(filters)), None)
            return None

    def counts(self, stream: str, filters: Sequence[str] = ()) -> EventCounts | None:
        """The counts kept for ``stream`` and ``filters`` (after a :meth:`count`)."""
        return self._counts.get((stream, tuple(filters)))

    async def keep_only(self, streams: set[str]) -> None:
        """Forget the streams not in ``streams`` (deleted)."""
        for key in [k for k in self._counts if k[0] not in streams]:
            await self._counts.pop(key).close()

    async def close(self) -> None:
        """Delete every scan consumer."""
        for counts in self._counts.values():
            await counts.close()
        self._counts.clear()
