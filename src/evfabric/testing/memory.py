"""``MemoryBroker``: the fabric's semantics in one process, for unit tests (no server).

    broker = MemoryBroker()
    a, b = broker.connect(source="a"), broker.connect(source="b")
    got = []
    b.subscribe("lab.*", delivery="reliable", listener=got.append)
    a.publish("lab.temp", {"c": 21}, delivery="reliable")
    broker.join()                      # every published event handled (as dramatiq's StubBroker.join)
    assert got[0].body == {"c": 21}

Each client is a :class:`~evfabric.bus.Bus`. What it models, as the broker does:

* **Topics** are stored per root (the first segment), as the broker's streams: a root exists once
  an event is published reliably to it, a reliable subscription names it, or :meth:`create_topic`
  made it. Every event on an existing root is stored (best effort too), with a sequence number per
  root and the broker's receive time.
* **Best effort** subscriptions receive live events only; each holds at most ``max_pending``
  undelivered events, beyond which events are dropped and counted (``sub.stats.dropped``,
  ``client.stats.dropped``). A listener that raises is counted (``failed``); nothing is redelivered.
* **Reliable** subscriptions are consumers of the stored events: an event is acknowledged once
  every listener returned; a listener that raises sends it back (redelivered after the events
  already queued) up to ``max_deliver`` attempts, then it is dead-lettered to
  ``cca.deadletter.<topic>`` (body: ``event``, ``error``, ``attempts``, ``subscription``,
  ``pattern``, ``group``) and acknowledged.
* **Groups**: subscriptions with the same ``group`` share the events (each to one member; events
  with a ``key`` always go to the same member while the membership holds). A reliable group or a
  named subscription is durable: it keeps its position and its unacknowledged events while no
  member is connected, and a new member resumes there (``start`` counts only at creation).
* **Replay** (``start=``): ``"new"``, ``"earliest"``, ``"last"`` (the last stored event of each
  matching topic... and everything after it), a sequence number, a position ``"<seq>:0"`` (each
  stored event is a message of one event here: its ``position`` is ``<seq>:0``), a time (seconds since the epoch) or an aware
  ``datetime``.
* **Filters** (CEL) are applied before the listeners; a filtered-out event is acknowledged.

Delivery happens in :meth:`MemoryClient.process_events` (``mode="sync"``, the default: in the
caller's thread) or on one thread per client (``mode="threads"``). :meth:`MemoryBroker.join`
waits until nothing is left anywhere, driving sync clients itself.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from evfabric.bus import Start
from evfabric.core.clocks import Clock, SystemClock
from evfabric.core.errors import ConfigError, ReceiveTimeout, ServiceClosed
from evfabric.core.event import BEST_EFFORT, RELIABLE, Body, Delivery, Event, make_event
from evfabric.core.filters import Filter
from evfabric.core.position import Position, position_of
from evfabric.core.topics import Pattern, check_publishable, validate_topic
from evfabric.local.subscription import Listener, Subscription

if TYPE_CHECKING:
    from evfabric.testing.memory_aio import AsyncMemoryClient

__all__ = ["MemoryBroker", "MemoryClient", "MemoryStats", "MemorySubscription", "SubscriptionStats"]

log = logging.getLogger("evfabric.testing")

DEAD_LETTER_GROUP = "cca.deadletter"


@dataclass
class SubscriptionStats:
    """Counters of one subscription (the fabric's names): events, each attempt counted."""

    received: int = 0
    handed: int = 0
    filtered: int = 0
    duplicates: int = 0
    failed: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    garbage: int = 0


@dataclass
class MemoryStats:
    """Counters of one client."""

    published: int = 0
    stored: int = 0
    delivered: int = 0  # listener calls
    dropped: int = 0


@dataclass
class _Stored:
    seq: int
    event: Event
    at: float


class _Item:
    """One event on its way to one subscription (reliable: one attempt of one consumer message)."""

    __slots__ = ("attempt", "consumer", "event", "sub")

    def __init__(self, event: Event, sub: MemorySubscription, consumer: _Consumer | None, attempt: int) -> None:
        self.event, self.sub, self.consumer, self.attempt = event, sub, consumer, attempt


class _Consumer:
    """A reliable consumer: its members, its backlog while none is connected, its settings."""

    def __init__(self, key: str, pattern: Pattern, durable: bool, max_deliver: int) -> None:
        self.key, self.pattern, self.durable, self.max_deliver = key, pattern, durable, max_deliver
        self.members: list[MemorySubscription] = []
        self.backlog: deque[tuple[Event, int]] = deque()
        self.turn = 0


class MemorySubscription(Subscription):
    """A subscription on a :class:`MemoryClient`: the local Subscription, plus its delivery
    ``mode``, ``group`` and :class:`SubscriptionStats`."""

    __slots__ = ("client", "consumer", "delivery", "group", "pending", "stats")

    def __init__(self, client: MemoryClient, pattern: Pattern, flt: Filter | None, name: str,
                 delivery: str, group: str | None) -> None:
        super().__init__(client, pattern, flt, name)
        self.client = client
        self.delivery = delivery
        self.group = group
        self.consumer: _Consumer | None = None
        self.pending = 0
        self.stats = SubscriptionStats()


class MemoryBroker:
    """An in-memory broker; :meth:`connect` gives clients (see the module docstring).

    :param clock: the wall clock stamping stored events (a :class:`~evfabric.core.clocks.ManualClock`
        in tests that replay by time).
    :param max_pending: undelivered events a best-effort subscription may hold before drops.
    """

    def __init__(self, *, clock: Clock | None = None, max_pending: int = 65_536) -> None:
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ConfigError(f"max_pending must be a positive int, got {max_pending!r}")
        self.clock = clock or SystemClock()
        self.max_pending = max_pending
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._roots: dict[str, list[_Stored]] = {}
        self._seq: dict[str, count[int]] = {}
        self._subs: list[MemorySubscription] = []
        self._consumers: dict[str, _Consumer] = {}
        self._clients: list[MemoryClient] = []
        self._outstanding = 0  # items queued or being handled, over all clients

    # -- clients ------------------------------------------------------------------------------

    def connect(self, source: str = "evfabric", *, mode: Literal["sync", "threads", "asyncio"] = "sync",
                delivery: Delivery = BEST_EFFORT) -> MemoryClient:
        """A new client (a :class:`~evfabric.bus.Bus`) publishing as ``source``."""
        client = MemoryClient(self, source, mode, delivery)
        with self._lock:
            self._clients.append(client)
        return client

    async def connect_async(self, source: str = "evfabric", *, delivery: Delivery = BEST_EFFORT) -> AsyncMemoryClient:
        """A new asyncio client (a :class:`~evfabric.bus.AsyncBus`) delivering on the running loop;
        its listeners may be coroutine functions."""
        from evfabric.testing.memory_aio import AsyncMemoryClient

        return AsyncMemoryClient(self.connect(source, mode="asyncio", delivery=delivery))

    async def ajoin(self, timeout: float = 10.0) -> None:
        """:meth:`join` for code on an asyncio loop (waits in a worker thread, the loop runs on)."""
        await asyncio.get_running_loop().run_in_executor(None, self.join, timeout)

    def join(self, timeout: float = 10.0) -> None:
        """Return when every published event has been handled by every subscription (acked,
        dropped or dead-lettered), including events listeners published meanwhile.

        Sync clients are driven from this thread. Raises :class:`ReceiveTimeout` after ``timeout``
        seconds (real time) with the count still outstanding.
        """
        deadline = time.monotonic() + timeout
        while True:
            progressed = sum(c._drain() for c in list(self._clients) if c.mode == "sync")
            with self._lock:
                if self._outstanding == 0:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReceiveTimeout(f"join: {self._outstanding} events still not handled after {timeout} s")
                if not progressed:
                    self._idle.wait(min(left, 0.05))

    # -- topics ---------------------------------------------------------------------------------

    def create_topic(self, name: str) -> None:
        """Create the stream of topic root ``name`` (idempotent)."""
        validate_topic(name)
        with self._lock:
            self._ensure_root(name.split(".", 1)[0])

    def _ensure_root(self, root: str) -> None:
        if root not in self._roots:
            self._roots[root] = []
            self._seq[root] = count(1)

    def stored(self, pattern: str | Pattern = "*") -> list[Event]:
        """The stored events on topics matching ``pattern``, by root then sequence."""
        pat = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        with self._lock:
            return [s.event for log_ in self._roots.values() for s in log_ if pat.matches(s.event.topic)]

    @property
    def topics(self) -> list[str]:
        """The topic roots that exist (have a stream)."""
        with self._lock:
            return sorted(self._roots)

    # -- the broker's work (called by clients, under no client lock) --------------------------------

    def _accept(self, event: Event) -> bool:
        """Store (if its root exists, or it is reliable) and route ``event``; True if stored."""
        root = event.topic.split(".", 1)[0]
        with self._lock:
            if event.delivery == RELIABLE:
                self._ensure_root(root)
            stored = root in self._roots
            if stored:
                seq = next(self._seq[root])
                event.packed_position = Position(seq, 0).packed()  # a message of one event
                self._roots[root].append(_Stored(seq, event, self.clock.time()))
            for sub in self._subs:
                if sub.consumer is None and sub.pattern.matches(event.topic):
                    self._offer_best_effort(sub, event)
            if stored:
                for consumer in self._consumers.values():
                    if consumer.pattern.matches(event.topic):
                        self._route(consumer, event, 1)
        return stored

    def _offer_best_effort(self, sub: MemorySubscription, event: Event) -> None:
        if sub.group is not None:  # a queue group: one member gets it
            members = [s for s in self._subs if s.group == sub.group and s.pattern == sub.pattern and s.consumer is None]
            if members[hash(event.id) % len(members)] is not sub:
                return
        sub.stats.received += 1
        if sub.pending >= self.max_pending:
            sub.stats.dropped += 1
            sub.client.stats.dropped += 1
            return
        self._enqueue(_Item(event, sub, None, 1))

    def _route(self, consumer: _Consumer, event: Event, attempt: int) -> None:
        members = [m for m in consumer.members if m.active]
        if not members:
            consumer.backlog.append((event, attempt))
            return
        if event.key is not None:
            member = members[hash(event.key) % len(members)]
        else:
            member = members[consumer.turn % len(members)]
            consumer.turn += 1
        member.stats.received += 1
        self._enqueue(_Item(event, member, consumer, attempt))

    def _enqueue(self, item: _Item) -> None:
        item.sub.pending += 1
        self._outstanding += 1
        item.sub.client._inbox.append(item)
        item.sub.client._wake()

    def _done(self, item: _Item, error: BaseException | None) -> None:
        """Settle one handled item: ack, redeliver or dead-letter (reliable)."""
        letter = None
        with self._lock:
            item.sub.pending -= 1
            consumer = item.consumer
            if consumer is not None and error is not None:
                if item.attempt < consumer.max_deliver:
                    self._route(consumer, item.event, item.attempt + 1)
                else:
                    item.sub.stats.dead_lettered += 1
                    letter = self._dead_letter(item, error)
            self._outstanding -= 1
        if letter is not None:
            self._accept(letter)
        with self._lock:
            if self._outstanding == 0:
                self._idle.notify_all()

    def _dead_letter(self, item: _Item, error: BaseException) -> Event:
        ev, sub = item.event, item.sub
        body = {
            "event": msgspec.to_builtins(ev, builtin_types=(bytes,)),
            "error": f"{type(error).__name__}: {error}", "attempts": item.attempt,
            "subscription": sub.name, "pattern": sub.pattern.text, "group": sub.group,
        }
        return make_event(f"{DEAD_LETTER_GROUP}.{ev.topic}", body, source=sub.client.source,
                          type="evfabric.deadletter", delivery=RELIABLE)

    def _add(self, sub: MemorySubscription, start: Start, name: str | None, max_deliver: int) -> None:
        with self._lock:
            if sub.delivery != RELIABLE:
                self._subs.append(sub)
                return
            key = name or (f"group:{sub.group}:{sub.pattern.text}" if sub.group else f"sub:{id(sub)}")
            consumer = self._consumers.get(key)
            replay = self._replay(sub.pattern, start) if consumer is None else []  # refuses a bad start first
            self._subs.append(sub)
            root = sub.pattern.text.split(".", 1)[0]
            if root not in ("*", "?"):
                self._ensure_root(root)
            if consumer is None:
                consumer = self._consumers[key] = _Consumer(key, sub.pattern, bool(name or sub.group), max_deliver)
                consumer.backlog.extend((stored.event, 1) for stored in replay)
            sub.consumer = consumer
            consumer.members.append(sub)
            backlog, consumer.backlog = consumer.backlog, deque()
            for event, attempt in backlog:
                self._route(consumer, event, attempt)

    def _replay(self, pattern: Pattern, start: Start) -> list[_Stored]:
        if start is None or start == "new":
            return []
        items = sorted((s for log_ in self._roots.values() for s in log_ if pattern.matches(s.event.topic)),
                       key=lambda s: (s.at, s.seq))
        if start == "earliest":
            return items
        if start == "last":
            return items[-1:]
        if isinstance(start, bool):
            raise ConfigError(f"start must be 'new', 'earliest', 'last', a sequence, a time or a datetime, got {start!r}")
        position = position_of(start)
        if position is not None:  # each stored event is a message of its own here: index 0 only
            if position.index:
                raise ConfigError(f"position {position}: message {position.seq} holds 1 event (indices 0 to 0)")
            start = position.seq
        if isinstance(start, int):
            if start < 1:
                raise ConfigError(f"start sequence must be >= 1, got {start}")
            return [s for s in items if s.seq >= start]
        if isinstance(start, _dt.datetime):
            if start.tzinfo is None:
                raise ConfigError("start datetime must be timezone-aware")
            start = start.timestamp()
        if isinstance(start, float):
            return [s for s in items if s.at >= start]
        raise ConfigError(f"start must be 'new', 'earliest', 'last', a sequence, a time or a datetime, got {start!r}")

    def _remove(self, sub: MemorySubscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
            sub.active = False
            consumer = sub.consumer
            if consumer is not None:
                consumer.members.remove(sub)
                if not consumer.members and not consumer.durable:
                    del self._consumers[consumer.key]
            # what this subscription still held goes back to its consumer (reliable) or is lost
            client = sub.client
            kept = deque(it for it in client._inbox if it.sub is not sub)
            for it in client._inbox:
                if it.sub is sub:
                    sub.pending -= 1
                    self._outstanding -= 1
                    if consumer is not None and consumer.key in self._consumers:
                        self._route(consumer, it.event, it.attempt)
            client._inbox = kept
            if self._outstanding == 0:
                self._idle.notify_all()


class MemoryClient:
    """A client of a :class:`MemoryBroker`: a :class:`~evfabric.bus.Bus`."""

    def __init__(self, broker: MemoryBroker, source: str, mode: str, delivery: str) -> None:
        if mode not in ("sync", "threads", "asyncio"):
            raise ConfigError(f"mode must be 'sync', 'threads' or 'asyncio', got {mode!r}")
        if delivery not in (BEST_EFFORT, RELIABLE):
            raise ConfigError(f"delivery must be 'best_effort' or 'reliable', got {delivery!r}")
        make_event("x", source=source)  # validates the source
        self.broker = broker
        self.mode = mode
        self.delivery = delivery
        self.stats = MemoryStats()
        self._source = source
        self._seq = count(1)
        self._names = count(1)
        self._inbox: deque[_Item] = deque()
        self._busy = threading.Lock()  # one delivery at a time keeps each subscription's order
        self._ready = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.on_ready: Callable[[], None] | None = None  # asyncio mode: wakes the loop's pump
        if mode == "threads":
            self._thread = threading.Thread(target=self._run, name=f"evfabric-memory-{source}", daemon=True)
            self._thread.start()

    @property
    def source(self) -> str:
        """The component id stamped on published events."""
        return self._source

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, topic: str, body: Body | None = None, *, delivery: Delivery | None = None, **header: Any) -> Event:
        """Validate, stamp and hand ``event`` to the broker (stored at once if reliable); return it."""
        if self._closed:
            raise ServiceClosed("the memory client is closed")
        check_publishable(topic)
        header.setdefault("source", self._source)
        event = make_event(topic, body, delivery=delivery or self.delivery, seq=next(self._seq), **header)
        self.stats.published += 1
        if self.broker._accept(event):
            self.stats.stored += 1
        return event

    def publish_many(self, topic: str, bodies: Iterable[Body], *, delivery: Delivery | None = None,
                     **header: Any) -> list[Event]:
        """One event per body on ``topic``, same header; returns the events."""
        return [self.publish(topic, body, delivery=delivery, **header) for body in bodies]

    def flush(self, timeout: float | None = None) -> None:
        """Nothing waits to be sent: the broker took every event at publish."""

    # -- subscribing ----------------------------------------------------------------------------

    def subscribe(self, pattern: str | Pattern, filter: str | Filter | None = None, *,
                  listener: Listener | None = None, delivery: Delivery | None = None, group: str | None = None,
                  start: Start = None, replay: bool = False, name: str | None = None,
                  max_deliver: int = 5, redeliver_delay: float = 0.0, ack_wait: float = 30.0) -> MemorySubscription:
        """Subscribe as the fabric client does (``delivery``, ``group``, ``start``, ``replay``,
        ``name``, ``max_deliver``); the default delivery is reliable when ``start`` or ``replay`` is
        given. ``redeliver_delay`` and ``ack_wait`` are accepted for the fabric's signature: here a
        failed event comes back after the events already queued, at once, and the events a closed
        member held go back to the consumer at once."""
        if self._closed:
            raise ServiceClosed("the memory client is closed")
        pat = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        flt = Filter(filter) if isinstance(filter, str) else filter
        if replay and start is None:
            start = "earliest"
        chosen = delivery or (RELIABLE if start is not None else self.delivery)
        if chosen not in (BEST_EFFORT, RELIABLE):
            raise ConfigError(f"delivery must be 'best_effort' or 'reliable', got {chosen!r}")
        if max_deliver < 1:
            raise ConfigError(f"max_deliver must be >= 1, got {max_deliver}")
        sub = MemorySubscription(self, pat, flt, name or group or f"msub-{next(self._names)}", chosen, group)
        if listener is not None:
            sub.add_listener(listener)
        self.broker._add(sub, start, name, max_deliver)
        return sub

    def _remove_subscription(self, sub: Subscription) -> None:
        assert isinstance(sub, MemorySubscription)
        self.broker._remove(sub)

    @property
    def subscriptions(self) -> list[MemorySubscription]:
        """This client's active subscriptions."""
        return [s for s in self.broker._subs if s.client is self]

    # -- delivery -------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._thread is not None:
            with self._ready:
                self._ready.notify()
        elif self.on_ready is not None:
            self.on_ready()

    def _drain(self) -> int:
        """Handle what the inbox holds now and what arrives meanwhile; return listener calls."""
        if not self._busy.acquire(blocking=False):
            return 0  # another thread (or a listener up the stack) is delivering
        calls = 0
        try:
            while True:
                with self.broker._lock:
                    if not self._inbox:
                        break
                    item = self._inbox.popleft()
                calls += self._handle(item)
        finally:
            self._busy.release()
        self.stats.delivered += calls
        return calls

    def _admit(self, item: _Item) -> tuple[Listener, ...]:
        """The listeners to call for ``item`` (none if filtered out or unsubscribed)."""
        sub = item.sub
        if not sub.active:
            return ()
        if sub.filter is not None and not sub.filter(item.event):
            sub.stats.filtered += 1
            return ()
        sub.stats.handed += 1
        return sub.listeners

    def _failed(self, item: _Item, fn: Listener, exc: Exception) -> Exception:
        ev = item.event
        log.error("listener %r of %s failed on %s %s: %r", fn, item.sub.name, ev.topic, ev.id, exc)
        return exc

    def _settle(self, item: _Item, error: BaseException | None) -> None:
        if error is not None:
            item.sub.stats.failed += 1
        self.broker._done(item, error)

    def _handle(self, item: _Item) -> int:
        error: BaseException | None = None
        calls = 0
        for fn in self._admit(item):
            try:
                fn(item.event)
            except Exception as exc:
                error = self._failed(item, fn, exc)
            calls += 1
        self._settle(item, error)
        return calls

    def _run(self) -> None:
        while not self._closed:
            with self._ready:
                if not self._inbox:
                    self._ready.wait(0.5)
            self._drain()

    def process_events(self, timeout: float | None = None) -> int:
        """Sync mode: deliver what arrived, in this thread. Threads mode: wait (at most
        ``timeout``) until the inbox is empty. Returns the listener calls made here."""
        if self.mode == "sync":
            return self._drain()
        deadline = None if timeout is None else time.monotonic() + timeout
        before = self.stats.delivered
        while self._inbox and (deadline is None or time.monotonic() < deadline):
            with self.broker._lock:
                self.broker._idle.wait(0.02)
        return self.stats.delivered - before

    def close(self) -> None:
        """End every subscription of this client (durable consumers keep their place) and stop."""
        if self._closed:
            return
        if self.mode == "sync":
            self._drain()
        for sub in self.subscriptions:
            sub.unsubscribe()
        self._closed = True
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    def __enter__(self) -> MemoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MemoryClient {self._source!r} mode={self.mode} subscriptions={len(self.subscriptions)}>"
