"""``AsyncMemoryClient``: the asyncio face of a memory-broker client (an :class:`~evfabric.bus.AsyncBus`).

    broker = MemoryBroker()
    client = await broker.connect_async(source="a")
    await client.subscribe("x.*", listener=some_coroutine_function)
    await client.publish("x.y", {"n": 1})
    await broker.ajoin()

Events are delivered by one task on the loop that created the client, in order; a listener that
returns an awaitable is awaited before the next is called, and counts as failed if it raises.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable
from typing import Any

from evfabric.core.event import Body, Delivery, Event
from evfabric.core.filters import Filter
from evfabric.core.topics import Pattern
from evfabric.local.subscription import Listener
from evfabric.testing.memory import MemoryClient, MemoryStats, MemorySubscription, Start

__all__ = ["AsyncMemoryClient"]


class AsyncMemoryClient:
    """Wraps a :class:`MemoryClient` in ``asyncio`` mode; create it with ``await broker.connect_async()``."""

    def __init__(self, client: MemoryClient) -> None:
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        client.on_ready = self._wake
        self._task = self._loop.create_task(self._pump(), name=f"evfabric-memory-{client.source}")

    def _wake(self) -> None:  # from any thread
        self._loop.call_soon_threadsafe(self._ready.set)

    @property
    def source(self) -> str:
        """The component id stamped on published events."""
        return self._client.source

    @property
    def stats(self) -> MemoryStats:
        """The client's counters."""
        return self._client.stats

    async def publish(self, topic: str, body: Body | None = None, *, delivery: Delivery | None = None,
                      **header: Any) -> Event:
        """As :meth:`MemoryClient.publish`."""
        return self._client.publish(topic, body, delivery=delivery, **header)

    async def publish_many(self, topic: str, bodies: Iterable[Body], *, delivery: Delivery | None = None,
                           **header: Any) -> list[Event]:
        """As :meth:`MemoryClient.publish_many`."""
        return self._client.publish_many(topic, bodies, delivery=delivery, **header)

    async def subscribe(self, pattern: str | Pattern, filter: str | Filter | None = None, *,
                        listener: Listener | None = None, delivery: Delivery | None = None, group: str | None = None,
                        start: Start = None, replay: bool = False, name: str | None = None,
                        max_deliver: int = 5, redeliver_delay: float = 0.0, ack_wait: float = 30.0) -> MemorySubscription:
        """As :meth:`MemoryClient.subscribe`; ``listener`` may be a coroutine function."""
        return self._client.subscribe(pattern, filter, listener=listener, delivery=delivery, group=group,
                                      start=start, replay=replay, name=name, max_deliver=max_deliver,
                                      redeliver_delay=redeliver_delay, ack_wait=ack_wait)

    def process_events(self, timeout: float | None = None) -> int:
        """From another thread: wait until the loop has delivered what arrived (see :meth:`drain`)."""
        return self._client.process_events(timeout)

    async def drain(self) -> None:
        """Wait until the inbox is empty and nothing is being delivered."""
        while self._client._inbox or not self._idle.is_set():
            self._ready.set()
            self._idle.clear()
            await self._idle.wait()

    async def flush(self, timeout: float | None = None) -> None:
        """Nothing waits to be sent: the broker took every event at publish."""

    async def _pump(self) -> None:
        client, lock = self._client, self._client.broker._lock
        while True:
            self._idle.set()
            await self._ready.wait()
            self._ready.clear()
            self._idle.clear()
            if client._closed:
                return
            while True:
                with lock:
                    if not client._inbox:
                        break
                    item = client._inbox.popleft()
                error: BaseException | None = None
                calls = 0
                for fn in client._admit(item):
                    try:
                        result = fn(item.event)
                        if inspect.isawaitable(result):
                            await result
                    except Exception as exc:
                        error = client._failed(item, fn, exc)
                    calls += 1
                client._settle(item, error)
                client.stats.delivered += calls

    async def close(self) -> None:
        """Deliver what arrived, end the subscriptions (durable consumers keep their place), stop."""
        if self._client._closed:
            return
        await self.drain()
        self._client.close()
        self._ready.set()
        await self._task

    async def __aenter__(self) -> AsyncMemoryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
