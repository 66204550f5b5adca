"""Dispatchers: how queued events reach listeners (CCA 2.1 and 4).

* :class:`SyncDispatcher`: events wait in one bounded queue until the application calls
  ``process_events()``, which delivers them in publish order.
* :class:`ThreadPoolDispatcher`: a pool of dispatcher threads delivers events as they come.
  Per-topic order is kept by giving each topic a *strand* (its own FIFO) that only one thread
  works on at a time. ``scheduling="shared"`` is the work-queue model (any idle thread takes the
  next ready strand); ``scheduling="round_robin"`` gives each thread its own queue and assigns
  topics to threads round-robin. The pool grows with demand up to ``max_workers`` and idle
  threads beyond ``workers`` retire.
* :class:`AsyncioDispatcher` (in ``evfabric.local.aio``) delivers on an asyncio loop.

All share the bound (``capacity`` queued events) and the overflow policy. Events handed to one
subscription (replays, the fabric's received batches) travel as one queue item per batch
(``submit_many_to``): one lock acquisition and one wake-up per batch, not per event.

A dispatcher is a strategy the service configures: it is given a
:class:`~evfabric.local.delivery.Delivery` (what delivering one event means, and the loss
accounting) and calls only its public methods; the service calls only the dispatcher's.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from evfabric.core.errors import QueueFull, ServiceClosed
from evfabric.core.event import Event
from evfabric.local.overflow import Overflow

if TYPE_CHECKING:
    from evfabric.local.delivery import Delivery
    from evfabric.local.subscription import Subscription

__all__ = ["Dispatcher", "Lane", "SyncDispatcher", "ThreadPoolDispatcher"]

Item = Any  # an Event, or (events, Subscription) for a delivery to one subscription only


def take_run(items: deque[Item], limit: int) -> tuple[list[Item], int]:
    """The items at the front of a strand worth up to ``limit`` events (a hand-off batch counts
    its events, and is taken whole), taken off ``items``; and their events."""
    batch: list[Item] = []
    n = 0
    while items and n < limit:
        item = items.popleft()
        batch.append(item)
        n += len(item[0]) if type(item) is tuple else 1
    return batch, n


class Lane(deque[Item]):
    """A dispatcher's queue that a publisher may append an event to directly, instead of calling
    ``submit``, while ``len(lane) < lane.room`` (the bound, and nothing else to do: no lock, no
    wake-up). The sync publish's fast path: a Python call less per event."""

    __slots__ = ("room",)

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room


class Dispatcher:
    """Common part: the bound, the overflow policy, and the :class:`Delivery` it calls."""

    def __init__(self, delivery: Delivery, capacity: int, overflow: Overflow) -> None:
        self.delivery = delivery
        self.capacity = capacity
        self.overflow = overflow
        self.delivered = 0  # listener calls made
        self.lane: Lane | None = None  # see Lane; None: every event goes through submit()

    @property
    def workers(self) -> int:
        """Dispatcher threads alive now (0: delivery runs in the caller's thread or on a loop)."""
        return 0

    def submit(self, event: Event) -> None:
        """Queue ``event`` for delivery, applying the overflow policy when the queue is full."""
        raise NotImplementedError

    def submit_to(self, event: Event, subscription: Subscription) -> None:
        """Queue ``event`` for one subscription only (replay); not bounded."""
        self.submit_many_to((event,), subscription)

    def submit_many_to(self, events: Sequence[Event], subscription: Subscription) -> None:
        """Queue ``events`` for one subscription only, in order; not bounded (the caller bounds it).

        Per-topic order holds as for :meth:`submit`; the batch is delivered in one go.
        """
        raise NotImplementedError

    def submit_framework(self, event: Event, subscriptions: Sequence[Subscription]) -> None:
        """Queue a framework event for ``subscriptions`` (its matches), bypassing the bound."""
        for sub in subscriptions:
            self.submit_to(event, sub)

    async def wait_for_room(self) -> None:
        """Return when a publish would not block (asyncio dispatchers wait without blocking the loop)."""

    async def drain(self) -> int:
        """Deliver what is queued; the asyncio form of :meth:`process_events`."""
        return self.process_events()

    def process_events(self, timeout: float | None = None) -> int:
        """Deliver what is queued; return the listener calls made."""
        raise NotImplementedError

    def pending(self) -> int:
        """Events queued and not yet delivered."""
        raise NotImplementedError

    def close(self, drain: bool = True, timeout: float = 10.0) -> None:
        """Stop accepting events; deliver what is queued first when ``drain``."""

    def _full(self, event: Event, make_room: Callable[[], Event | None]) -> bool:
        """Apply the policy to a full queue; True when ``event`` should still be queued."""
        policy = self.overflow
        if policy is Overflow.DROP_NEWEST:
            self.delivery.dropped_event(event, policy)
            return False
        if policy is Overflow.DROP_OLDEST:
            old = make_room()
            if old is not None:
                self.delivery.dropped_event(old, policy)
            return True
        raise QueueFull(
            f"event queue is full ({self.capacity} events) and the overflow policy is 'raise'; "
            f"topic {event.topic!r} event {event.id} was not queued"
        )


