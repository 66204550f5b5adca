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

All share the bound (``capacity`` queued events) and the overflow policy.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evfabric.core.errors import QueueFull, ServiceClosed
from evfabric.core.event import Event
from evfabric.local.overflow import Overflow

if TYPE_CHECKING:
    from evfabric.local.service import EventService
    from evfabric.local.subscription import Subscription

__all__ = ["Dispatcher", "SyncDispatcher", "ThreadPoolDispatcher"]

Item = Any  # an Event, or (Event, Subscription) for a delivery to one subscription (replay)


class Dispatcher:
    """Common part: the bound, the overflow policy, and the service's delivery function."""

    def __init__(self, service: EventService, capacity: int, overflow: Overflow) -> None:
        self.service = service
        self.capacity = capacity
        self.overflow = overflow
        self.delivered = 0  # listener calls made

    def submit(self, event: Event) -> None:
        """Queue ``event`` for delivery, applying the overflow policy when the queue is full."""
        raise NotImplementedError

    def submit_to(self, event: Event, subscription: Subscription) -> None:
        """Queue ``event`` for one subscription only (replay); not bounded."""
        raise NotImplementedError

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
            self.service._note_drop(event, policy)
            return False
        if policy is Overflow.DROP_OLDEST:
            old = make_room()
            if old is not None:
                self.service._note_drop(old, policy)
            return True
        raise QueueFull(
            f"event queue is full ({self.capacity} events) and the overflow policy is 'raise'; "
            f"topic {event.topic!r} event {event.id} was not queued"
        )


class SyncDispatcher(Dispatcher):
    """One bounded FIFO flushed by ``process_events()`` in the caller's thread."""

    def __init__(self, service: EventService, capacity: int, overflow: Overflow) -> None:
        super().__init__(service, capacity, overflow)
        self._queue: deque[Item] = deque()
        self._busy = False
        self._lock = threading.Lock()  # publishes from other threads; delivery stays in the caller's

    def submit(self, event: Event) -> None:
        q = self._queue
        if len(q) >= self.capacity:
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

    def submit_to(self, event: Event, subscription: Subscription) -> None:
        self._queue.append((event, subscription))

    def process_events(self, timeout: float | None = None) -> int:
        if self._busy:  # a listener called process_events: the running flush goes on
            return 0
        self._busy = True
        deliver = self.service._deliver
        deliver_to = self.service._deliver_to
        q = self._queue
        pop = q.popleft
        calls = 0
        try:
            while q:
                item = pop()
                if type(item) is tuple:
                    calls += deliver_to(*item)
                else:
                    calls += deliver(item)
        finally:
            self._busy = False
            self.delivered += calls
        return calls

    def pending(self) -> int:
        return len(self._queue)

    def close(self, drain: bool = True, timeout: float = 10.0) -> None:
        if drain:
            self.process_events()
        self._queue.clear()


class _Strand:
    """The FIFO of one topic; ``held`` while a thread delivers from it."""

    __slots__ = ("items", "held", "home")

    def __init__(self, home: _ReadyQueue) -> None:
        self.items: deque[Item] = deque()
        self.held = False
        self.home = home


class _ReadyQueue:
    """Strands with work waiting, and the threads that serve them."""

    __slots__ = ("strands", "workers", "idle")

    def __init__(self) -> None:
        self.strands: deque[_Strand] = deque()
        self.workers = 0
        self.idle = 0


class ThreadPoolDispatcher(Dispatcher):
    """Dispatcher threads deliver events as they are published, keeping per-topic order."""

    BATCH = 64  # events a thread takes from a strand before letting others have a turn

    def __init__(
        self,
        service: EventService,
        capacity: int,
        overflow: Overflow,
        workers: int,
        max_workers: int,
        scheduling: str,
        idle_timeout: float = 2.0,
    ) -> None:
        super().__init__(service, capacity, overflow)
        self.min_workers = workers
        self.max_workers = max_workers
        self.scheduling = scheduling
        self.idle_timeout = idle_timeout
        self._cond = threading.Condition()
        self._room = threading.Condition(self._cond._lock)  # type: ignore[attr-defined]
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

    def _strand_locked(self, topic: str) -> _Strand:
        strand = self._strands.get(topic)
        if strand is None:
            if self.scheduling == "shared":
                home = self._queues[0]
            else:  # round-robin assignment of topics to the threads' own queues
                home = self._queues[self._next_queue % len(self._queues)]
                self._next_queue += 1
            strand = self._strands[topic] = _Strand(home)
        return strand

    def _enqueue_locked(self, item: Item, topic: str) -> None:
        strand = self._strand_locked(topic)
        strand.items.append(item)
        self._pending += 1
        if not strand.held and len(strand.items) == 1:
            home = strand.home
            home.strands.append(strand)
            self._maybe_grow_locked(home)
            self._cond.notify_all() if self.scheduling != "shared" else self._cond.notify()

    def submit(self, event: Event) -> None:
        with self._cond:
            if self._closed:
                raise ServiceClosed("the event service is closed")
            if self._pending >= self.capacity:
                if self.overflow is Overflow.BLOCK:
                    while self._pending >= self.capacity and not self._closed:
                        self._room.wait(0.5)
                elif not self._full(event, self._pop_oldest_locked):
                    return
            self._enqueue_locked(event, event.topic)

    def _pop_oldest_locked(self) -> Event | None:
        # The oldest event overall is the smallest id at the head of some strand.
        heads = [(s.items[0].id, s) for s in self._strands.values() if s.items and type(s.items[0]) is not tuple]
        if not heads:
            return None
        _, strand = min(heads, key=lambda h: h[0])
        self._pending -= 1
        return strand.items.popleft()

    def submit_to(self, event: Event, subscription: Subscription) -> None:
        with self._cond:
            self._enqueue_locked((event, subscription), event.topic)

    # -- consumer side ---------------------------------------------------------------------------

    def _work(self, ready: _ReadyQueue) -> None:
        deliver = self.service._deliver
        deliver_to = self.service._deliver_to
        cond = self._cond
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
                batch = [strand.items.popleft() for _ in range(min(self.BATCH, len(strand.items)))]
                self._pending -= len(batch)
                self._in_flight += len(batch)
                self._room.notify_all()
            calls = 0
            for item in batch:
                if type(item) is tuple:
                    calls += deliver_to(*item)
                else:
                    calls += deliver(item)
            service = self.service
            if service._drops or service._expired_topics:
                service._report()
            with cond:
                self.delivered += calls
                self._in_flight -= len(batch)
                strand.held = False
                if strand.items:
                    strand.home.strands.append(strand)
                    cond.notify()
                elif self._pending == 0 and self._in_flight == 0:
                    cond.notify_all()  # wake process_events() waiting for a drained pool

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
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
