"""The asyncio fabric client: ``client = await evfabric.connect_async(url)``.

The same publish / subscribe / listener model as the in-process
:class:`~evfabric.local.EventService`, over a NATS broker:

    client = await connect_async("nats://127.0.0.1:4222", source="lab.robot1")
    sub = await client.subscribe("lab.*.temperature", "body.celsius > 30.0")
    sub.add_listener(lambda ev: print(ev.topic, ev.body))        # or an async def
    await client.publish("lab.room1.temperature", {"celsius": 31.5})
    await client.publish("jobs.done", {"id": 7}, delivery="reliable")  # returns once stored

Listeners run in the client's in-process service (``mode``: ``asyncio`` here; the synchronous
:class:`~evfabric.fabric.client.Client` uses ``threads`` or ``sync``). Delivery modes, batching,
topics, replay and groups: see :mod:`evfabric.fabric` and docs/fabric.md.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import count, islice
from typing import Any, Coroutine, TypeVar

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from evfabric.core.errors import BrokerUnavailable, ConfigError, NotFound, QueueFull, ServiceClosed
from evfabric.core.event import BEST_EFFORT, RELIABLE, Body, Event, check_body, flat_bodies, new_ids, stamp
from evfabric.core.filters import Filter
from evfabric.core.topics import MANY, ONE, Pattern, check_publishable
from evfabric.fabric.batching import Batcher, Ticket
from evfabric.fabric.consumers import CoreConsumer, PullConsumer, consumer_config
from evfabric.fabric.delivery import DeliveryPolicy, Rule, check_mode
from evfabric.fabric.losses import LossReport
from evfabric.fabric.publisher import Publisher
from evfabric.fabric.replay import Start
from evfabric.fabric.streams import (
    TopicCatalog, TopicConfig, TopicInfo, create_topic, delete_topic, describe_topic, list_topics, update_topic,
)
from evfabric.fabric.subjects import intersect, partition_of, pattern_filter, pattern_reaches, topic_subject
from evfabric.fabric.subscription import FabricSubscription
from evfabric.local.service import EventService

__all__ = ["AsyncClient", "FabricStats", "connect_async"]

T = TypeVar("T")

@dataclass
class FabricStats:
    """Counters of one client (events unless said)."""

    published: int = 0  # accepted by publish calls
    sent: int = 0  # best effort, handed to the connection
    stored: int = 0  # reliable, acknowledged by the broker
    resent: int = 0  # reliable batches sent again (no acknowledgement in time)
    duplicate_batches: int = 0  # re-sent batches the broker had already stored
    dropped: int = 0  # best effort, dropped (disconnected, overflow, backlog)
    slow_consumer_msgs: int = 0  # messages nats-py dropped for a slow subscription
    garbage: int = 0  # received messages that did not decode
    disconnects: int = 0
    reconnects: int = 0


class AsyncClient:
    """A connection to the fabric, driven from asyncio. Create it with :func:`connect_async`."""

    def __init__(self, nc: NatsClient, *, source: str, mode: str, delivery: str, max_batch: int, max_batch_bytes: int,
                 max_pending: int, overflow: str, linger: float, ack_timeout: float, window: int,
                 auto_topics: TopicConfig | None, max_backlog: int, publish_timeout: float | None) -> None:
        if overflow not in ("block", "raise", "drop"):
            raise ConfigError(f"overflow must be 'block', 'raise' or 'drop', got {overflow!r}")
        self.nc = nc
        self.js = nc.jetstream()
        self.source = source
        self.overflow = overflow
        self.max_backlog = max_backlog
        self.publish_timeout = publish_timeout
        self.policy = DeliveryPolicy(delivery)
        self.stats = FabricStats()
        self.catalog = TopicCatalog(self.js)
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.local = EventService(source=source, mode=mode, queue_size=max(max_backlog * 4, 1024),  # type: ignore[arg-type]
                                  loop=self._loop if mode == "asyncio" else None)
        self.batcher = Batcher(max_batch, max_batch_bytes, max_pending)
        self.publisher = Publisher(self, self.batcher, ack_timeout=ack_timeout, window=window, linger=linger,
                                   auto_topics=auto_topics)
        self._subs: list[FabricSubscription] = []
        self._by_sid: dict[int, FabricSubscription] = {}
        self._names = count(1)
        self._spread = count()
        self.losses = LossReport(self.stats, self.local)
        self._closed = False
        self._reporter: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        await self.publisher.start()
        try:
            await self.catalog.load()
        except Exception:  # JetStream may be off (core-only server): best effort still works
            pass
        self._reporter = self._loop.create_task(self.losses.run(), name="evfabric-report")

    # -- threads and loops ----------------------------------------------------------------------

    def on_loop_thread(self) -> bool:
        """True when called from the thread running this client's event loop."""
        return threading.get_ident() == self._loop_thread

    def call_on_loop(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the client's loop: now if already there, else soon."""
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _call_blocking(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        if self.on_loop_thread():
            coro.close()
            raise RuntimeError("this call blocks: on the client's own loop, await the client's coroutine instead")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- building and routing events (thread-safe; used by both front ends) ---------------------------

    def build(self, topic: str, body: Body | None, header: dict[str, Any]) -> Event:
        """Validate and stamp a new event (as the local service does); raise on bad input."""
        if self._closed:
            raise ServiceClosed("the fabric client is closed")
        check_publishable(topic)
        body = {} if body is None else check_body(body)
        if header:
            return self.local._event_with_header(topic, body, header)
        eid, now = stamp()
        return Event(id=eid, topic=topic, source=self.source, time=now, seq=next(self.local._seq), body=body)

    def route(self, event: Event, delivery: str | None) -> tuple[str, str]:
        """(subject, mode) for ``event``; stamps the mode in ``event.delivery``."""
        if delivery is not None:
            mode = check_mode(delivery)
        elif self.policy.has_rules:
            mode = self.policy.for_event(event)
        else:
            mode = self.policy.for_topic(event.topic)
        if event.delivery != mode:
            event.delivery = mode  # type: ignore[assignment]
        cover = self.catalog.covering(event.topic)
        if cover is None or cover.partitions == 1:
            return topic_subject(event.topic), mode
        if event.key is not None:
            return topic_subject(event.topic, partition_of(event.key, cover.partitions)), mode
        # unkeyed events spread over partitions in runs, so that runs still batch well
        return topic_subject(event.topic, (next(self._spread) >> 8) % cover.partitions), mode

    def offer(self, event: Event, subject: str, mode: str) -> Ticket | None:
        """Hand ``event`` to the batcher; None when it is full (see ``overflow``)."""
        ticket, wake = self.batcher.add(subject, mode, event)
        if ticket is None:
            return None
        self.stats.published += 1
        if wake:
            self.call_on_loop(self.publisher.wake)
        return ticket

    def offer_many(self, events: list[Event], subject: str, mode: str) -> Ticket | None:
        """Hand several events of one subject to the batcher (all or none)."""
        ticket, wake = self.batcher.add_many(subject, mode, events)
        if ticket is None:
            return None
        self.stats.published += len(events)
        if wake:
            self.call_on_loop(self.publisher.wake)
        return ticket

    def full(self, event: Event, mode: str) -> Ticket | None:
        """Apply the overflow policy to a full batcher: a done ticket (dropped), None (wait), or raise."""
        if self.overflow == "drop" and mode == BEST_EFFORT:
            self.losses.drop("overflow", event.topic, 1)
            done = Ticket()
            done._seal(0)
            return done
        if self.overflow == "block":
            return None  # the caller waits for room (a thread blocks; a coroutine sleeps)
        raise QueueFull(f"{self.batcher.max_pending} events await the broker; event {event.id} on {event.topic!r} "
                        f"was not accepted (overflow='raise')")

    def build_many(self, topic: str, bodies: Iterable[Body], header: dict[str, Any]) -> list[Event]:
        """Events for ``bodies`` on one topic, all with the same header fields and timestamp."""
        bodies = bodies if isinstance(bodies, list) else list(bodies)
        if not bodies:
            return []
        t = self.build(topic, bodies[0], header)  # validates topic and header once
        rest = bodies[1:]
        if not flat_bodies(rest):  # nested values (or garbage): the full check, per body
            for body in rest:
                check_body(body)
        # One comprehension over pre-drawn ids and sequence numbers: a loop with calls per
        # event cost twice as much.
        n, now, source, etype, mode = len(rest), t.time, t.source, t.type, t.delivery
        ttl, key, extra = t.ttl, t.key, t.extra
        return [t] + [
            Event(id=eid, topic=topic, source=source, time=now, type=etype, seq=seq, delivery=mode, ttl=ttl, key=key,
                  extra=extra, body=body)
            for eid, seq, body in zip(new_ids(n, now), islice(self.local._seq, n), rest)
        ]

    # -- publishing (asyncio) -----------------------------------------------------------------------

    async def _offer_waiting(self, event: Event, subject: str, mode: str) -> Ticket:
        while True:
            ticket = self.offer(event, subject, mode) or self.full(event, mode)
            if ticket is not None:
                return ticket
            await asyncio.sleep(0.001)  # overflow='block': wait for room without blocking the loop

    async def submit(self, topic: str, body: Body | None = None, *, delivery: str | None = None,
                     **header: Any) -> Ticket:
        """Publish without waiting for the broker; the :class:`Ticket` completes when sent/stored."""
        event = self.build(topic, body, header)
        subject, mode = self.route(event, delivery)
        return await self._offer_waiting(event, subject, mode)

    async def publish(self, topic: str, body: Body | None = None, *, delivery: str | None = None,
                      wait: bool | None = None, timeout: float | None = None, **header: Any) -> Event:
        """Publish an event on ``topic``; return it.

        ``header`` may set ``type``, ``ttl``, ``key``, ``source`` and extra fields. The delivery mode
        is ``delivery`` or the policy's (:meth:`set_delivery`, :meth:`add_delivery_rule`). A reliable
        publish returns once the broker stored the event (``wait=False``: at once); raises
        :class:`PublishTimeout` after ``timeout`` (default: the client's ``publish_timeout``).
        """
        event = self.build(topic, body, header)
        await self.publish_event(event, delivery=delivery, wait=wait, timeout=timeout)
        return event

    async def publish_event(self, event: Event, *, delivery: str | None = None, wait: bool | None = None,
                            timeout: float | None = None) -> Ticket:
        """Publish an already-built event as is (relays, re-publishing); see :meth:`publish`."""
        subject, mode = self.route(event, delivery)
        ticket = await self._offer_waiting(event, subject, mode)
        if wait or (wait is None and mode == RELIABLE):
            await ticket.wait_async(timeout if timeout is not None else self.publish_timeout)
        return ticket

    async def publish_many(self, topic: str, bodies: Iterable[Body], *, delivery: str | None = None,
                           **header: Any) -> Ticket:
        """Publish one event per body on ``topic`` (same header); the fast path for bursts.

        Does not wait for the broker: await ``ticket.wait_async()`` or :meth:`flush`.
        """
        events = self.build_many(topic, bodies, header)
        if not events:
            done = Ticket()
            done._seal(0)
            return done
        subject, mode = self.route(events[0], delivery)
        for ev in events[1:]:
            ev.delivery = events[0].delivery
        step = max(1, self.batcher.max_pending // 2)
        ticket: Ticket | None = None
        for i in range(0, len(events), step):
            chunk = events[i : i + step]
            while (ticket := self.offer_many(chunk, subject, mode)) is None:
                if self.overflow == "raise":
                    raise QueueFull(f"{self.batcher.max_pending} events await the broker")
                await asyncio.sleep(0.001)
        assert ticket is not None
        return ticket

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every event accepted so far is sent (best effort) or stored (reliable)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.publisher.wake()
        while self.batcher.outstanding > 0:
            if deadline is not None and time.monotonic() > deadline:
                from evfabric.core.errors import PublishTimeout

                raise PublishTimeout(f"{self.batcher.outstanding} events not confirmed within {timeout} s")
            await asyncio.sleep(0.002)
        if self.nc.is_connected:
            await self.nc.flush(timeout=max(1, int(timeout or 10)))

    # -- delivery policy ---------------------------------------------------------------------------

    def set_delivery(self, pattern: str, mode: str) -> None:
        """Topics matching ``pattern`` default to ``mode`` (``best_effort`` or ``reliable``)."""
        self.policy.set_topic(pattern, mode)

    def add_delivery_rule(self, predicate: Rule, mode: str) -> None:
        """Events for which ``predicate`` (CEL text or callable) holds use ``mode``."""
        self.policy.add_rule(predicate, mode)

    # -- subscribing -------------------------------------------------------------------------------

    async def subscribe(
        self, pattern: str | Pattern, filter: str | Filter | None = None, *, listener: Any = None,
        delivery: str | None = None, group: str | None = None, start: Start = None, replay: bool = False,
        name: str | None = None, max_deliver: int = 5, ack_wait: float = 30.0, redeliver_delay: float = 0.1,
        dead_letter: bool = True, ordered: bool | None = None, max_inflight: int = 256, pull_batch: int = 64,
    ) -> FabricSubscription:
        """Subscribe to topics matching ``pattern`` on the broker; returns once the broker knows.

        ``delivery``: ``best_effort`` (NATS core: live events only) or ``reliable`` (a durable
        JetStream consumer: acknowledged after the listeners return, redelivered otherwise, up to
        ``max_deliver`` attempts, then dead-lettered to ``cca.deadletter.<topic>``). Default: the
        policy's mode for the pattern, or ``reliable`` when ``start``/``replay`` is given.
        ``group``: members with the same group (and pattern) share the events. ``start``: see
        :mod:`evfabric.fabric.replay` (``replay=True`` means ``start="earliest"``). ``name`` makes
        the consumer durable under that name (it resumes after a restart). ``ordered`` (groups):
        one message in flight per partition, so keyed events keep their order (default: on for
        partitioned topics).
        """
        if self._closed:
            raise ServiceClosed("the fabric client is closed")
        pat = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        flt = Filter(filter) if isinstance(filter, str) else filter
        if replay and start is None:
            start = "earliest"
        if delivery is None:
            delivery = RELIABLE if start is not None else self.policy.for_topic(pat.text) if pat.is_literal else self.policy.default
        mode = check_mode(delivery)
        if max_deliver < 1:
            raise ConfigError(f"max_deliver must be >= 1, got {max_deliver}")
        subject, exact = pattern_filter(pat)
        sub = FabricSubscription(self, pat, flt, name or group or f"fsub-{next(self._names)}", mode, group, exact)
        if listener is not None:
            sub.add_listener(listener)
        if mode == BEST_EFFORT:
            consumer = CoreConsumer(self, sub, subject, group, pending_msgs=4096, pending_bytes=64 * 1024 * 1024)
            await consumer.start()
            sub.consumers.append(consumer)
            if consumer.nsub is not None:
                self._by_sid[consumer.nsub._id] = sub
        else:
            await self._reliable(sub, start, name, max_deliver, ack_wait, redeliver_delay, dead_letter, ordered,
                                 max_inflight, pull_batch)
        self.local.add_subscription(sub)  # the local service's dispatch calls the listeners
        self._subs.append(sub)
        return sub

    async def _topics_for(self, pat: Pattern) -> list[TopicConfig]:
        await self.catalog.load()
        found = [c for c in self.catalog.all() if pattern_reaches(pat, c.name)]
        if found:
            return found
        head = pat.segments[0]
        if self.publisher.auto_topics is None or head in (ONE, MANY):
            raise NotFound(f"no topic stores events matching {pat.text!r}: create one with create_topic()")
        cfg = replace(self.publisher.auto_topics, name=head)
        info = await create_topic(self.js, cfg, exist_ok=True)
        self.catalog.note(info.config)
        return [info.config]

    async def _reliable(self, sub: FabricSubscription, start: Start, name: str | None, max_deliver: int,
                        ack_wait: float, redeliver_delay: float, dead_letter: bool, ordered: bool | None,
                        max_inflight: int, pull_batch: int) -> None:
        pat = sub.pattern
        wanted, _ = pattern_filter(pat)
        tag = Pattern(pat).text.replace(".", "_").replace("*", "S").replace("?", "Q")[:40]
        base = sub.group or name or f"evf_{self.nc._nuid.next().decode()}"
        for topic in await self._topics_for(pat):
            stream_subjects = topic.stream_config().subjects or []
            filters = [f for f in (intersect(s, wanted) for s in stream_subjects) if f is not None]
            keep_order = ordered if ordered is not None else (sub.group is not None and topic.partitions > 1)
            per_partition = sub.group is not None and keep_order
            parts = range(topic.partitions) if per_partition else [None]
            for p in parts:
                fs = filters if p is None else [f"{f.split('.', 2)[0]}.{p}.{f.split('.', 2)[2]}" for f in filters]
                cname = f"{base}_{tag}_{topic.stream[4:]}" + ("" if p is None else f"_p{p}")
                cname = cname[:200]
                config = consumer_config(
                    cname, fs, start=start, ack_wait=ack_wait, max_deliver=max_deliver,
                    max_ack_pending=1 if keep_order else max_inflight,
                    inactive=None if (sub.group or name) else 300.0,
                )
                consumer = PullConsumer(self, sub, topic.stream, config, batch=pull_batch,
                                        max_inflight=1 if keep_order else max_inflight, max_deliver=max_deliver,
                                        redeliver_delay=redeliver_delay, dead_letter=dead_letter,
                                        shared=sub.group is not None)
                await consumer.start()
                sub.consumers.append(consumer)

    async def attach(self, sub: FabricSubscription, *, start: Start = None, max_deliver: int = 5,
                     ack_wait: float = 30.0, redeliver_delay: float = 0.1, dead_letter: bool = True,
                     ordered: bool | None = None, max_inflight: int = 256, pull_batch: int = 64) -> None:
        """Feed a reliable subscription built by the caller from durable consumers.

        For runners that handle events their own way (a :class:`FabricSubscription` subclass that
        overrides ``_dispatch`` and calls ``settle``), e.g. triggers. The consumers are named after
        ``sub.group`` (or ``sub.name``); :meth:`detach` or :meth:`close` stops them.
        """
        await self._reliable(sub, start, sub.group or sub.name, max_deliver, ack_wait, redeliver_delay, dead_letter,
                             ordered, max_inflight, pull_batch)
        self._subs.append(sub)

    async def detach(self, sub: FabricSubscription) -> None:
        """Stop feeding a subscription given to :meth:`attach` (a group's consumers stay on the broker)."""
        sub.active = False
        if sub in self._subs:
            self._subs.remove(sub)
        await self._stop_consumers(sub)

    def _forget(self, sub: FabricSubscription) -> None:
        """A subscription ended locally: stop its broker side (called by ``unsubscribe``)."""
        if sub in self._subs:
            self._subs.remove(sub)
        if self._closed or self._loop.is_closed():
            return  # close() stops the consumers itself
        if self.on_loop_thread():
            self._loop.create_task(self._stop_consumers(sub))
        else:
            asyncio.run_coroutine_threadsafe(self._stop_consumers(sub), self._loop)

    async def _stop_consumers(self, sub: FabricSubscription) -> None:
        for c in sub.consumers:
            if isinstance(c, PullConsumer):
                # private anonymous consumers go; named ones and groups' stay for later
                await c.stop(delete=sub.group is None and c.config.inactive_threshold is not None)
            else:
                await c.stop()

    async def lag(self, sub: FabricSubscription) -> int:
        """Broker messages not yet acknowledged by ``sub``'s consumers (0 for best effort)."""
        total = 0
        for c in sub.consumers:
            if isinstance(c, PullConsumer):
                total += await c.lag()
        return total

    @property
    def subscriptions(self) -> list[FabricSubscription]:
        """The active fabric subscriptions, oldest first."""
        return list(self._subs)

    def process_events(self, timeout: float | None = None) -> int:
        """Deliver received events now (``sync`` mode); elsewhere wait for delivery; return calls made."""
        return self.local.process_events(timeout)

    # -- topics ----------------------------------------------------------------------------------

    async def create_topic(self, name: str, *, exist_ok: bool = False, **settings: Any) -> TopicInfo:
        """Create durable topic ``name`` (settings: see :class:`~evfabric.fabric.streams.TopicConfig`)."""
        info = await create_topic(self.js, TopicConfig(name=name, **settings), exist_ok=exist_ok)
        self.catalog.note(info.config)
        return info

    async def list_topics(self) -> list[TopicInfo]:
        """Every durable topic on the broker."""
        return await list_topics(self.js)

    async def describe_topic(self, name: str) -> TopicInfo:
        """Settings and state of topic ``name`` (NotFound if none)."""
        return await describe_topic(self.js, name)

    async def update_topic(self, name: str, **changes: Any) -> TopicInfo:
        """Change settings of topic ``name``."""
        info = await update_topic(self.js, name, **changes)
        self.catalog.note(info.config)
        return info

    async def delete_topic(self, name: str) -> None:
        """Delete topic ``name`` and its stored events."""
        await delete_topic(self.js, name)
        self.catalog.forget(name)

    # -- accounting ------------------------------------------------------------------------------

    def backlog_full(self) -> bool:
        """True when more than ``max_backlog`` received events wait for local dispatch."""
        return self.local.dispatcher.pending() > self.max_backlog

    # -- connection events ------------------------------------------------------------------------

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            self.losses.slow_consumer(self._by_sid.get(exc.sid), exc.subject)
        elif "permissions violation for publish" in str(exc).lower():
            # the broker refused a publish (access control): fail waiting reliable publishes now
            # with AccessDenied rather than let them time out
            self.publisher.denied(str(exc))

    async def _on_disconnect(self) -> None:
        self.stats.disconnects += 1

    async def _on_reconnect(self) -> None:
        self.stats.reconnects += 1
        self.publisher.on_reconnect()
        for sub in self._subs:
            for c in sub.consumers:
                if isinstance(c, PullConsumer):
                    c.on_reconnect()

    @property
    def is_connected(self) -> bool:
        """True while the connection to the broker is up."""
        return self.nc.is_connected

    # -- closing ----------------------------------------------------------------------------------

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what was accepted (up to ``timeout``), stop consumers, disconnect, close dispatch."""
        if self._closed:
            return
        try:
            if self.nc.is_connected:
                await self.flush(timeout)
        except Exception:
            pass
        self._closed = True
        subs = list(self._subs)
        for sub in subs:
            sub.unsubscribe()
        for sub in subs:
            await self._stop_consumers(sub)
        await self.publisher.close()
        if self._reporter is not None:
            self._reporter.cancel()
        self.losses.report()
        try:
            await asyncio.wait_for(self.nc.close(), 5)
        except Exception:
            pass
        self.local.close(drain=True, timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


DEFAULT_URL = "nats://127.0.0.1:4222"


async def connect_async(
    url: str | list[str] = DEFAULT_URL, *, source: str = "evfabric", mode: str = "asyncio",
    delivery: str = BEST_EFFORT, max_batch: int = 1000, max_batch_bytes: int = 256 * 1024,
    max_pending: int = 200_000, overflow: str = "block", linger: float = 0.0, ack_timeout: float = 2.0,
    window: int = 64, auto_topics: bool | TopicConfig = True, max_backlog: int = 100_000,
    publish_timeout: float | None = 30.0, connect_timeout: float = 2.0, reconnect_wait: float = 0.25,
    name: str | None = None, token: str | None = None, **nats_options: Any,
) -> AsyncClient:
    """Connect to the broker at ``url`` (or a list of cluster URLs) from a running asyncio loop.

    Raises :class:`BrokerUnavailable` when no server answers. Once connected, the client
    reconnects by itself forever; reliable events accepted meanwhile wait (at most ``max_pending``
    events, then ``overflow``: ``block``, ``raise``, or ``drop`` best-effort ones) and are re-sent.
    Batching: ``max_batch`` events / ``max_batch_bytes`` per message, ``linger`` seconds of extra
    coalescing while the line is busy. ``auto_topics``: create a durable topic (its first segment;
    a :class:`TopicConfig` gives its settings) on the first reliable use of an unknown one.
    ``mode``: how listeners are called (``asyncio``, ``threads``, ``sync``; see EventService).
    ``token``: an evfabric access token (default ``$EVFABRIC_TOKEN``) for a broker that enforces
    access control; other keywords go to ``nats.connect``.
    """
    check_mode(delivery)
    holder: dict[str, AsyncClient] = {}
    token = token or os.environ.get("EVFABRIC_TOKEN")
    if token and "user" not in nats_options:
        from evfabric.access.client import nats_options as token_options  # the token format is access's

        nats_options = {**token_options(token), **nats_options}

    async def on_error(exc: Exception) -> None:
        if "c" in holder:
            await holder["c"]._on_error(exc)

    async def on_disconnect() -> None:
        if "c" in holder:
            await holder["c"]._on_disconnect()

    async def on_reconnect() -> None:
        if "c" in holder:
            await holder["c"]._on_reconnect()

    servers = [url] if isinstance(url, str) else list(url)
    try:
        nc = await nats.connect(
            servers=servers, name=name or source, connect_timeout=connect_timeout, allow_reconnect=True,
            max_reconnect_attempts=1, reconnect_time_wait=reconnect_wait, error_cb=on_error,
            disconnected_cb=on_disconnect, reconnected_cb=on_reconnect, pending_size=8 * 1024 * 1024,
            **nats_options,
        )
    except (OSError, asyncio.TimeoutError, nats.errors.Error) as exc:
        shown = ", ".join(u.rsplit("@", 1)[-1] for u in servers)  # never echo credentials
        raise BrokerUnavailable(f"no broker answers at {shown} ({type(exc).__name__}: {exc}); "
                                "start one with `evfabric serve`") from None
    nc.options["max_reconnect_attempts"] = -1  # found it once: from now on, keep coming back forever
    auto = auto_topics if isinstance(auto_topics, TopicConfig) else (TopicConfig(name="auto", max_age=86400.0) if auto_topics else None)
    client = AsyncClient(nc, source=source, mode=mode, delivery=delivery, max_batch=max_batch,
                         max_batch_bytes=max_batch_bytes, max_pending=max_pending, overflow=overflow, linger=linger,
                         ack_timeout=ack_timeout, window=window, auto_topics=auto, max_backlog=max_backlog,
                         publish_timeout=publish_timeout)
    holder["c"] = client
    await client._start()
    return client
