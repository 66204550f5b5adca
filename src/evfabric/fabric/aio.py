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
import logging
import os
import threading
import time
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from itertools import count, islice
from typing import Any, TypeVar

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from evfabric.core.errors import AccessDenied, ConfigError, QueueFull, ServiceClosed
from evfabric.core.event import BEST_EFFORT, RELIABLE, Body, Delivery, Event, check_body, flat_bodies, new_ids, stamp
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern, check_publishable
from evfabric.fabric.batching import Batcher, Ticket
from evfabric.fabric.connection import ConnectionEvents, open_connection
from evfabric.fabric.delivery import DeliveryPolicy, Rule, check_delivery
from evfabric.fabric.foreign import ForeignSender
from evfabric.fabric.identity import identity_of
from evfabric.fabric.losses import LossReport
from evfabric.fabric.outbox import OVERFLOW_POLICIES, Outbox
from evfabric.fabric.positions import StoredEvents
from evfabric.fabric.publisher import Publisher
from evfabric.fabric.receiving import Receiving
from evfabric.fabric.replay import Start
from evfabric.fabric.roundtrip import flush
from evfabric.fabric.shared_loop import off_loop
from evfabric.fabric.stats import FabricStats
from evfabric.fabric.streams import (
    TopicConfig,
    TopicInfo,
    create_topic,
    delete_topic,
    describe_topic,
    list_topics,
    update_topic,
)
from evfabric.fabric.subjects import ANONYMOUS, pattern_filter
from evfabric.fabric.subscription import FabricSubscription
from evfabric.fabric.topic_catalog import TopicCatalog
from evfabric.local.service import DispatcherFactory, EventService
from evfabric.wire import wire_format
from evfabric.wire.subject import pattern_tokens

__all__ = ["AsyncClient", "connect_async"]

T = TypeVar("T")
#: client ``wire=`` names that differ from the codec's format names
WIRE_NAMES = {"rows": "msgpack"}
log = logging.getLogger("evfabric.fabric")

