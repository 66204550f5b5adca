"""``EventService``: the in-process event service (the CCA event service, embedded default).

    svc = EventService()                       # synchronous dispatch
    sub = svc.subscribe("functions.signals.*")
    sub.add_listener(lambda ev: print(ev.topic, ev.body))
    svc.publish("functions.signals.iteration", {"i": 1})
    svc.process_events()                       # -> 1 listener call

Semantics:

* **Order.** Every listener sees the events of one topic in publish order, in every mode.
* **Modes.** ``sync``: events wait until ``process_events()``; ``threads``: a dispatcher pool
  delivers as events come (``workers`` to ``max_workers`` threads); ``asyncio``: delivered on an
  asyncio loop, and listeners may be coroutine functions.
* **Bounds.** At most ``queue_size`` events wait; ``overflow`` says what happens beyond
  (``block``, ``drop_oldest``, ``drop_newest``, ``raise``). Drops are counted in :attr:`stats` and
  reported as one ``cca.events.dropped`` event per flush.
* **Failures.** A listener that raises does not stop delivery to the others: the error is logged,
  counted, and published as ``cca.listener.failed``.
* **Reserved topics.** The service publishes ``cca.*`` events (topic created, subscription added
  and removed, events dropped or expired, listener failed) only when someone subscribes to them;
  user code may subscribe there, not publish.
* **Retention.** ``retain("pattern", ttl=...)`` keeps recent events so a late subscriber can
  ask for them (``recent()``, or ``subscribe(..., replay=True)``).
* **Time.** TTLs and retention read the service's ``clock`` (default: the system clock); tests
  pass a :class:`~evfabric.core.clocks.ManualClock` and advance it instead of sleeping.
* **Filters.** A CEL filter naming something a filter cannot see is refused at ``subscribe``; one
  that fails on an event does not match it, and its first failure is published once as
  ``cca.filter.error`` (and counted in ``stats.filter_errors``).

The service builds the events and the subscriptions; a dispatcher (the ``mode``'s, or the
``dispatcher`` factory given) decides when and on which thread a
:class:`~evfabric.local.delivery.Delivery` calls the listeners.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any, Literal

from evfabric.core import ids as _ids
from evfabric.core.clocks import SYSTEM_CLOCK, Clock
from evfabric.core.errors import ConfigError, ServiceClosed
from evfabric.core.event import _SCALARS, DEFAULT_TYPE, Body, Event, check_body, check_header, stamp
from evfabric.core.filters import Filter
from evfabric.core.index import PatternIndex
from evfabric.core.topics import Pattern, check_publishable
from evfabric.local import framework_events as cca
from evfabric.local.delivery import Delivery
from evfabric.local.dispatch import Dispatcher, SyncDispatcher, ThreadPoolDispatcher
from evfabric.local.overflow import Overflow, parse_overflow
from evfabric.local.retention import RetainedEvents, Retention
from evfabric.local.subscription import Listener, Subscription

__all__ = ["DispatcherFactory", "EventService", "ServiceStats"]

log = logging.getLogger("evfabric.local")
_time_ns = time.time_ns

Mode = Literal["sync", "threads", "asyncio"]
DispatcherFactory = Callable[[Delivery, int, Overflow], Dispatcher]
"""Builds a dispatcher from the service's delivery, queue bound and overflow policy."""


@dataclass(frozen=True)
class ServiceStats:
    """A snapshot of the service's counters."""

    published: int
    delivered: int
    dropped: int
    expired: int
    listener_errors: int
    filter_errors: int
    pending: int
    topics: int
    subscriptions: int
    workers: int


