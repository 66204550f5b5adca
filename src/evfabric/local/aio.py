"""The asyncio dispatcher: events delivered on an asyncio loop; listeners may be coroutines.

One dispatcher task delivers events in publish order and awaits each listener that returns an
awaitable before calling the next, so per-topic order holds for async listeners too. Events may
be published from the loop or from any other thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from evfabric.core.errors import QueueFull, ServiceClosed
from evfabric.core.event import Event
from evfabric.local.dispatch import Dispatcher, Item
from evfabric.local.overflow import Overflow

if TYPE_CHECKING:
    from evfabric.local.delivery import Delivery
    from evfabric.local.subscription import Subscription

__all__ = ["AsyncioDispatcher"]

log = logging.getLogger("evfabric.local")


class AsyncioDispatcher(Dispatcher):
    """Delivers on ``loop`` (the running loop at construction, or the one of the first ``drain``)."""

    def __init__(
        self, delivery: Delivery, capacity: int, overflow: Overflow, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        super().__init__(delivery, capacity, overflow)
        self._queue: deque[Item] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._room = threading.Condition()
        self._extra = 0  # events queued in targeted batches beyond one per queue item
        self._closed = False
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is not None:
            self._bind(loop)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        if loop.is_running() and _in_loop(loop):
            self._task = loop.create_task(self._run(), name="evfabric-dispatch")
        else:
            loop.call_soon_threadsafe(self._start_task)

    def _start_task(self) -> None:
        assert self._loop is not None
        self._task = self._loop.create_task(self._run(), name="evfabric-dispatch")

    def _wake(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return
        if _in_loop(loop):
            wakeup.set()
        else:
            loop.call_soon_threadsafe(wakeup.set)

    def submit(self, event: Event) -> None:
        if self._closed:
            raise ServiceClosed("the event service is closed")
        if len(self._queue) + self._extra >= self.capacity:
            if self.overflow is Overflow.BLOCK:
                if self._loop is not None and _in_loop(self._loop):
                    raise QueueFull(
                        "event queue is full and publish() was called on the dispatch loop with policy 'block': "
                        "use 'await service.apublish(...)' there, which waits for room"
                    )
                with self._room:
                    while len(self._queue) + self._extra >= self.capacity and not self._closed:
                        self._room.wait(0.5)
            elif not self._full(event, self._pop_oldest):
                return
        self._queue.append(event)
        self._wake()

    async def wait_for_room(self) -> None:
        """Yield to the loop until the queue has room (for ``apublish``)."""
        while len(self._queue) + self._extra >= self.capacity and not self._closed:
            await asyncio.sleep(0.001)

    def _pop_oldest(self) -> Event | None:
        return self._queue.popleft() if self._queue else None

    def submit_many_to(self, events: Sequence[Event], subscription: Subscription) -> None:
        if not events:
            return
        with self._room:  # batches come from other threads too: the count must not race
            self._extra += len(events) - 1
            self._queue.append((events, subscription))
        self._wake()

    async def _run(self) -> None:
        assert self._wakeup is not None and self._idle is not None
        q = self._queue
        d = self.delivery
        adeliver = d.adeliver
        while True:
            if not q:
                self._idle.set()
                if self._closed:
                    return
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            self._idle.clear()
            item = q.popleft()
            targeted = type(item) is tuple
            with self._room:
                if targeted:
                    self._extra -= len(item[0]) - 1
                self._room.notify_all()
            if targeted:
                events, sub = item
                for event in events:
                    self.delivered += await adeliver(event, sub)
            else:
                self.delivered += await adeliver(item, None)
            if d.losses:
                d.report()

    async def drain(self) -> int:
        """Wait until everything queued is delivered; return the listener calls made meanwhile."""
        if self._loop is None:
            self._bind(asyncio.get_running_loop())
        assert self._idle is not None
        before = self.delivered
        while self._queue or not self._idle.is_set():
            self._wake()
            await asyncio.sleep(0)
            if self._queue or not self._idle.is_set():
                await asyncio.sleep(0.0005)
        return self.delivered - before

    def process_events(self, timeout: float | None = None) -> int:
        loop = self._loop
        if loop is None:
            raise ServiceClosed("the asyncio dispatcher is not bound to a loop yet: 'await service.drain()' first")
        if _in_loop(loop):
            raise RuntimeError("process_events() would block the dispatch loop: use 'await service.drain()'")
        return asyncio.run_coroutine_threadsafe(self.drain(), loop).result(timeout)

    def pending(self) -> int:
        return len(self._queue) + self._extra

    def close(self, drain: bool = True, timeout: float = 10.0) -> None:
        loop = self._loop
        if drain and loop is not None and loop.is_running() and not _in_loop(loop):
            try:
                self.process_events(timeout)
            except Exception as exc:  # closing goes on; say what was left undelivered
                log.warning("asyncio dispatcher: draining at close failed (%d events pending): %r", self.pending(), exc)
        self._closed = True
        self._wake()
        with self._room:
            self._room.notify_all()


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