class AsyncClient:
    """A connection to the fabric, driven from asyncio. Create it with :func:`connect_async`."""

    def __init__(self, nc: NatsClient, *, source: str, mode: str, delivery: str, max_batch: int, max_batch_bytes: int,
                 max_pending: int, overflow: str, linger: float, ack_timeout: float, window: int,
                 auto_topics: TopicConfig | None, max_backlog: int, publish_timeout: float | None,
                 identity: str = ANONYMOUS, wire: str = "columns", dispatcher: DispatcherFactory | None = None) -> None:
        if overflow not in OVERFLOW_POLICIES:
            raise ConfigError(f"overflow must be 'block', 'raise' or 'drop', got {overflow!r}")
        self.nc = nc
        self.js = nc.jetstream()
        #: the publisher token of every subject this client publishes on (docs/wire.md section 1)
        self.identity = identity
        self.source = source
        self.max_backlog = max_backlog
        self.publish_timeout = publish_timeout
        self.policy = DeliveryPolicy(delivery)
        self.stats = FabricStats()
        self.catalog = TopicCatalog(self.js)
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.local = EventService(source=source, mode=mode, queue_size=max(max_backlog * 4, 1024),  # type: ignore[arg-type]
                                  loop=self._loop if mode == "asyncio" else None, dispatcher=dispatcher)
        self.losses = LossReport(self.stats, self.local)
        self.batcher = Batcher(max_batch, max_batch_bytes, max_pending, wire=wire)
        self.publisher = Publisher(nc, self.js, self.batcher, self.catalog, self.losses, self.stats,
                                   ack_timeout=ack_timeout, window=window, linger=linger, auto_topics=auto_topics)
        self.foreign = ForeignSender(nc, self.js, ack_timeout, self.call_on_loop)  # raw topics' events
        #: the way out: route and admit events (thread-safe; both front ends use it)
        self.outbox = Outbox(identity=identity, policy=self.policy, catalog=self.catalog, batcher=self.batcher,
                             wake=self.publisher.wake, foreign=self.foreign, stats=self.stats, losses=self.losses,
                             overflow=overflow, loop=self._loop, on_loop_thread=self.on_loop_thread,
                             call_on_loop=self.call_on_loop)
        self._names = count(1)
        self.receiving = Receiving(self)  # the subscribe half: subscriptions, feeds, consumers
        self.stored = StoredEvents(self.js)  # stored events per topic, counted incrementally
        self._closed = False
        self._reporter: asyncio.Task[None] | None = None
        self._refused: list[str] = []  # the broker's permission violations, newest last (for subscribe)
        self._publish_refused: tuple[int, str] = (0, "")  # (how many, the last) publishes the broker refused
        self._publish_refused_told = 0  # of them, raised by flush() already

    async def _start(self) -> None:
        await self.publisher.start()  # no topic is read here: the catalog answers on first use
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

    # -- building events (thread-safe; used by both front ends, which route them with the outbox) -----

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
        n, now, source, etype, chosen = len(rest), t.time, t.source, t.type, t.delivery
        ttl, key, extra = t.ttl, t.key, t.extra
        return [t] + [
            Event(id=eid, topic=topic, source=source, time=now, type=etype, seq=seq, delivery=chosen, ttl=ttl, key=key,
                  extra=extra, body=body)
            for eid, seq, body in zip(new_ids(n, now), islice(self.local._seq, n), rest)
        ]

    # -- publishing (asyncio) -----------------------------------------------------------------------

    async def submit(self, topic: str, body: Body | None = None, *, delivery: Delivery | None = None,
                     **header: Any) -> Ticket:
        """Publish without waiting for the broker; the :class:`Ticket` completes when sent/stored."""
        event = self.build(topic, body, header)
        out = self.outbox
        await out.known(topic)
        subject, chosen = out.route(event, delivery)
        return await out.offer_waiting(event, subject, chosen)

    async def publish(self, topic: str, body: Body | None = None, *, delivery: Delivery | None = None,
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

    async def publish_event(self, event: Event, *, delivery: Delivery | None = None, wait: bool | None = None,
                            timeout: float | None = None) -> Ticket:
        """Publish an already-built event as is (relays, re-publishing); see :meth:`publish`."""
        out = self.outbox
        await out.known(event.topic)
        subject, chosen = out.route(event, delivery)
        ticket = await out.offer_waiting(event, subject, chosen)
        if wait or (wait is None and chosen == RELIABLE):
            await ticket.wait_async(timeout if timeout is not None else self.publish_timeout)
        return ticket

    async def publish_many(self, topic: str, bodies: Iterable[Body], *, delivery: Delivery | None = None,
                           **header: Any) -> Ticket:
        """Publish one event per body on ``topic`` (same header); the fast path for bursts.

        Does not wait for the broker: await ``ticket.wait_async()`` or :meth:`flush`.
        """
        events = self.build_many(topic, bodies, header)
        if not events:
            return Ticket.finished()
        out = self.outbox
        await out.known(topic)
        subject, chosen = out.route(events[0], delivery)
        for ev in events[1:]:
            ev.delivery = events[0].delivery
        step = max(1, self.batcher.max_pending // 2)
        ticket: Ticket | None = None
        for i in range(0, len(events), step):
            chunk = events[i : i + step]
            while (ticket := out.offer_many(chunk, subject, chosen)) is None:
                if out.overflow == "raise":
                    raise QueueFull(f"{self.batcher.max_pending} events await the broker")
                await asyncio.sleep(0.001)
        assert ticket is not None
        return ticket

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every event accepted so far is sent (best effort) or stored (reliable)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.publisher.wake_now()
        while self.batcher.outstanding > 0 or self.foreign.outstanding > 0:
            if deadline is not None and time.monotonic() > deadline:
                from evfabric.core.errors import PublishTimeout

                raise PublishTimeout(f"{self.batcher.outstanding + self.foreign.outstanding} events not confirmed "
                                     f"within {timeout} s")
            await asyncio.sleep(0.002)
        if self.nc.is_connected:
            await flush(self.nc, timeout or 10)  # behind our publishes: the broker's refusals come before its PONG
        failures = self.batcher.take_failures()
        count, last = self._publish_refused
        refused, self._publish_refused_told = count - self._publish_refused_told, count
        if failures:
            if len(failures) > 1:
                log.warning("flush: %d groups of events failed; raising the first", len(failures))
            raise failures[0]
        if refused:  # best effort: nothing waited for the broker, so the refusal is told here
            raise AccessDenied(f"the broker refused {refused} publish{'es' * (refused != 1)} of {self.source!r}: "
                               f"{last.removeprefix('nats: ')}")

    async def request(self, topic: str, body: Body | None = None, *, timeout: float = 5.0, **header: Any) -> Event:
        """Publish a request on ``topic``; return the first reply (:mod:`evfabric.fabric.request`)."""
        from evfabric.fabric.request import request

        return await request(self, topic, body, timeout=timeout, **header)

    async def reply(self, request_event: Event, body: Body | None = None, **header: Any) -> Event:
        """Answer a request event received by a subscription (:mod:`evfabric.fabric.request`)."""
        from evfabric.fabric.request import reply

        return await reply(self, request_event, body, **header)

    # -- delivery policy ---------------------------------------------------------------------------

    def set_delivery(self, pattern: str, delivery: str) -> None:
        """Topics matching ``pattern`` default to ``delivery`` (``best_effort`` or ``reliable``)."""
        self.policy.set_topic(pattern, delivery)

    def add_delivery_rule(self, predicate: Rule, delivery: str) -> None:
        """Events for which ``predicate`` (CEL text or callable) holds use ``delivery``."""
        self.policy.add_rule(predicate, delivery)

    # -- subscribing -------------------------------------------------------------------------------

    async def subscribe(
        self, pattern: str | Pattern, filter: str | Filter | None = None, *, listener: Any = None,
        delivery: Delivery | None = None, group: str | None = None, start: Start = None, replay: bool = False,
        name: str | None = None, max_deliver: int = 5, ack_wait: float = 30.0, redeliver_delay: float = 0.1,
        dead_letter: bool = True, ordered: bool | None = None, max_inflight: int = 256, pull_batch: int = 64,
        raw: bool | None = None,
    ) -> FabricSubscription:
        """Subscribe to topics matching ``pattern`` on the broker; returns once the broker knows.

        ``delivery``: ``best_effort`` (NATS core: live events only) or ``reliable`` (a durable
        JetStream consumer: acknowledged after the listeners return, redelivered otherwise, up to
        ``max_deliver`` attempts, then dead-lettered to ``cca.deadletter.<topic>``). Default: the
        policy's delivery for the pattern, or ``reliable`` when ``start``/``replay`` is given.
        ``group``: members with the same group (and pattern) share the events. ``start``: see
        :mod:`evfabric.fabric.replay` (``replay=True`` means ``start="earliest"``). ``name`` makes
        the consumer durable under that name (it resumes after a restart). ``ordered`` (groups):
        one message in flight per partition, so keyed events keep their order (default: on for
        partitioned topics). ``raw``: read a foreign topic, on its own subject (an MQTT device's
        ``lab/probe/temp`` is ``lab.probe.temp``), every message one event (docs/wire.md 5); by
        default (None) a pattern whose topic is declared raw (``TopicConfig(raw=True)``) is read so,
        and reliably from the raw topic's stream; a wider pattern (``lab.*`` over raw ``lab.probe``)
        reads the raw topics it reaches beside the evfabric ones; ``raw=True`` reads foreign
        subjects with no topic declared (best effort only).
        """
        if self._closed:
            raise ServiceClosed("the fabric client is closed")
        pat = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        flt = Filter(filter) if isinstance(filter, str) else filter
        if replay and start is None:
            start = "earliest"
        chosen: str = delivery if delivery is not None else (
            RELIABLE if start is not None else self.policy.for_topic(pat.text) if pat.is_literal else self.policy.default)
        chosen = check_delivery(chosen)
        if max_deliver < 1:
            raise ConfigError(f"max_deliver must be >= 1, got {max_deliver}")
        follow_raw = False  # a best-effort pattern also reads the raw topics below it
        if chosen == BEST_EFFORT and raw is None:
            raw = await self.receiving.declared_raw(pat)
            follow_raw = not raw
        subject, exact = pattern_tokens(pat.text) if raw else pattern_filter(pat)
        sub = FabricSubscription(self, pat, flt, name or group or f"fsub-{next(self._names)}", chosen, group, exact)
        if listener is not None:
            sub.add_listener(listener)
        else:
            sub._pull(early=True)  # keep events for sub.next() / events() / async for
        seen = len(self._refused)
        try:
            if chosen == BEST_EFFORT:
                await self.receiving.feed(sub, subject, bool(raw))
                if follow_raw:
                    await self.receiving.follow_raw(sub)
                await flush(self.nc)  # after the SUBs: a refusal of one comes before this PONG
            else:
                await self.receiving.reliable(sub, start, name, max_deliver, ack_wait, redeliver_delay, dead_letter,
                                              ordered, max_inflight, pull_batch, raw)
        except (TimeoutError, nats.errors.TimeoutError, nats.errors.Error):
            if len(self._refused) == seen:
                raise
        if len(self._refused) > seen:  # the broker refused a subscription or an API request of ours
            await self.receiving.stop_consumers(sub)
            raise AccessDenied(f"the broker refused to let {self.source!r} subscribe to {pat.text!r} ({chosen}): "
                               f"{self._refused[-1].removeprefix('nats: ')}")
        self.local.add_subscription(sub)  # the local service's dispatch calls the listeners
        self.receiving.subs.append(sub)
        return sub

    async def attach(self, sub: FabricSubscription, *, start: Start = None, max_deliver: int = 5,
                     ack_wait: float = 30.0, redeliver_delay: float = 0.1, dead_letter: bool = True,
                     ordered: bool | None = None, max_inflight: int = 256, pull_batch: int = 64) -> None:
        """Feed a reliable subscription built by the caller from durable consumers.

        For runners that handle events their own way, e.g. triggers: a :class:`FabricSubscription`
        whose ``handler`` (an :class:`~evfabric.fabric.handler.EventHandler`) takes each message's
        events with their ``settle``. The consumers are named after ``sub.group`` (or
        ``sub.name``); :meth:`detach` or :meth:`close` stops them.
        """
        await self.receiving.reliable(sub, start, sub.group or sub.name, max_deliver, ack_wait, redeliver_delay,
                                      dead_letter, ordered, max_inflight, pull_batch)
        self.receiving.subs.append(sub)

    async def detach(self, sub: FabricSubscription) -> None:
        """Stop feeding a subscription given to :meth:`attach` (a group's consumers stay on the broker)."""
        sub.active = False
        if sub in self.receiving.subs:
            self.receiving.subs.remove(sub)
        await self.receiving.stop_consumers(sub)

    def _forget(self, sub: FabricSubscription) -> None:
        """A subscription ended locally: stop its broker side (called by ``unsubscribe``)."""
        self.receiving.forget(sub)

    async def lag(self, sub: FabricSubscription) -> int:
        """Events ``sub`` has still to handle (0 for best effort): those of the messages its
        consumers have not acknowledged, less those it already settled (docs/fabric.md)."""
        return await self.receiving.lag(sub)

    @property
    def subscriptions(self) -> list[FabricSubscription]:
        """The active fabric subscriptions, oldest first."""
        return list(self.receiving.subs)

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
        """Settings and state of topic ``name`` (NotFound if none), stored events counted (``events``)."""
        info = await describe_topic(self.js, name)
        return replace(info, events=await self.stored.count_or_none(info.stream, info.config.subjects, info.first_seq,
                                                                   info.last_seq))

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

    def backlog_full(self, held: int = 0) -> bool:
        """True when more than ``max_backlog`` received events (``held`` more by the caller) wait for local dispatch."""
        return self.local.dispatcher.pending() + held > self.max_backlog

    # -- connection events ------------------------------------------------------------------------

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            self.losses.slow_consumer(exc.subject)  # the events it held show as sequence gaps
        elif "permissions violation for subscription" in str(exc).lower() or "$js.api" in str(exc).lower():
            self._refused = [*self._refused[-15:], str(exc)]
        if "permissions violation for publish" in str(exc).lower():
            # the broker refused a publish (access control): fail waiting reliable publishes now
            # with AccessDenied rather than let them time out; best-effort ones fail the next flush
            subject = str(exc).rsplit(" to ", 1)[-1].strip().strip("'\"")
            if not self.publisher.denied(str(exc)) and not subject.startswith(("$", "_INBOX")):
                # an event publish nothing waited for (API requests fail on their own)
                self._publish_refused = (self._publish_refused[0] + 1, str(exc))

    async def _on_disconnect(self) -> None:
        self.stats.disconnects += 1

    async def _on_reconnect(self) -> None:
        self.stats.reconnects += 1
        self.publisher.on_reconnect()
        self.receiving.on_reconnect()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` began."""
        return self._closed

    @property
    def is_connected(self) -> bool:
        """True while the connection to the broker is up."""
        return self.nc.is_connected

    # -- closing ----------------------------------------------------------------------------------

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what was accepted (up to ``timeout``), stop consumers, disconnect, close dispatch.

        Raises, once everything is closed, the flush's error when accepted events were not all
        sent or stored (:class:`PublishTimeout` after ``timeout``, or the broker's refusal)."""
        if self._closed:
            return
        error: BaseException | None = None
        try:
            await self.flush(timeout)
        except Exception as exc:
            error = exc
        self._closed = True
        subs = list(self.receiving.subs)
        for sub in subs:
            sub.unsubscribe()
        for sub in subs:
            await self.receiving.stop_consumers(sub)
        await self.publisher.close()
        await self.stored.close()
        if self._reporter is not None:
            self._reporter.cancel()
        self.losses.report()
        try:
            await asyncio.wait_for(self.nc.close(), 5)
        except Exception as exc:
            log.debug("close: the connection did not close cleanly: %r", exc)
        if self.local.mode != "asyncio" and self.local.dispatcher.pending():  # listeners on threads: wait off
            await off_loop(self.local.close, True, timeout)  # the loop (other clients may share it)
        else:
            self.local.close(drain=True, timeout=timeout)
        if error is not None:
            raise error

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self.close()
            return
        try:  # an exception is on its way out: do not replace it with the close's
            await self.close()
        except Exception as close_exc:
            log.warning("close after %r: %r", exc[1], close_exc)


DEFAULT_URL = "nats://127.0.0.1:4222"


async def connect_async(
    url: str | list[str] = DEFAULT_URL, *, source: str = "evfabric", mode: str = "asyncio",
    delivery: Delivery = BEST_EFFORT, max_batch: int = 1000, max_batch_bytes: int = 256 * 1024,
    max_pending: int = 200_000, overflow: str = "block", linger: float = 0.0, ack_timeout: float = 2.0,
    window: int = 64, auto_topics: bool | TopicConfig = True, max_backlog: int = 100_000,
    publish_timeout: float | None = 30.0, connect_timeout: float = 2.0, reconnect_wait: float = 0.25,
    name: str | None = None, token: str | None = None, identity: str | None = None, wire: str = "columns",
    dispatcher: DispatcherFactory | None = None, **nats_options: Any,
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
    access control; other keywords go to ``nats.connect``. ``identity``: the publisher token of
    this client's subjects (default: what the broker's user-info answer says, ``_`` on a server
    without access control); the broker refuses publishes under any identity but its own.
    ``wire``: the format of published messages (docs/wire.md 4): ``columns`` (default),
    ``rows`` (row batches in MessagePack), ``json``, ``cloudevents`` (binary mode, one event per
    message) or ``cloudevents-structured``; receivers read them all. ``dispatcher``: a factory of
    the local service's dispatcher, instead of the ``mode``'s (the sync client's shared pool).
    """
    check_delivery(delivery)
    wire = WIRE_NAMES.get(wire, wire)
    wire_format(wire)  # ConfigError before connecting
    events = ConnectionEvents()
    servers = [url] if isinstance(url, str) else list(url)
    nc = await open_connection(servers, events, name=name or source, connect_timeout=connect_timeout,
                               reconnect_wait=reconnect_wait, token=token or os.environ.get("EVFABRIC_TOKEN"),
                               nats_options=nats_options)
    auto = auto_topics if isinstance(auto_topics, TopicConfig) else (TopicConfig(name="auto", max_age=86400.0) if auto_topics else None)
    client = AsyncClient(nc, source=source, mode=mode, delivery=delivery, max_batch=max_batch,
                         max_batch_bytes=max_batch_bytes, max_pending=max_pending, overflow=overflow, linger=linger,
                         ack_timeout=ack_timeout, window=window, auto_topics=auto, max_backlog=max_backlog,
                         publish_timeout=publish_timeout,
                         identity=identity if identity is not None else await identity_of(nc, connect_timeout),
                         wire=wire, dispatcher=dispatcher)
    events.client = client
    await client._start()
    return client