class SyncDispatcher(Dispatcher):
    """One bounded FIFO flushed by ``process_events()`` in the caller's thread."""

    def __init__(self, delivery: Delivery, capacity: int, overflow: Overflow) -> None:
        super().__init__(delivery, capacity, overflow)
        self._queue = self.lane = Lane(capacity)  # room: capacity - _extra
        self._busy = False
        self._lock = threading.Lock()  # publishes from other threads; delivery stays in the caller's
        self._extra = 0  # events queued in targeted batches beyond one per queue item
        self._cache = delivery.cache

    def submit(self, event: Event) -> None:
        q = self._queue
        if len(q) + self._extra >= self.capacity:
            if self.overflow is Overflow.BLOCK:
                # Synchronous mode: "a thread will yield in order to allow events to be processed".
                # Inside a listener the queue may exceed its bound briefly: the running flush drains it.
                if not self._busy:
                    self.process_events()
            elif not self._full(event, self._pop_oldest):
                return
        q.append(event)

    def _pop_oldest(self) -> Event | None:
        q = self._queue
        for i, item in enumerate(q):
            if type(item) is not tuple:  # targeted replays are not the policy's to drop
                del q[i]
                return item
        return None

    def submit_many_to(self, events: Sequence[Event], subscription: Subscription) -> None:
        if not events:
            return
        with self._lock:  # the fabric hands batches over from its loop thread
            self._extra += len(events) - 1
            self._queue.room = self.capacity - self._extra
            self._queue.append((events, subscription))

    def submit_framework(self, event: Event, subscriptions: Sequence[Subscription]) -> None:
        self._queue.append(event)  # delivered by the running or the next flush, to its matches

    def process_events(self, timeout: float | None = None) -> int:
        if self._busy:  # a listener called process_events: the running flush goes on
            return 0
        self._busy = True
        d = self.delivery
        cache = self._cache
        q = self._queue
        calls = 0
        try:
            while True:
                while q:
                    item = q.popleft()
                    if type(item) is tuple:
                        with self._lock:
                            self._extra -= len(item[0]) - 1
                            q.room = self.capacity - self._extra
                        calls += d.deliver_to(*item)
                        continue
                    # Delivery.deliver, written out: a call per event is a measurable share here
                    subs = cache.get(item.topic)
                    if subs is None:
                        subs = d.match(item.topic)
                    if not subs:
                        continue
                    if item.ttl is not None and item.expired(d.clock.time()):
                        d.note_expired(item)
                        continue
                    for sub in subs:
                        flt = sub.filter
                        if flt is not None and not flt(item):
                            continue
                        for listener in sub._listeners:
                            try:
                                listener(item)
                            except Exception as exc:
                                d.listener_failed(sub, listener, item, exc)
                            calls += 1
                if not d.losses:
                    break
                d.report()  # queues the summary events: the loop delivers them too
        finally:
            self._busy = False
            self.delivered += calls
        return calls

    def pending(self) -> int:
        return len(self._queue) + self._extra

    def close(self, drain: bool = True, timeout: float = 10.0) -> None:
        if drain:
            self.process_events()
        with self._lock:
            self._queue.clear()
            self._extra = 0
            self._queue.room = self.capacity