class EventService:
    """The in-process publish/subscribe service. Thread-safe in every mode.

    :param source: the component id stamped on events this service publishes (``source`` header).
    :param mode: ``"sync"``, ``"threads"`` or ``"asyncio"``.
    :param queue_size: how many events may wait for delivery.
    :param overflow: ``"block"`` (default: nothing is lost), ``"drop_oldest"``, ``"drop_newest"`` or ``"raise"``.
    :param workers: dispatcher threads to start with (threads mode).
    :param max_workers: the most threads the pool may grow to under demand (default ``4 * workers``).
    :param scheduling: ``"shared"`` (work queue) or ``"round_robin"`` (per-thread queues), threads mode.
    :param loop: the asyncio loop to deliver on (asyncio mode; default: the running loop).
    :param clock: the wall clock for TTLs and retention (default: the system clock).
    :param dispatcher: a factory ``(delivery, queue_size, overflow) -> Dispatcher`` used instead
        of the ``mode``'s dispatcher.
    """

    def __init__(
        self,
        *,
        source: str = "evfabric",
        mode: Mode = "sync",
        queue_size: int = 1_000_000,
        overflow: str | Overflow = Overflow.BLOCK,
        workers: int = 2,
        max_workers: int | None = None,
        scheduling: Literal["shared", "round_robin"] = "shared",
        loop: asyncio.AbstractEventLoop | None = None,
        clock: Clock = SYSTEM_CLOCK,
        dispatcher: DispatcherFactory | None = None,
    ) -> None:
        check_header(source=source)
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"queue_size must be a positive int, got {queue_size!r}")
        policy = parse_overflow(overflow)
        self.source = source
        self.mode = mode
        self.clock = clock
        self._index: PatternIndex[Subscription] = PatternIndex()
        self._match = self._index.match
        self._topics: set[str] = set()
        self._seq = count(1)
        self._names = count(1)
        self._lock = threading.RLock()
        self._retained = RetainedEvents(clock)
        self._retaining = False
        self._closed = False
        self._published = 0
        self._delivery = Delivery(self._index, clock, self.emit)
        self._dispatcher: Dispatcher
        if dispatcher is not None:
            self._dispatcher = dispatcher(self._delivery, queue_size, policy)
        elif mode == "sync":
            self._dispatcher = SyncDispatcher(self._delivery, queue_size, policy)
        elif mode == "threads":
            if not isinstance(workers, int) or workers < 1:
                raise ConfigError(f"workers must be a positive int, got {workers!r}")
            top = max_workers if max_workers is not None else 4 * workers
            if not isinstance(top, int) or top < workers:
                raise ConfigError(f"max_workers must be an int >= workers ({workers}), got {max_workers!r}")
            if scheduling not in ("shared", "round_robin"):
                raise ConfigError(f"scheduling must be 'shared' or 'round_robin', got {scheduling!r}")
            self._dispatcher = ThreadPoolDispatcher(self._delivery, queue_size, policy, workers, top, scheduling)
        elif mode == "asyncio":
            from evfabric.local.aio import AsyncioDispatcher

            self._dispatcher = AsyncioDispatcher(self._delivery, queue_size, policy, loop)
        else:
            raise ConfigError(f"mode must be 'sync', 'threads' or 'asyncio', got {mode!r}")
        self._submit = self._dispatcher.submit
        self._lane = self._dispatcher.lane
        # one call less per flush: the dispatcher's method is this instance's process_events
        self.process_events = self._dispatcher.process_events  # type: ignore[method-assign]

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, topic: str, body: Body | None = None, **header: Any) -> Event:
        """Validate, stamp and queue an event on ``topic``; return it.

        ``header`` may set ``type``, ``delivery``, ``ttl``, ``key``, ``source`` (default: the
        service's), and free-form extra fields. Raises :class:`InvalidTopic`, :class:`InvalidEvent`
        or :class:`ReservedTopic` for bad input, :class:`QueueFull` under the ``raise`` policy.
        """
        if topic not in self._topics:
            self._admit_topic(topic)
        if body is None:
            body = {}
        elif type(body) is not dict:
            check_body(body)  # raises
        else:
            for name, value in body.items():  # check_body's flat case, written out (a call is a tenth)
                if type(value) not in _SCALARS or type(name) is not str:
                    check_body(body)
                    break
        if header:
            event = self._event_with_header(topic, body, header)
        else:
            # ids.stamp(), written out (see evfabric.core.ids): a call and a tuple less per event
            us = _time_ns() // 1000
            st = _ids._state
            if us < st[0] and (suffix := next(st[2], None)) is not None:
                eid = st[1] + suffix
            else:
                eid = _ids.slow_id(us, st)
            event = Event(id=eid, topic=topic, source=self.source, time=us / 1_000_000, seq=next(self._seq), body=body)
        self._published += 1
        if self._retaining:
            self._retained.offer(event)
        lane = self._lane
        if lane is not None and len(lane) < lane.room:
            lane.append(event)
        else:
            self._submit(event)
        return event

    def publish_many(self, topic: str, bodies: Iterable[Body], **header: Any) -> list[Event]:
        """Publish one event per body on ``topic`` with the same ``header``; return the events.

        As many :meth:`publish` calls (the :class:`~evfabric.bus.Bus` batch entry point).
        """
        publish = self.publish
        return [publish(topic, body, **header) for body in bodies]

    async def apublish(self, topic: str, body: Body | None = None, **header: Any) -> Event:
        """Like :meth:`publish`, but in asyncio mode waits (without blocking the loop) for room."""
        await self._dispatcher.wait_for_room()
        return self.publish(topic, body, **header)

    def next_seq(self) -> int:
        """The next value of this service's Lamport clock (the ``seq`` header of its events)."""
        return next(self._seq)

    def build_event(self, topic: str, body: Body, header: dict[str, Any]) -> Event:
        """A stamped event on ``topic`` with ``header`` validated (``source`` defaults to the
        service's); ``topic`` and ``body`` are not checked here. For clients that send it elsewhere."""
        return self._event_with_header(topic, body, header)

    def hand_over(self, events: Sequence[Event], subscription: Subscription) -> None:
        """Queue already-received ``events`` for ``subscription`` only (the fabric's hand-off), unbounded."""
        self._dispatcher.submit_many_to(events, subscription)

    def _event_with_header(self, topic: str, body: Body, header: dict[str, Any]) -> Event:
        fields = dict(header)
        source = fields.pop("source", self.source)
        etype = fields.pop("type", DEFAULT_TYPE)
        delivery = fields.pop("delivery", "best_effort")
        ttl = fields.pop("ttl", None)
        key = fields.pop("key", None)
        check_header(source=source, type=etype, delivery=delivery, ttl=ttl, key=key, extra=fields)
        eid, now = stamp()
        return Event(
            id=eid,
            topic=topic,
            source=source,
            time=now,
            type=etype,
            seq=next(self._seq),
            delivery=delivery,
            ttl=None if ttl is None else float(ttl),
            key=key,
            extra=fields,
            body=body,
        )

    def _admit_topic(self, topic: str) -> None:
        if self._closed:
            raise ServiceClosed("the event service is closed")
        check_publishable(topic)
        with self._lock:
            if topic in self._topics:
                return
            self._topics.add(topic)
        self.emit(cca.TOPIC_CREATED, {"topic": topic})

    def dispatch_event(self, event: Event) -> None:
        """Queue an already-built event (from the wire, a replay store...) for local delivery.

        The event is not re-validated nor re-stamped; the overflow policy applies. This is how the
        networked fabric hands received events to local listeners.
        """
        if event.topic not in self._topics:
            with self._lock:
                self._topics.add(event.topic)
        self._published += 1
        if self._retaining:
            self._retained.offer(event)
        self._submit(event)

    # -- subscribing --------------------------------------------------------------------------

    def subscribe(
        self,
        pattern: str | Pattern,
        filter: str | Filter | None = None,
        *,
        listener: Listener | None = None,
        replay: bool = False,
        name: str | None = None,
    ) -> Subscription:
        """Subscribe to topics matching ``pattern`` (CCA ``?`` and ``*`` wildcards).

        ``filter`` is a CEL expression evaluated by the service before any listener is called.
        ``listener`` is added at once (same as ``sub.add_listener``). With ``replay=True`` the
        retained events matching the pattern (see :meth:`retain`) are delivered to this
        subscription first. Raises :class:`InvalidPattern` or :class:`InvalidFilter`.
        """
        if self._closed:
            raise ServiceClosed("the event service is closed")
        pat = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        flt = filter if isinstance(filter, Filter) or filter is None else Filter(filter)
        sub = Subscription(self, pat, flt, name or f"sub-{next(self._names)}")
        if listener is not None:
            sub.add_listener(listener)
        else:
            sub._pull(early=True)  # keep events for sub.next() / events() / async for
        with self._lock:
            sub._handle = self._index.add(pat, sub)
        if replay:
            retained = self._retained.recent(pat)
            if retained:
                self._dispatcher.submit_many_to(retained, sub)
        if flt is not None:
            self._watch_filter(sub, flt)
        self._announce(sub)
        return sub

    def add_subscription(self, sub: Subscription) -> Subscription:
        """Register a subscription built elsewhere (e.g. a fabric subscription) and return it.

        From now on the service calls its listeners for matching published events, and for
        events handed to it alone (``dispatcher.submit_many_to``). Emits ``cca.subscription.added``
        (its ``filter``: the expression of ``sub.filter_in_use``).
        """
        if self._closed:
            raise ServiceClosed("the event service is closed")
        if sub.filter_in_use is not None:
            self._watch_filter(sub, sub.filter_in_use)
        with self._lock:
            sub._handle = self._index.add(sub.pattern, sub)
        self._announce(sub)
        return sub

    def _watch_filter(self, sub: Subscription, flt: Filter) -> None:
        def failed(flt: Filter, event: Event, error: str) -> None:
            self.emit(cca.FILTER_ERROR, {"subscription": sub.name, "filter": flt.expression, "error": error,
                                         "event_id": event.id, "topic": event.topic})

        flt.on_error = failed

    def _announce(self, sub: Subscription) -> None:
        if not self._index.watches_reserved():
            return  # nobody listens to framework events: do not build one
        flt = sub.filter_in_use
        expression = flt.expression if flt is not None else None
        self.emit(
            cca.SUBSCRIPTION_ADDED, {"subscription": sub.name, "pattern": sub.pattern.text, "filter": expression}
        )

    def _remove_subscription(self, sub: Subscription) -> None:
        with self._lock:
            removed = self._index.remove(sub.pattern, sub._handle)
            sub.active = False
        if removed:
            self.emit(cca.SUBSCRIPTION_REMOVED, {"subscription": sub.name, "pattern": sub.pattern.text})

    @property
    def subscriptions(self) -> list[Subscription]:
        """The active subscriptions, oldest first."""
        return self._index.values()

    # -- retention ------------------------------------------------------------------------------

    def retain(self, pattern: str, ttl: float, max_events: int = 10_000) -> None:
        """Keep events on topics matching ``pattern`` for ``ttl`` seconds (at most ``max_events`` per topic)."""
        self._retained.add_rule(Retention(pattern, ttl, max_events))
        self._retaining = True

    def recent(self, pattern: str | Pattern, since: float | None = None) -> list[Event]:
        """Retained, unexpired events on topics matching ``pattern``, oldest first."""
        return self._retained.recent(pattern, since)

    # -- delivery ------------------------------------------------------------------------------

    def process_events(self, timeout: float | None = None) -> int:
        """Deliver queued events; return how many listener calls were made (CCA processEvents).

        Sync mode: flushes the queue in this thread. Threads mode: waits until the pool has
        delivered everything queued so far (or ``timeout``). Asyncio mode: the same, from another
        thread (on the loop itself use ``await service.drain()``).
        """
        return self._dispatcher.process_events(timeout)

    def flush(self, timeout: float | None = None) -> None:
        """Deliver every event queued so far (sync mode: in this thread; else wait, at most
        ``timeout``): the :class:`~evfabric.bus.Bus` flush, which in process means delivered."""
        self._dispatcher.process_events(timeout)

    async def drain(self) -> int:
        """Asyncio mode: wait until everything queued is delivered; return listener calls made."""
        return await self._dispatcher.drain()

    def emit(self, topic: str, body: Body) -> None:
        """Publish a framework event (``topic`` in the reserved ``cca`` group), only when someone
        listens; it bypasses the queue bound and is not validated (the framework builds it)."""
        if not self._index.watches_reserved():
            return
        subs = self._match(topic)
        if not subs or self._closed:
            return
        eid, now = stamp()
        event = Event(id=eid, topic=topic, source=self.source, time=now, seq=next(self._seq), body=body)
        self._dispatcher.submit_framework(event, subs)

    # -- state ----------------------------------------------------------------------------------

    @property
    def stats(self) -> ServiceStats:
        """Counters: published, delivered (listener calls), dropped, expired, errors, pending..."""
        disp, d = self._dispatcher, self._delivery
        return ServiceStats(
            published=self._published,
            delivered=disp.delivered,
            dropped=d.dropped,
            expired=d.expired,
            listener_errors=d.listener_errors,
            filter_errors=sum(f.errors for f in (s.filter_in_use for s in self.subscriptions) if f is not None),
            pending=disp.pending(),
            topics=len(self._topics),
            subscriptions=len(self._index),
            workers=disp.workers,
        )

    @property
    def topics(self) -> list[str]:
        """Topics seen so far (published on, or received), sorted."""
        return sorted(self._topics)

    @property
    def dispatcher(self) -> Dispatcher:
        """The dispatcher in use (for introspection: ``workers``, ``peak_workers``...)."""
        return self._dispatcher

    def close(self, drain: bool = True, timeout: float = 10.0) -> None:
        """Stop accepting events and subscriptions; deliver what is queued first when ``drain``."""
        if self._closed:
            return
        self._closed = True
        self._dispatcher.close(drain, timeout)

    def __enter__(self) -> EventService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EventService {self.source!r} mode={self.mode} topics={len(self._topics)} subscriptions={len(self._index)}>"
