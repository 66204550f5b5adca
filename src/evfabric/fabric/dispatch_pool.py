"""Listener threads shared by the synchronous clients of a process.

A :class:`~evfabric.fabric.client.Client` in ``threads`` mode (the default) calls its listeners
on the threads of one process-wide :class:`DispatchPool` (:data:`SHARED_POOL`) rather than on a
pool of its own: fifty idle clients cost no listener thread, fifty busy ones as many threads as
there are listeners running at once.

* **Order.** As with a private pool: per client, every listener sees one topic's events in order.
  Each (client, topic) has a *strand*, a FIFO that one thread works on at a time.
* **Isolation.** A listener that blocks holds one thread and its own strand only. Work that
  arrives while no thread is idle gets a new thread (up to ``max_workers``), so another client's
  listeners (and this client's other topics) go on; the shared event loop never runs listeners.
  Beyond ``max_workers`` listeners blocked at once, further work waits for a free thread.
* **Size.** Threads start on demand and retire after ``idle_timeout`` seconds without work.
* **Fork.** A forked child starts with an empty pool.

:class:`PooledDispatcher` is the per-client side: the local service's dispatcher (queue bound,
overflow policy, ``process_events()`` waiting until delivered), with the threads borrowed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from evfabric.fabric.shared_loop import at_fork_in_child
from evfabric.local.dispatch import Dispatcher, Item, StrandedDispatcher, take_run
from evfabric.local.overflow import Overflow

if TYPE_CHECKING:
    from evfabric.local.delivery import Delivery

__all__ = ["SHARED_POOL", "DispatchPool", "PooledDispatcher", "pooled"]


class _Strand:
    """The FIFO of one topic of one dispatcher; ``held`` while a thread delivers from it."""

    __slots__ = ("held", "items", "owner")

    def __init__(self, owner: PooledDispatcher) -> None:
        self.owner = owner
        self.items: deque[Item] = deque()
        self.held = False


class DispatchPool:
    """Threads that run the strands of every :class:`PooledDispatcher` given them."""

    def __init__(self, max_workers: int = 32, idle_timeout: float = 2.0, name: str = "evfabric-dispatch") -> None:
        self.max_workers = max_workers
        self.idle_timeout = idle_timeout
        self.name = name
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._ready: deque[_Strand] = deque()
        self.workers = 0  # threads alive
        self.idle = 0  # threads waiting for work
        self.peak_workers = 0

    def schedule(self, strand: _Strand, grow: bool = True) -> None:
        """``strand`` has work: a thread will run it (an idle one, or a new one if none is idle).

        ``grow=False``: a pool thread hands back a strand it ran; it takes work again at once
        itself, so no thread is started for it.
        """
        with self._cond:
            self._ready.append(strand)
            if self.idle:
                self._cond.notify()
            if grow and len(self._ready) > self.idle and self.workers < self.max_workers:
                self.workers += 1
                self.peak_workers = max(self.peak_workers, self.workers)
                threading.Thread(target=self._work, name=self.name, daemon=True).start()

    def _work(self) -> None:
        cond, ready = self._cond, self._ready
        while True:
            with cond:
                self.idle += 1
                deadline = time.monotonic() + self.idle_timeout
                while not ready:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self.idle -= 1
                        self.workers -= 1
                        return
                    cond.wait(left)
                self.idle -= 1
                strand = ready.popleft()
            strand.owner.run(strand)
            del strand  # an idle thread keeps no events alive

    def after_fork_in_child(self) -> None:
        """Forget the parent's threads (they do not exist here)."""
        self._reset()


#: the listener threads of every synchronous client in this process
SHARED_POOL = DispatchPool()
at_fork_in_child(SHARED_POOL.after_fork_in_child)


class PooledDispatcher(StrandedDispatcher):
    """A dispatcher whose deliveries run on a :class:`DispatchPool`; same contract as
    :class:`~evfabric.local.dispatch.ThreadPoolDispatcher` (order per topic, bound, overflow)."""

    # Events a thread takes from a strand before giving other strands a turn (or one whole
    # hand-off batch): the private pool's figure.
    BATCH = 256

    def __init__(self, delivery: Delivery, capacity: int, overflow: Overflow, pool: DispatchPool = SHARED_POOL) -> None:
        super().__init__(delivery, capacity, overflow)
        self.pool = pool
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # room for blocked publishers; drained
        self._room = self._cond
        self._strands: dict[str, _Strand] = {}
        self._pending = 0
        self._in_flight = 0
        self._blocked = 0
        self._closed = False

    @property
    def workers(self) -> int:
        """Threads of the shared pool alive now (shared with the process's other clients)."""
        return self.pool.workers

    # -- producer side --------------------------------------------------------------------------

    def _enqueue_locked(self, item: Item, topic: str, n: int) -> None:
        strand = self._strands.get(topic)
        if strand is None:
            strand = self._strands[topic] = _Strand(self)
        items = strand.items
        items.append(item)
        self._pending += n
        if len(items) == 1 and not strand.held:
            self.pool.schedule(strand)  # lock order: a dispatcher's lock, then the pool's

    # -- consumer side (a pool thread) -------------------------------------------------------------

    def run(self, strand: _Strand) -> None:
        """Deliver up to :attr:`BATCH` events of ``strand``; hand it back to the pool if more wait."""
        d = self.delivery
        with self._lock:
            items = strand.items
            if self._closed:  # closed without draining: what is left is not delivered
                self._pending -= sum(len(i[0]) if type(i) is tuple else 1 for i in items)
                items.clear()
                return
            strand.held = True
            batch, n = take_run(items, self.BATCH)
            self._pending -= n
            self._in_flight += n
            if self._blocked:
                self._cond.notify_all()
        calls = 0
        try:
            for item in batch:
                calls += d.deliver_to(*item) if type(item) is tuple else d.deliver(item)
            if d.losses:
                d.report()
        finally:
            batch.clear()
            with self._lock:
                self.delivered += calls
                self._in_flight -= n
                strand.held = False
                if strand.items:
                    self.pool.schedule(strand, grow=False)
                elif self._pending == 0 and self._in_flight == 0:
                    self._cond.notify_all()  # process_events() waits for a drained dispatcher


def pooled(delivery: Delivery, capacity: int, overflow: Overflow) -> Dispatcher:
    """The local service's dispatcher factory for the shared pool."""
    return PooledDispatcher(delivery, capacity, overflow)