class _Strand:
    """The FIFO of one topic; ``held`` while a thread delivers from it."""

    __slots__ = ("held", "home", "items")

    def __init__(self, home: _ReadyQueue) -> None:
        self.items: deque[Item] = deque()
        self.held = False
        self.home = home


class _ReadyQueue:
    """Strands with work waiting, and the threads that serve them."""

    __slots__ = ("idle", "strands", "workers")

    def __init__(self) -> None:
        self.strands: deque[_Strand] = deque()
        self.workers = 0
        self.idle = 0


class StrandedDispatcher(Dispatcher):
    """The producer side shared by dispatchers that keep one strand (a queue) per topic and
    deliver strands on threads: the bound with its overflow policy, the oldest-event drop, and
    batches split per topic; and waiting for a drained dispatcher. Subclasses set ``_lock``,
    ``_room`` (a Condition on it, notified when room frees), ``_cond`` (one notified when the
    dispatcher drains), ``_strands`` (topic -> strand with ``items``), ``_pending``,
    ``_in_flight``, ``_blocked``, ``_closed``, and define ``_enqueue_locked(item, topic, n)``."""

    _lock: threading.Lock
    _room: threading.Condition
    _cond: threading.Condition
    _in_flight: int
    _strands: dict[str, Any]
    _pending: int
    _blocked: int
    _closed: bool

    def _enqueue_locked(self, item: Item, topic: str, n: int) -> None:
        raise NotImplementedError

    def process_events(self, timeout: float | None = None) -> int:
        """Wait until every event queued so far is delivered; return listener calls made meanwhile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            before = self.delivered
            while self._pending or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(0.05 if left is None else min(left, 0.05))
            return self.delivered - before

    def pending(self) -> int:
        return self._pending + self._in_flight

    def close(self, drain: bool = True, timeout: float = 10.0) -> None:
        if drain:
            self.process_events(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def submit(self, event: Event) -> None:
        # The Condition's lock is entered directly: ``with self._cond`` costs a Python-level call.
        with self._lock:
            if self._closed:
                raise ServiceClosed("the event service is closed")
            if self._pending >= self.capacity:
                if self.overflow is Overflow.BLOCK:
                    self._blocked += 1
                    while self._pending >= self.capacity and not self._closed:
                        self._room.wait(0.5)
                    self._blocked -= 1
                elif not self._full(event, self._pop_oldest_locked):
                    return
            self._enqueue_locked(event, event.topic, 1)

    def _pop_oldest_locked(self) -> Event | None:
        # The oldest event overall is the smallest id at the head of some strand.
        heads = [(s.items[0].id, s) for s in self._strands.values() if s.items and type(s.items[0]) is not tuple]
        if not heads:
            return None
        _, strand = min(heads, key=lambda h: h[0])
        self._pending -= 1
        return strand.items.popleft()

    def submit_many_to(self, events: Sequence[Event], subscription: Subscription) -> None:
        if not events:
            return
        topic = events[0].topic
        if events[-1].topic == topic and all(ev.topic == topic for ev in events):
            with self._lock:
                self._enqueue_locked((events, subscription), topic, len(events))
            return
        by_topic: dict[str, list[Event]] = {}  # one strand per topic keeps per-topic order
        for ev in events:
            by_topic.setdefault(ev.topic, []).append(ev)
        with self._lock:
            for topic, evs in by_topic.items():
                self._enqueue_locked((evs, subscription), topic, len(evs))


class ThreadPoolDispatcher(StrandedDispatcher):
    """Dispatcher threads deliver events as they are published, keeping per-topic order."""

    # Events a thread takes from a strand before letting others have a turn (or one whole
    # hand-off batch). 256 rather than 64: +10% throughput publishing from one thread, measured;
    # larger still helps throughput but delays other topics that share a round-robin thread.
    BATCH = 256

    def __init__(
        self,
        delivery: Delivery,
        capacity: int,
        overflow: Overflow,
        workers: int,
        max_workers: int,
        scheduling: str,
        idle_timeout: float = 2.0,
    ) -> None:
        super().__init__(delivery, capacity, overflow)
        self.min_workers = workers
        self.max_workers = max_workers
        self.scheduling = scheduling
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._blocked = 0  # publishers waiting for room (overflow 'block')
        self._strands: dict[str, _Strand] = {}
        self._queues: list[_ReadyQueue] = []
        self._next_queue = 0
        self._pending = 0
        self._in_flight = 0
        self._closed = False
        self._threads: list[threading.Thread] = []
        self.peak_workers = 0
        if scheduling == "shared":
            shared = _ReadyQueue()
            self._queues = [shared]
        for _ in range(workers):
            self._spawn_locked(self._queue_for_new_worker())

    # -- pool -------------------------------------------------------------------------------

    def _queue_for_new_worker(self) -> _ReadyQueue:
        if self.scheduling == "shared":
            return self._queues[0]
        q = _ReadyQueue()
        self._queues.append(q)
        return q

    def _spawn_locked(self, ready: _ReadyQueue) -> None:
        ready.workers += 1
        t = threading.Thread(target=self._work, args=(ready,), name="evfabric-dispatch", daemon=True)
        self._threads.append(t)
        self.peak_workers = max(self.peak_workers, self.workers)
        t.start()

    @property
    def workers(self) -> int:
        """Dispatcher threads alive now."""
        return sum(q.workers for q in self._queues)

    def _maybe_grow_locked(self, ready: _ReadyQueue) -> None:
        # Grow when strands wait and nobody is idle to take them (demand-driven sizing).
        if len(ready.strands) > ready.idle and self.workers < self.max_workers:
            self._spawn_locked(ready if self.scheduling == "shared" else self._queue_for_new_worker())

    # -- producer side --------------------------------------------------------------------------

    def _new_strand_locked(self, topic: str) -> _Strand:
        if self.scheduling == "shared":
            home = self._queues[0]
        else:  # round-robin assignment of topics to the threads' own queues
            home = self._queues[self._next_queue % len(self._queues)]
            self._next_queue += 1
        strand = self._strands[topic] = _Strand(home)
        return strand

    def _enqueue_locked(self, item: Item, topic: str, n: int) -> None:
        strand = self._strands.get(topic) or self._new_strand_locked(topic)
        items = strand.items
        items.append(item)
        self._pending += n
        if len(items) == 1 and not strand.held:
            home = strand.home
            home.strands.append(strand)
            self._maybe_grow_locked(home)
            if home.idle or self.scheduling != "shared":  # notify() is Python code: skip it when nobody waits
                self._cond.notify_all() if self.scheduling != "shared" else self._cond.notify()

    # -- consumer side ---------------------------------------------------------------------------

    def _work(self, ready: _ReadyQueue) -> None:
        d = self.delivery
        deliver, deliver_to = d.deliver, d.deliver_to
        cond = self._cond
        limit = self.BATCH
        while True:
            with cond:
                ready.idle += 1
                deadline = time.monotonic() + self.idle_timeout
                while not ready.strands:
                    if self._closed:
                        ready.idle -= 1
                        ready.workers -= 1
                        return
                    left = deadline - time.monotonic()
                    # Idle extra threads retire; in round-robin mode each thread owns a queue and stays.
                    if left <= 0 and self.scheduling == "shared" and self.workers > self.min_workers:
                        ready.idle -= 1
                        ready.workers -= 1
                        return
                    cond.wait(left if left > 0 else self.idle_timeout)
                ready.idle -= 1
                strand = ready.strands.popleft()
                strand.held = True
                batch, n = take_run(strand.items, limit)
                self._pending -= n
                self._in_flight += n
                if self._blocked:
                    self._room.notify_all()
            calls = 0
            for item in batch:
                if type(item) is tuple:
                    calls += deliver_to(*item)
                else:
                    calls += deliver(item)
            if d.losses:
                d.report()
            with cond:
                self.delivered += calls
                self._in_flight -= n
                strand.held = False
                if strand.items:
                    home = strand.home
                    home.strands.append(strand)
                    if home.idle:
                        cond.notify()
                elif self._pending == 0 and self._in_flight == 0:
                    cond.notify_all()  # wake process_events() waiting for a drained pool

    def close(self, drain: bool = True, timeout: float = 10.0) -> None:
        super().close(drain, timeout)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
