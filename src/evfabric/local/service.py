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
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any, Literal

from evfabric.core.errors import ConfigError, ServiceClosed
from evfabric.core.event import DEFAULT_TYPE, Body, Event, check_body, check_header, stamp
from evfabric.core.filters import Filter
from evfabric.core.index import PatternIndex
from evfabric.core.topics import Pattern, check_publishable
from evfabric.local import framework_events as cca
from evfabric.local.dispatch import Dispatcher, SyncDispatcher, ThreadPoolDispatcher
from evfabric.local.overflow import Overflow, parse_overflow
from evfabric.local.retention import RetainedEvents, Retention
from evfabric.local.subscription import Listener, Subscription

__all__ = ["EventService", "ServiceStats"]

log = logging.getLogger("evfabric.local")

Mode = Literal["sync", "threads", "asyncio"]


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
    ) -> None:
        check_header(source=source)
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"queue_size must be a positive int, got {queue_size!r}")
        policy = parse_overflow(overflow)
        self.source = source
        self.mode = mode
        self._index: PatternIndex[Subscription] = PatternIndex()
        self._match = self._index.match
        self._topics: set[str] = set()
        self._seq = count(1)
        self._names = count(1)
        self._lock = threading.RLock()
        self._retained = RetainedEvents()
        self._retaining = False
        self._closed = False
        self._published = 0
        self._expired = 0
        self._listener_errors = 0
        self._drops: Counter[str] = Counter()
        self._dropped_total = 0
        self._expired_topics: Counter[str] = Counter()
        self._report_lock = threading.Lock()
        self._dispatcher: Dispatcher
        if mode == "sync":
            self._dispatcher = SyncDispatcher(self, queue_size, policy)
        elif mode == "threads":
            if not isinstance(workers, int) or workers < 1:
                raise ConfigError(f"workers must be a positive int, got {workers!r}")
            top = max_workers if max_workers is not None else 4 * workers
            if not isinstance(top, int) or top < workers:
                raise ConfigError(f"max_workers must be an int >= workers ({workers}), got {max_workers!r}")
            if scheduling not in ("shared", "round_robin"):
                raise ConfigError(f"scheduling must be 'shared' or 'round_robin', got {scheduling!r}")
            self._dispatcher = ThreadPoolDispatcher(self, queue_size, policy, workers, top, scheduling)
        elif mode == "asyncio":
            from evfabric.local.aio import AsyncioDispatcher

            self._dispatcher = AsyncioDispatcher(self, queue_size, policy, loop)
        else:
            raise ConfigError(f"mode must be 'sync', 'threads' or 'asyncio', got {mode!r}")
        self._submit = self._dispatcher.submit
        self._match_cache = self._index._cache  # read directly on the hot path; cleared in place on changes

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
        else:
            check_body(body)
        if header:
            event = self._event_with_header(topic, body, header)
        else:
            eid, now = stamp()
            event = Event(id=eid, topic=topic, source=self.source, time=now, seq=next(self._seq), body=body)
        self._published += 1
        if self._retaining:
            self._retained.offer(event)
        self._submit(event)
        return event

    async def apublish(self, topic: str, body: Body | None = None, **header: Any) -> Event:
        """Like :meth:`publish`, but in asyncio mode waits (without blocking the loop) for room."""
        waiter = getattr(self._dispatcher, "wait_for_room", None)
        if waiter is not None:
            await waiter()
        return self.publish(topic, body, **header)

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
        with self._lock:
            sub._handle = self._index.add(pat, sub)
        if replay:
            retained = self._retained.recent(pat)
            if retained:
                self._dispatcher.submit_many_to(retained, sub)
        self._announce(sub)
        return sub

    def add_subscription(self, sub: Subscription) -> Subscription:
        """Register a subscription built elsewhere (e.g. a fabric subscription) and return it.

        From now on the service calls its listeners for matching published events, and for
        events handed to it alone (``dispatcher.submit_many_to``). Emits ``cca.subscription.added``
        (its ``filter``: ``sub.filter_expression`` if the class defines it, else ``sub.filter``'s).
        """
        if self._closed:
            raise ServiceClosed("the event service is closed")
        with self._lock:
            sub._handle = self._index.add(sub.pattern, sub)
        self._announce(sub)
        return sub

    def _announce(self, sub: Subscription) -> None:
        # Subclasses that filter before the hand-off (fabric subscriptions) name their filter here.
        expression = getattr(sub, "filter_expression", None)
        if expression is None and sub.filter is not None:
            expression = sub.filter.expression
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

    # -- delivery (called by dispatchers) --------------------------------------------------------

    def process_events(self, timeout: float | None = None) -> int:
        """Deliver queued events; return how many listener calls were made (CCA processEvents).

        Sync mode: flushes the queue in this thread. Threads mode: waits until the pool has
        delivered everything queued so far (or ``timeout``). Asyncio mode: the same, from another
        thread (on the loop itself use ``await service.drain()``).
        """
        calls = self._dispatcher.process_events(timeout)
        if self._drops or self._expired_topics:
            self._report()
        return calls

    async def drain(self) -> int:
        """Asyncio mode: wait until everything queued is delivered; return listener calls made."""
        drain = getattr(self._dispatcher, "drain", None)
        if drain is None:
            return self.process_events()
        calls = await drain()
        self._report()
        return int(calls)

    def _targets(self, event: Event) -> tuple[Subscription, ...]:
        subs = self._match(event.topic)
        if subs and event.ttl is not None and event.expired():
            self._note_expired(event)
            return ()
        return subs

    def _deliver(self, event: Event) -> int:
        # The listener loop is inlined here and in _deliver_to (not a shared helper): on the
        # hot path a Python call per event and subscription costs ~10% of delivery.
        subs = self._match_cache.get(event.topic)
        if subs is None:
            subs = self._match(event.topic)
        if not subs:
            return 0
        if event.ttl is not None and event.expired():
            self._note_expired(event)
            return 0
        calls = 0
        for sub in subs:
            flt = sub.filter
            if flt is not None and not flt(event):
                continue
            for listener in sub._listeners:
                try:
                    listener(event)
                except Exception as exc:
                    self._listener_failed(sub, listener, event, exc)
                calls += 1
        return calls

    def _deliver_to(self, events: Sequence[Event], sub: Subscription) -> int:
        """Deliver ``events`` (in order) to ``sub`` only: replays and the fabric's hand-offs.

        One call per batch; the subscription's state (active, listeners) is read per event, so
        that unsubscribing or removing a listener takes effect within a batch as it would between
        single events.
        """
        calls = 0
        flt = sub.filter
        for event in events:
            if not sub.active:
                break
            if flt is not None and not flt(event):
                continue
            for listener in sub._listeners:
                try:
                    listener(event)
                except Exception as exc:
                    self._listener_failed(sub, listener, event, exc)
                calls += 1
        return calls

    async def _adeliver(self, event: Event, only: Subscription | None) -> int:
        """Deliver one event on an asyncio loop, awaiting awaitable results in order."""
        subs = self._targets(event) if only is None else ((only,) if only.active else ())
        calls = 0
        for sub in subs:
            if sub.filter is not None and not sub.filter(event):
                continue
            for listener in sub._listeners:
                try:
                    result = listener(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self._listener_failed(sub, listener, event, exc)
                calls += 1
        return calls

    # -- accounting and framework events -----------------------------------------------------

    def _listener_failed(self, sub: Subscription, listener: Callable[..., Any], event: Event, exc: Exception) -> None:
        self._listener_errors += 1
        name = getattr(listener, "__qualname__", repr(listener))
        log.error("listener %s of %s failed on %s %s: %r", name, sub.name, event.topic, event.id, exc)
        if event.topic != cca.LISTENER_FAILED:  # a failing failure-listener must not loop
            self.emit(
                cca.LISTENER_FAILED,
                {
                    "subscription": sub.name,
                    "listener": name,
                    "event_id": event.id,
                    "topic": event.topic,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )

    def _note_drop(self, event: Event, policy: Overflow) -> None:
        with self._report_lock:
            self._drops[event.topic] += 1
            self._dropped_total += 1
        self._drop_policy = policy.value

    def _note_expired(self, event: Event) -> None:
        with self._report_lock:
            self._expired += 1
            self._expired_topics[event.topic] += 1

    def _report(self) -> None:
        """Publish one summary event for the drops and expiries noted since the last report."""
        if not (self._drops or self._expired_topics):
            return
        with self._report_lock:
            drops, self._drops = self._drops, Counter()
            expired, self._expired_topics = self._expired_topics, Counter()
        if drops:
            self.emit(
                cca.EVENTS_DROPPED,
                {"count": sum(drops.values()), "policy": getattr(self, "_drop_policy", ""), "topics": dict(drops)},
            )
        if expired:
            self.emit(cca.EVENTS_EXPIRED, {"count": sum(expired.values()), "topics": dict(expired)})
        if self.mode == "sync":
            self._dispatcher.process_events()

    def emit(self, topic: str, body: Body) -> None:
        """Publish a framework event (``topic`` in the reserved ``cca`` group), only when someone
        listens; it bypasses the queue bound and is not validated (the framework builds it)."""
        subs = self._match(topic)
        if not subs or self._closed:
            return
        eid, now = stamp()
        event = Event(id=eid, topic=topic, source=self.source, time=now, seq=next(self._seq), body=body)
        disp = self._dispatcher
        if isinstance(disp, SyncDispatcher):
            disp._queue.append(event)
        else:
            for sub in subs:
                disp.submit_to(event, sub)

    # -- state ----------------------------------------------------------------------------------

    @property
    def stats(self) -> ServiceStats:
        """Counters: published, delivered (listener calls), dropped, expired, errors, pending..."""
        disp = self._dispatcher
        return ServiceStats(
            published=self._published,
            delivered=disp.delivered,
            dropped=self._dropped_total,
            expired=self._expired,
            listener_errors=self._listener_errors,
            filter_errors=sum(s.filter.errors for s in self.subscriptions if s.filter is not None),
            pending=disp.pending(),
            topics=len(self._topics),
            subscriptions=len(self._index),
            workers=getattr(disp, "workers", 0),
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
